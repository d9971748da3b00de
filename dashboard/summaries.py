"""What the shown points say, for any page that shows points (Explore, Compare): metrics at the run's θ,
the confusion of true vs predicted attribution, the predicted-class distribution of unlabelled sets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from data_catalog.records import REAL, UNSEEN_FAKE

from . import queries, tables
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
        out["confusion"] = tables.confusion_table(true, labelled["pred"].to_numpy(dtype=object), style or view.style,
                                                  names)
    if len(unlabelled):
        dist = tables.distribution_table(unlabelled["pred"].to_numpy(dtype=object), style or view.style)
        out["distribution"] = dist
        top = dist.sort_values("share", ascending=False, kind="stable").head(2)
        out["top"] = list(zip(top["predicted class"], top["share"].astype(float)))
    return out


def confusion_or_distribution(parts: dict, key: str, cell_select: bool = False) -> None:
    """The confusion table (`cell_select`: a click on a cell selects its points on the map, see
    `selected_cell`) and the unlabelled sets' predicted classes."""
    if parts["confusion"] is not None:
        counts = parts["confusion"]
        st.markdown(f"**True vs predicted attribution** ({parts['n_labelled']:,} {parts['unit']}"
                    + ("; click a cell to select its faces on the map)" if cell_select else ")"))
        config = {c: st.column_config.NumberColumn(c, help=f"predicted: {c}", width="small") for c in counts.columns}
        shown = tables.row_share_shading(counts)
        if cell_select:  # the table a click refers to (the next run reads the click against it)
            st.session_state[f"_{key}_confusion_shown"] = counts
            st.dataframe(shown, key=f"{key}_confusion", column_config=config, on_select="rerun",
                         selection_mode="single-cell")
        else:
            st.dataframe(shown, key=f"{key}_confusion", column_config=config)
    if parts["distribution"] is not None:
        st.markdown(f"**Unlabelled: which known classes does it look like?** "
                    f"({parts['n_unlabelled']:,} {parts['unit']})")
        st.dataframe(parts["distribution"], key=f"{key}_distribution", hide_index=True, column_config={
            "share": st.column_config.ProgressColumn("share", min_value=0.0, max_value=1.0, format="percent")})
        st.caption("Looks most like: " + ", ".join(f"{plain(n)} ({v:.0%})" for n, v in parts["top"]))


def selected_cell(key: str) -> tuple[str, str] | None:
    """(true, predicted) display names of the cell selected in confusion table `key` (confusion_or_distribution's
    `key`, with `cell_select`), else None."""
    event = st.session_state.get(f"{key}_confusion")
    counts = st.session_state.get(f"_{key}_confusion_shown")
    cells = ((event or {}).get("selection") or {}).get("cells") if isinstance(event, dict) else \
        getattr(getattr(event, "selection", None), "cells", None)
    if not cells or counts is None:
        return None
    row, column = cells[0][0], str(cells[0][1])
    if not isinstance(row, int) or not 0 <= row < len(counts) or column not in counts.columns:
        return None  # the row names, or a table from another view
    return str(counts.index[row]), column
