"""Metrics tables as people read them: the paper's Table 1/2 rows and text / CSV / Markdown / LaTeX."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _pct(v, digits=2) -> str:
    return "—" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{100 * v:.{digits}f}"


def paper_rows(df: pd.DataFrame, role: str, with_ci: bool = False) -> list[dict]:
    """Rows of Table 1 ('same-db') or Table 2 ('cross-db') in the paper's layout (percentages)."""
    out = []
    sub = df[df.role == role]
    prev = None
    for r in sub.itertuples(index=False):  # a few dozen rows
        show = r.label if (r.label, r.run_id) != prev else ""
        prev = (r.label, r.run_id)
        row = {"Approach": show, "Test DB": r.dataset, "AUC": _pct(r.auc), "FNR (%)": _pct(r.fnr),
               "FPR (%)": _pct(r.fpr), "HTER (%)": _pct(r.hter), "Acc (%)": _pct(r.accuracy),
               "videos (real/fake)" if r.level == "video" else "faces (real/fake)": f"{r.n_real}/{r.n_fake}"}
        agg = getattr(r, "aggregation", "")
        if r.level == "video" and isinstance(agg, str) and agg:
            row["video score"] = agg  # how frames became a video's real-score (engine.metrics.AGGREGATIONS)
        if getattr(r, "n_new", 0):
            row["unseen fakes"] = str(r.n_new)
            row["unseen rejected (%)"] = _pct(r.new_as_fake)
        if with_ci:
            row["AUC 95% CI"] = "—" if pd.isna(r.auc_lo) else f"{_pct(r.auc_lo)}–{_pct(r.auc_hi)}"
            row["HTER 95% CI"] = "—" if pd.isna(r.hter_lo) else f"{_pct(r.hter_lo)}–{_pct(r.hter_hi)}"
            lo = getattr(r, "accuracy_lo", None)
            row["Acc 95% CI"] = "—" if lo is None or pd.isna(lo) else f"{_pct(lo)}–{_pct(r.accuracy_hi)}"
        if isinstance(r.note, str) and r.note:
            row["note"] = r.note
        out.append(row)
    cols = list(dict.fromkeys(k for row in out for k in row))
    return [{c: row.get(c, "") for c in cols} for row in out]


def render(rows: list[dict], fmt: str) -> str:
    """Rows as a text table, CSV, Markdown or LaTeX."""
    if not rows:
        return "(no rows)\n"
    cols = list(rows[0])
    cells = [[str(r.get(c, "")) for c in cols] for r in rows]
    if fmt == "csv":
        return pd.DataFrame(cells, columns=cols).to_csv(index=False)
    if fmt == "markdown":
        lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
        return "\n".join(lines) + "\n"
    if fmt == "latex":
        def esc(s: str) -> str:
            for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                         ("–", "--"), ("—", "---")):
                s = s.replace(a, b)
            return s
        lines = [r"\begin{tabular}{" + "l" * 2 + "r" * (len(cols) - 2) + "}", r"\hline",
                 " & ".join(esc(c) for c in cols) + r" \\", r"\hline"]
        lines += [" & ".join(esc(c) for c in row) + r" \\" for row in cells]
        lines += [r"\hline", r"\end{tabular}"]
        return "\n".join(lines) + "\n"
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines) + "\n"
