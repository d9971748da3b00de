"""What the component draws for one view: legends (colour and marker entries) and the page's choices.

Colours and marker symbols come from `dashboard.figures` (one colour per class everywhere, one marker
symbol per true class), so the component and the plotly fallback agree.
"""

from __future__ import annotations

import pandas as pd

from dashboard.figures import COLOUR_MODES, CORRECT_COLORS, DATABASE_PALETTE, NEUTRAL, ClassStyle, marker_meaning
from data_catalog.taxonomy import MARKER_SYMBOLS

from .selection import COLOUR_COLUMNS


def _ranked(values, style: ClassStyle) -> list:
    rank = {c: i for i, c in enumerate(style.order())}
    return sorted(set(values), key=lambda c: (rank.get(c, len(rank)), str(c)))


def colour_legend(pts: pd.DataFrame, style: ClassStyle, colour: str) -> list[dict]:
    present = pts[COLOUR_COLUMNS.get(colour, "pred")].unique() if len(pts) else []
    if colour == "correct":
        return [{"id": k, "name": k, "color": CORRECT_COLORS.get(k, NEUTRAL)} for k in CORRECT_COLORS if k in set(present)]
    if colour == "database":
        dbs = sorted(pts["database"].unique()) if len(pts) else []
        return [{"id": d, "name": d, "color": DATABASE_PALETTE[i % len(DATABASE_PALETTE)]} for i, d in enumerate(dbs)]
    return [{"id": c, "name": style.name(c), "color": style.color(c)} for c in _ranked(present, style)]


def marker_legend(pts: pd.DataFrame, style: ClassStyle, colour: str = "pred") -> list[dict]:
    column = "pred" if marker_meaning(colour) == "predicted class" else "true_class"
    present = pts[column].unique() if len(pts) else []
    return [{"id": c, "name": style.name(c), "symbol": MARKER_SYMBOLS.index(style.symbol(c))}
            for c in _ranked(present, style)]


def map_config(view, pts: pd.DataFrame, classifier: str | None = None, height: int = 620) -> dict:
    """The component's `config` for a page's view (`controls.View`) and the points it shows."""
    return {
        "classifier": classifier or view.classifier, "datasets": list(view.datasets), "level": view.level,
        "colour": view.colour, "colour_title": COLOUR_MODES[view.colour],
        "colour_legend": colour_legend(pts, view.style, view.colour),
        "marker": "pred" if marker_meaning(view.colour) == "predicted class" else "true",
        "marker_title": marker_meaning(view.colour),
        "marker_legend": marker_legend(pts, view.style, view.colour),
        "class_names": {c: view.style.name(c) for c in view.style.order()}, "height": height,
    }
