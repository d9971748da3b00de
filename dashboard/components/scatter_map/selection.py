"""The map's selection as the browser describes it, turned back into rows of the shown points.

The component never sends point ids: a selection is a lasso polygon or box (map coordinates), a
confusion cell (true, predicted), a search query or a list of videos, plus the hash of the payload it
was made on. The rules here mirror the component's own (`frontend/src/main.js`, `matches`), so the
panel shows what the map highlights. At video level a video is one point at the mean map position of
its faces, and selecting it selects its faces.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dashboard.figures import marker_meaning

COLOUR_COLUMNS = {"pred": "pred", "true": "true_class", "correct": "correct", "database": "database"}
KINDS = ("lasso", "box", "cell", "search", "videos")


def video_positions(pts: pd.DataFrame) -> pd.DataFrame:
    """x, y of each video (mean of its faces' map positions), indexed by video_id."""
    return pts.groupby("video_id", sort=False, observed=True)[["x", "y"]].mean()


def _text_matches(column: pd.Series, test) -> np.ndarray:
    """test(lower-cased text) per row; on a categorical column once per category, not once per row."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        hit = np.array([bool(test(str(c).lower())) for c in column.cat.categories] + [False])
        return hit[column.cat.codes.to_numpy()]  # code -1 (missing) -> the False at the end
    return np.array([bool(test(str(v).lower())) for v in column], dtype=bool)


def inside_polygon(x: np.ndarray, y: np.ndarray, polygon) -> np.ndarray:
    """Even-odd rule, vectorised over points (one pass per edge); points outside the bounding box skip."""
    poly = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    out = np.zeros(len(x), dtype=bool)
    if len(poly) < 3 or not len(x):
        return out
    box = (x >= poly[:, 0].min()) & (x <= poly[:, 0].max()) & (y >= poly[:, 1].min()) & (y <= poly[:, 1].max())
    cand = np.flatnonzero(box)
    px, py = x[cand].astype(np.float64), y[cand].astype(np.float64)
    inside = np.zeros(len(cand), dtype=bool)
    xj, yj = poly[-1]
    for xi, yi in poly:
        crosses = (yi > py) != (yj > py)
        with np.errstate(divide="ignore", invalid="ignore"):
            xcross = (xj - xi) * (py - yi) / (yj - yi) + xi
        inside ^= crosses & (px < xcross)
        xj, yj = xi, yi
    out[cand] = inside
    return out


def valid(selection, payload_hash: str | None) -> dict | None:
    """The selection when it is well-formed and made on this payload, else None."""
    if not isinstance(selection, dict) or selection.get("kind") not in KINDS:
        return None
    if payload_hash is not None and selection.get("hash") != payload_hash:
        return None
    return selection


def selected_rows(pts: pd.DataFrame, selection: dict | None, level: str, colour: str,
                  hidden_colour=(), hidden_marker=(), class_names: dict | None = None) -> np.ndarray:
    """Row positions in `pts` (queries.map_points' frame) that the selection covers, shown points only."""
    if not selection or pts.empty:
        return np.zeros(0, dtype=np.int64)
    shown = np.ones(len(pts), dtype=bool)
    if hidden_colour:
        shown &= ~pts[COLOUR_COLUMNS.get(colour, "pred")].isin(list(hidden_colour)).to_numpy()
    if hidden_marker:  # the marker shows the true class, or the predicted one while colour shows the true
        marker = "pred" if marker_meaning(colour) == "predicted class" else "true_class"
        shown &= ~pts[marker].isin(list(hidden_marker)).to_numpy()
    kind = selection.get("kind")
    if kind in ("lasso", "box"):
        poly = selection.get("polygon") or []
        if level == "video":
            pos = video_positions(pts)
            hit = pos.index[inside_polygon(pos["x"].to_numpy(), pos["y"].to_numpy(), poly)]
            match = pts["video_id"].isin(hit).to_numpy()
        else:
            match = inside_polygon(pts["x"].to_numpy(), pts["y"].to_numpy(), poly)
    elif kind == "cell":
        match = ((pts["true_class"] == selection.get("true")) & (pts["pred"] == selection.get("pred"))).to_numpy()
    elif kind == "search":
        q = str(selection.get("query", "")).strip().lower()
        if not q:
            return np.zeros(0, dtype=np.int64)
        names = {str(k).lower(): str(v).lower() for k, v in (class_names or {}).items()}
        match = _text_matches(pts["video_id"], lambda v: q in v) | \
            _text_matches(pts["true_class"], lambda c: c == q or names.get(c) == q)
    elif kind == "videos":
        match = pts["video_id"].isin(list(selection.get("videos") or [])).to_numpy()
    else:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(match & shown)


def describe(selection: dict | None, class_name=lambda c: c) -> str:
    """A short plain-text account of a selection (for the panel's heading)."""
    if not selection:
        return ""
    kind = selection["kind"]
    if kind == "cell":
        return f"true {class_name(selection.get('true'))} → predicted {class_name(selection.get('pred'))}"
    if kind == "search":
        return f"search “{selection.get('query', '')}”"
    if kind == "videos":
        v = selection.get("videos") or []
        return v[0] if len(v) == 1 else f"{len(v)} videos"
    return kind
