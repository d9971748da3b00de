"""Tables: the paper's Table 1/2 layout for display; exports use engine.evaluation's rendering."""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.approaches import display_label
from engine.rendering import paper_rows, render
PERCENT = ("fpr", "fnr", "hter", "accuracy")


def paper_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Approach | Test DB | AUC | FNR (%) | FPR (%) | HTER (%) (plus CIs when present), in %."""
    if metrics is None or metrics.empty:
        return pd.DataFrame(columns=["Approach", "Test DB", "AUC", "FNR (%)", "FPR (%)", "HTER (%)"])
    m = metrics.copy()
    out = pd.DataFrame({
        "Approach": [display_label(a, c) for a, c in zip(m["approach"], m["classifier"])],
        "Test DB": m["dataset"].to_numpy(),
        "AUC": (m["auc"] * 100).round(2).to_numpy(),
        "FNR (%)": (m["fnr"] * 100).round(2).to_numpy(),
        "FPR (%)": (m["fpr"] * 100).round(2).to_numpy(),
        "HTER (%)": (m["hter"] * 100).round(2).to_numpy(),
    })
    for col, name in (("hter_lo", "HTER lo"), ("hter_hi", "HTER hi"), ("auc_lo", "AUC lo"), ("auc_hi", "AUC hi")):
        if col in m.columns and m[col].notna().any():
            out[name] = (m[col] * 100).round(2).to_numpy()
    for col, name in (("n_real", "# real"), ("n_fake", "# fake")):
        if col in m.columns:
            out[name] = m[col].to_numpy()
    return out


def metric_row(m, label: str = "") -> dict:
    """One engine.metrics.Metrics as a display row (percentages)."""
    def pct(v):
        return None if v is None or (isinstance(v, float) and np.isnan(v)) else round(100 * float(v), 2)

    return {"": label, "AUC": pct(m.auc), "FNR (%)": pct(m.fnr), "FPR (%)": pct(m.fpr), "HTER (%)": pct(m.hter),
            "threshold": None if m.threshold is None else round(float(m.threshold), 4),
            "# real": int(m.n_real), "# fake": int(m.n_fake)}


def export(metrics: pd.DataFrame, role: str, fmt: str) -> str:
    """The CLI's own rendering (`dfatlas evaluate --format ...`) of one table: csv / markdown / latex."""
    with_ci = "hter_lo" in metrics.columns and metrics["hter_lo"].notna().any()
    return render(paper_rows(metrics, role, with_ci=with_ci), fmt)


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
