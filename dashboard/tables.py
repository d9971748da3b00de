"""Tables: the paper's Table 1/2 layout for display; exports use engine.evaluation's rendering."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from engine.approaches import display_label
from engine.rendering import TABLE_TITLES, latex_caption, latex_label, paper_rows, render, tidy_bytes
from engine.metrics import DEFAULT_AGGREGATION, aggregation_key, aggregation_label
PERCENT = ("fpr", "fnr", "hter", "accuracy")


def paper_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Approach | Test DB | AUC | FNR | FPR | HTER | Acc (attribution accuracy over the known classes), in %;
    CIs when present; the unseen fakes' count and the share rejected as fake when a set has them."""
    if metrics is None or metrics.empty:
        return pd.DataFrame(columns=["Approach", "Test DB", "AUC", "FNR (%)", "FPR (%)", "HTER (%)", "Acc (%)"])
    m = metrics.copy()
    out = pd.DataFrame({
        "Approach": [display_label(a, c) for a, c in zip(m["approach"], m["classifier"])],
        "Test DB": m["dataset"].to_numpy(),
        "AUC": _pct(m["auc"]),
        "FNR (%)": _pct(m["fnr"]),
        "FPR (%)": _pct(m["fpr"]),
        "HTER (%)": _pct(m["hter"]),
        "Acc (%)": _pct(m["accuracy"]) if "accuracy" in m.columns else np.nan,
    })
    for col, name in (("hter_lo", "HTER lo"), ("hter_hi", "HTER hi"), ("auc_lo", "AUC lo"), ("auc_hi", "AUC hi"),
                      ("accuracy_lo", "Acc lo"), ("accuracy_hi", "Acc hi")):
        if col in m.columns and m[col].notna().any():
            out[name] = _pct(m[col])
    if "n_new" in m.columns and (m["n_new"] > 0).any():
        # open-world papers' "known / new": Acc is over the known classes; the unseen fakes apart
        out["unseen fakes"] = m["n_new"].to_numpy()
        out["unseen rejected (%)"] = _pct(m["new_as_fake"])
    for col, name in (("n_real", "# real"), ("n_fake", "# fake")):
        if col in m.columns:
            out[name] = m[col].to_numpy()
    return out


def aggregation_text(view, long: bool = False) -> str:
    """The view's video aggregation in words: 'mean', 'top-3', or the long form for captions."""
    return aggregation_label(view.aggregation, view.top_k) if long else aggregation_key(view.aggregation, view.top_k)


def aggregation_suffix(view) -> str:
    """'' for the paper's mean, else '-median', '-top-3', ... (download file names say the choice)."""
    if view.level != "video" or view.aggregation == DEFAULT_AGGREGATION:
        return ""
    return "-" + aggregation_key(view.aggregation, view.top_k)


def _pct(col: pd.Series) -> np.ndarray:
    return (pd.to_numeric(col, errors="coerce") * 100).round(2).to_numpy()


# Approach and Test DB stay in view while the metric columns scroll (narrow screens, projectors).
PINNED = {"Approach": st.column_config.TextColumn(pinned=True), "Test DB": st.column_config.TextColumn(pinned=True)}


def full_height(table: pd.DataFrame) -> int:
    """A st.dataframe height that shows every row (the paper's tables are a few dozen rows at most)."""
    return 38 + 35 * max(1, len(table))


def metric_row(m, label: str = "") -> dict:
    """One engine.metrics.Metrics as a display row (percentages)."""
    def pct(v):
        return None if v is None or (isinstance(v, float) and np.isnan(v)) else round(100 * float(v), 2)

    return {"": label, "AUC": pct(m.auc), "FNR (%)": pct(m.fnr), "FPR (%)": pct(m.fpr), "HTER (%)": pct(m.hter),
            "threshold": None if m.threshold is None else round(float(m.threshold), 4),
            "# real": int(m.n_real), "# fake": int(m.n_fake)}


# download formats of the Tables page: (label, file extension, MIME type)
EXPORT_FORMATS = {"csv": ("CSV (tidy)", "csv", "text/csv"),
                  "parquet": ("Parquet (tidy)", "parquet", "application/vnd.apache.parquet"),
                  "markdown": ("Markdown", "md", "text/markdown"),
                  "latex": ("LaTeX", "tex", "text/x-tex")}


def export(metrics: pd.DataFrame, role: str, fmt: str, level: str = "video") -> str | bytes:
    """One table as a download. CSV / Parquet: the tidy table (`engine.rendering.tidy_metrics`, one row per
    approach x classifier x test set x level, of every level in `metrics`), as `dfatlas evaluate --format
    csv` writes it; Markdown / LaTeX: the paper's layout as `dfatlas evaluate --format` renders it (LaTeX
    with caption and label)."""
    metrics = metrics.loc[metrics["role"] == role]
    if fmt in ("csv", "parquet"):
        return tidy_bytes(metrics, fmt)
    shown = metrics.loc[metrics["level"] == level]
    with_ci = "hter_lo" in shown.columns and shown["hter_lo"].notna().any()
    rows = paper_rows(shown, role, with_ci=with_ci)
    if fmt == "latex":
        return render(rows, fmt, caption=latex_caption(TABLE_TITLES[role], level), label=latex_label(role, level))
    return render(rows, fmt)


def metric_keys(datasets: pd.DataFrame, chosen) -> set[str]:
    """engine.evaluation names a super-set test split or a cross-db set by its database, other sets by dataset."""
    ds = datasets.set_index("dataset")
    out = set()
    for d in chosen:
        if d in ds.index and ds.loc[d, "role"] in ("superset", "cross_db"):
            out.add(ds.loc[d, "database"])
        else:
            out.add(d)
    return out


# --- the confusion of true vs predicted attribution, and the predicted classes of unlabelled sets -------
# Tables, not plotly figures: a click on a cell is Streamlit's own cell selection (it selects the cell's
# points on the map; Streamlit ignores clicks on plotly heatmap cells), the counts stay readable in the
# narrow panel beside the map, and a page without plotly loads 4.7 MB less JavaScript before the map.

CONFUSION_INDEX = "true \\ predicted"
_BLUES = ((247, 251, 255), (8, 48, 107))  # plotly's "Blues" ends: share 0 -> light, 1 -> dark


def confusion_table(true_labels: np.ndarray, pred_labels: np.ndarray, style, true_names: dict | None = None) -> pd.DataFrame:
    """Counts, true (rows, display names) vs predicted (columns, display names), in the classes' order."""
    tab = pd.crosstab(pd.Series(true_labels, name="true"), pd.Series(pred_labels, name="pred"))
    rank = {c: i for i, c in enumerate(style.order())}
    rows = sorted(tab.index, key=lambda c: (rank.get(c.split(" @ ")[0], 99), c))
    cols = sorted(tab.columns, key=lambda c: (rank.get(c, 99), c))
    tab = tab.loc[rows, cols]
    tab.index = [(true_names or {}).get(r, style.name(r)) for r in rows]
    tab.columns = [style.name(c) for c in cols]
    tab.index.name = CONFUSION_INDEX
    return tab


def row_share_shading(counts: pd.DataFrame):
    """A Styler shading each cell by its share of the row (plotly's Blues), the count written in it."""
    share = counts.div(counts.sum(axis=1).clip(lower=1), axis=0)

    def css(v: float) -> str:
        rgb = [round(lo + (hi - lo) * float(v)) for lo, hi in zip(*_BLUES)]
        return f"background-color: rgb({rgb[0]}, {rgb[1]}, {rgb[2]}); color: {'white' if v > 0.55 else '#31333f'}"

    return counts.style.apply(lambda _: share.map(css), axis=None)


def distribution_table(pred_labels: np.ndarray, style) -> pd.DataFrame:
    """Share and count of each predicted class (unlabelled / unknown sets: what does it look like?)."""
    counts = pd.Series(pred_labels).value_counts()
    counts = counts[counts > 0]
    order = [c for c in style.order() if c in counts.index] + [c for c in counts.index if c not in style.order()]
    counts = counts.loc[order]
    return pd.DataFrame({"predicted class": [style.name(c) for c in order],
                         "share": (counts / max(counts.sum(), 1)).to_numpy(), "count": counts.to_numpy()})
