"""Metrics tables as people read them (the paper's Table 1/2 rows as text / Markdown / LaTeX) and as
programs read them (the tidy table that every CSV and Parquet export writes)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

TABLE_TITLES = {"same-db": "Table 1: same-database evaluation (super-set test splits)",
                "cross-db": "Table 2: cross-database evaluation",
                "unknown": "Unknown sets (labelled)"}

# The tidy table's columns, keys first: one row per approach x classifier x test set x level (x video score).
TIDY_KEYS = ["approach", "label", "classifier", "run_id", "dataset", "role", "level", "aggregation"]
TIDY_NUMBERS = ["auc", "fpr", "fnr", "hter", "accuracy", "threshold", "n_real", "n_fake", "n_known", "n_new",
                "new_as_fake", "auc_lo", "auc_hi", "hter_lo", "hter_hi", "accuracy_lo", "accuracy_hi"]


def latex_caption(title: str, level: str, target_fpr: float = 0.10) -> str:
    """A LaTeX table's caption: which table, at which level, and how the threshold was set."""
    return (f"{title}, {level} level. AUC, FNR, FPR and HTER in %; the threshold is set on the pooled validation "
            f"split of the training super-set at FPR {100 * target_fpr:g} % (real is the positive class).")


def latex_label(role: str, level: str) -> str:
    return f"tab:dfatlas-{role}-{level}"


def tidy_metrics(metrics: pd.DataFrame) -> pd.DataFrame:
    """`engine.evaluation.metrics_table` rows (one or several levels) as a tidy table: what every CSV and
    Parquet export, `dfatlas evaluate --json`, `dfatlas export`'s metrics file and `dfatlas.Atlas.metrics`
    give.

    One row per approach x classifier x test set x level, keys never blank, numbers as numbers
    (AUC, FPR, FNR, HTER, accuracy as fractions in [0, 1]; counts as integers), a missing value empty;
    only test sets with labelled videos. Sorted by role (Table 1, Table 2, unknown sets), then as
    evaluated.
    """
    from .evaluation import ROLE_ORDER

    df = metrics.loc[(metrics["n_real"].fillna(0) + metrics["n_fake"].fillna(0)) > 0]
    cols = TIDY_KEYS + [c for c in TIDY_NUMBERS if c in df.columns] + ["note"]
    out = df.reindex(columns=cols).copy()
    for c in ("n_real", "n_fake", "n_known", "n_new"):
        if c in out.columns:
            out[c] = out[c].astype("Int64")
    for c in TIDY_NUMBERS:
        if c in out.columns and not c.startswith("n_"):
            out[c] = pd.to_numeric(out[c], errors="coerce").astype(float)
    out["note"] = out["note"].where(out["note"].astype(bool) & out["note"].notna(), None).astype(object)
    order = out["role"].map(ROLE_ORDER).fillna(len(ROLE_ORDER))
    return out.assign(_o=order).sort_values(["_o", "level"], kind="stable").drop(columns="_o").reset_index(drop=True)


def tidy_bytes(metrics: pd.DataFrame, fmt: str) -> bytes:
    """The tidy table as a CSV (UTF-8, empty cells for missing values) or Parquet file."""
    table = tidy_metrics(metrics)
    if fmt == "csv":
        return table.to_csv(index=False).encode()
    if fmt == "parquet":
        buf = io.BytesIO()
        table.to_parquet(buf, index=False)
        return buf.getvalue()
    raise ValueError(f"tidy export format must be 'csv' or 'parquet', not {fmt!r}")


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


def render(rows: list[dict], fmt: str, caption: str | None = None, label: str | None = None) -> str:
    """Rows as a text table, CSV, Markdown or LaTeX (a `table` float with `caption` and `label` when given)."""
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
        if caption or label:
            lines = [r"\begin{table}[t]", r"\centering", r"\small"] + lines
            lines += [r"\caption{" + esc(caption) + "}"] if caption else []
            lines += [r"\label{" + label + "}"] if label else []
            lines.append(r"\end{table}")
        return "\n".join(lines) + "\n"
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines) + "\n"


# --- for programs ------------------------------------------------------------------------

def json_records(df: pd.DataFrame) -> list[dict]:
    """A table as JSON-ready records (NaN and NA as null; numbers as numbers, to 15 significant digits)."""
    import json

    return json.loads(df.to_json(orient="records", date_format="iso", double_precision=15))
