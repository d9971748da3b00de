"""What the shown points say, for any page that shows points (Explore, Compare): metrics at the run's θ,
the confusion of true vs predicted attribution, the predicted-class distribution of unlabelled sets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from data_catalog.records import REAL, UNSEEN_FAKE

from . import figures, queries
from .plain import plain


def is_real_of(true_class: np.ndarray) -> np.ndarray:
    """1 real, 0 fake, NaN unlabelled (from the true class ids shown on the map)."""
    t = np.asarray(true_class, dtype=object)
    return np.where(t == queries.UNLABELLED, np.nan, (t == REAL).astype(float))


def evaluate_points(view, pts: pd.DataFrame, run_id: str | None = None, classifier: str | None = None):
    """Metrics of the given points at θ of (`run_id`, `classifier`), the view's own by default
    (engine.scores; deduplicated per video at video level)."""
    from engine.scores import evaluate_samples

    if view.level == "video":
        pts = pts.drop_duplicates("video_id")
    y = is_real_of(pts["true_class"].to_numpy())
    keep = ~np.isnan(y) & ~np.isnan(pts["real_score"].to_numpy(float))
    theta = queries.theta(view.path, view.sig, run_id or view.run_id, classifier or view.classifier, view.level,
                          view.aggregation, view.top_k)
    if not keep.any() or theta is None:
        return None
    return evaluate_samples(theta, pts["real_score"].to_numpy(float)[keep], y[keep].astype(bool))


def confusion_parts(view, pts: pd.DataFrame, style=None) -> dict:
    """Confusion of true vs predicted (labelled points), predicted-class distribution (unlabelled)."""
    if view.level == "video":
        pts = pts.drop_duplicates("video_id")
    labelled = pts.loc[pts["true_class"] != queries.UNLABELLED]
    unlabelled = pts.loc[pts["true_class"] == queries.UNLABELLED]
    out = {"unit": "videos" if view.level == "video" else "faces", "n_labelled": len(labelled),
           "n_unlabelled": len(unlabelled), "confusion": None, "distribution": None, "top": []}
    if len(labelled):
        true = labelled["true_class"].to_numpy(dtype=object)
        unseen = true == UNSEEN_FAKE
        true = np.where(unseen, UNSEEN_FAKE + " @ " + labelled["database"].to_numpy(dtype=object), true)
        names = {t: f"Unseen fake ({t.split(' @ ')[1]})" for t in set(true[unseen])}
        out["confusion"] = figures.confusion_figure(true, labelled["pred"].to_numpy(dtype=object), style or view.style, names)
    if len(unlabelled):
        out["distribution"] = figures.distribution_figure(unlabelled["pred"].to_numpy(dtype=object), style or view.style)
        top = unlabelled["pred"].value_counts(normalize=True).head(2)
        out["top"] = [((style or view.style).name(c), float(v)) for c, v in top.items()]
    return out


def confusion_or_distribution(parts: dict, key: str, cell_select: bool = False) -> None:
    if parts["confusion"] is not None:
        st.markdown(f"**True vs predicted attribution** ({parts['n_labelled']:,} {parts['unit']})")
        if cell_select:  # a click on a cell selects its points on the map
            st.plotly_chart(parts["confusion"], key=f"{key}_confusion", config={"displaylogo": False},
                            on_select="rerun", selection_mode="points")
        else:
            st.plotly_chart(parts["confusion"], key=f"{key}_confusion", config={"displaylogo": False})
    if parts["distribution"] is not None:
        st.markdown(f"**Unlabelled: which known classes does it look like?** "
                    f"({parts['n_unlabelled']:,} {parts['unit']})")
        st.plotly_chart(parts["distribution"], key=f"{key}_distribution", config={"displaylogo": False})
        st.caption("Looks most like: " + ", ".join(f"{plain(n)} ({v:.0%})" for n, v in parts["top"]))
