"""Plotly figures built from cached arrays (never row-by-row).

One colour per class everywhere (the run's taxonomy; `real` always #0072B2),
one marker symbol per true class (`MARKER_SYMBOLS` in class order).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from data_catalog.errors import AtlasError
from data_catalog.names import printable
from data_catalog.records import REAL, UNSEEN_FAKE
from data_catalog.taxonomy import FAKE_COLOR, MARKER_SYMBOLS, UNSEEN_FAKE_COLOR, Taxonomy

from .queries import FAKE, NO_PRED, UNLABELLED

REAL_COLOR = "#0072B2"
NEUTRAL = "#BBBBBB"
CORRECT_COLORS = {"correct": "#009E73", "incorrect": "#D55E00", "unknown": "#999999"}
# Okabe-Ito without blue/vermillion/green (taken above), then Tol's extra.
DATABASE_PALETTE = ("#E69F00", "#56B4E9", "#CC79A7", "#F0E442", "#000000", "#332288", "#44AA99", "#AA4499",
                    "#999933", "#661100")
COLOUR_MODES = {"pred": "predicted class", "true": "true class", "correct": "correct / incorrect",
                "database": "database"}


def marker_meaning(colour_mode: str) -> str:
    """What a marker's shape shows in a colour mode: the true class, or the predicted class when the colour
    already shows the true class (the one rule of `map_figure` and the map component)."""
    return "predicted class" if colour_mode == "true" else "true class"


# Colours for classes a run's stored taxonomy does not colour (runs stored without one): Paul Tol's
# muted colour-blind-safe set first; past its 11 colours, hues spaced by the golden angle at two
# lightness levels (distinct, no longer guaranteed colour-blind safe; the marker shapes still differ).
FALLBACK_COLORS = ("#CC6677", "#DDCC77", "#117733", "#88CCEE", "#882255", "#44AA99", "#999933", "#AA4499",
                   "#332288", "#E69F00", "#56B4E9")


def fallback_color(i: int) -> str:
    """The i-th fallback colour (see FALLBACK_COLORS)."""
    if i < len(FALLBACK_COLORS):
        return FALLBACK_COLORS[i]
    import colorsys

    k = i - len(FALLBACK_COLORS)
    r, g, b = colorsys.hls_to_rgb((k * 0.381966) % 1.0, 0.38 if k % 2 else 0.55, 0.65)
    return "#{:02X}{:02X}{:02X}".format(round(255 * r), round(255 * g), round(255 * b))


@dataclass(frozen=True)
class ClassStyle:
    """Names, colours and symbols for one run's classes (from its stored taxonomy)."""

    ids: tuple[str, ...]
    names: dict
    colors: dict

    @classmethod
    def for_run(cls, classes, taxonomy_json: str | None) -> "ClassStyle":
        classes = tuple(classes)
        tax = None
        if taxonomy_json:
            try:
                tax = Taxonomy.from_dict(json.loads(taxonomy_json), "runs.taxonomy_json")
            except (ValueError, AtlasError):
                tax = None
        names, colors = {}, {}
        for i, c in enumerate(classes):
            names[c] = tax.display_name(c) if tax else c
            colors[c] = tax.color(c) if tax and c in tax.ids else fallback_color(i)
        colors[REAL] = REAL_COLOR
        names.setdefault(REAL, "Real")
        names.update({UNSEEN_FAKE: "Unseen fake", FAKE: "Fake (no attribution)", UNLABELLED: "Unlabelled",
                      NO_PRED: "No prediction"})
        colors.update({UNSEEN_FAKE: UNSEEN_FAKE_COLOR, FAKE: FAKE_COLOR, UNLABELLED: NEUTRAL, NO_PRED: NEUTRAL})
        return cls(classes, names, colors)

    def order(self) -> list[str]:
        return list(self.ids) + [FAKE, UNSEEN_FAKE, UNLABELLED, NO_PRED]

    def name(self, c: str) -> str:
        return self.names.get(c, str(c))

    def color(self, c: str) -> str:
        return self.colors.get(c, NEUTRAL)

    def symbol(self, c: str) -> str:
        order = self.order()
        i = order.index(c) if c in order else len(order)
        return MARKER_SYMBOLS[i % len(MARKER_SYMBOLS)]


def hover_text(name) -> str:
    """A name as plotly hover text: plotly renders `<b>`, `<a href>` and `<br>` in labels, so a video
    id or folder name is escaped (and kept on one line) before it reaches a label."""
    return html.escape(printable(name), quote=False)


def hover_names(video_ids: pd.Series) -> np.ndarray:
    """`hover_text` of every point's video id, computed once per distinct video (many faces share one)."""
    codes, uniques = pd.factorize(video_ids, sort=False)
    escaped = np.array([hover_text(v) for v in uniques], dtype=object)
    return escaped[codes] if len(uniques) else np.array([], dtype=object)


def _colour_of(mode: str, style: ClassStyle, databases: list[str]):
    if mode == "correct":
        return lambda k: CORRECT_COLORS.get(k, NEUTRAL), lambda k: k
    if mode == "database":
        lut = {d: DATABASE_PALETTE[i % len(DATABASE_PALETTE)] for i, d in enumerate(databases)}
        return lambda k: lut.get(k, NEUTRAL), lambda k: k
    return style.color, style.name


def map_figure(pts: pd.DataFrame, style: ClassStyle, colour_mode: str = "pred", density: bool = False,
               title: str = "", height: int = 620) -> tuple[go.Figure, list]:
    """The t-SNE map as Scattergl traces, one per (colour group, symbol group).

    Returns the figure and, per trace, the row indices into `pts` it draws
    (None for legend-only and density traces), to map a selection back.
    Colour = `colour_mode` (predicted class by default); marker symbol = true
    class (predicted class when colouring by true class).
    """
    colour_col = {"pred": "pred", "true": "true_class", "correct": "correct", "database": "database"}[colour_mode]
    symbol_col = "pred" if marker_meaning(colour_mode) == "predicted class" else "true_class"
    databases = sorted(pts["database"].unique()) if len(pts) else []
    colour_fn, label_fn = _colour_of(colour_mode, style, databases)
    order = style.order()
    rank = {c: i for i, c in enumerate(order)}

    def key(k):
        return (rank.get(k, len(rank)), str(k))

    fig = go.Figure()
    rows: list = []
    if len(pts):
        groups = pts.groupby([colour_col, symbol_col], sort=False).indices
        x, y = pts["x"].to_numpy(np.float32), pts["y"].to_numpy(np.float32)
        vid = hover_names(pts["video_id"])
        score = np.round(pts["real_score"].to_numpy(float), 3).astype(np.float32)
        true_arr, pred_arr = pts["true_class"].to_numpy(dtype=object), pts["pred"].to_numpy(dtype=object)
        colour_keys = []
        for (ck, sk) in sorted(groups, key=lambda g: (key(g[0]), key(g[1]))):
            idx = groups[(ck, sk)]
            t, p = true_arr[idx[0]], pred_arr[idx[0]]
            where = f" ({hover_text(ck)})" if colour_mode == "database" else ""
            hover = (f"<b>%{{text}}</b>{where}<br>true: {hover_text(style.name(t))}<br>"
                     f"predicted: {hover_text(style.name(p))}"
                     "<br>real-score: %{customdata:.3f}<extra></extra>")
            fig.add_trace(go.Scattergl(
                x=x[idx], y=y[idx], mode="markers", text=vid[idx].tolist(), customdata=score[idx],
                hovertemplate=hover, name=hover_text(f"{label_fn(ck)} / {style.name(sk)}"), legendgroup=f"c:{ck}",
                showlegend=False,
                marker=dict(color=colour_fn(ck), symbol=style.symbol(sk), size=6, opacity=0.85,
                            line=dict(width=0)),
            ))
            rows.append(idx)
            if ck not in colour_keys:
                colour_keys.append(ck)
        # Legend entries: one per colour (clicking toggles all its traces), then the marker symbols.
        for ck in colour_keys:
            fig.add_trace(go.Scattergl(
                x=[None], y=[None], mode="markers", name=hover_text(label_fn(ck)), legendgroup=f"c:{ck}",
                legendgrouptitle_text=None, marker=dict(color=colour_fn(ck), symbol="circle", size=9),
                hoverinfo="skip"))
            rows.append(None)
        # Legend-only entries explaining the marker symbols.
        for sk in sorted(pts[symbol_col].unique(), key=key):
            fig.add_trace(go.Scattergl(
                x=[None], y=[None], mode="markers", name=hover_text(style.name(sk)), legendgroup="symbols",
                legendgrouptitle_text="marker = " + marker_meaning(colour_mode),
                marker=dict(color="#444444", symbol=style.symbol(sk), size=8), hoverinfo="skip",
            ))
            rows.append(None)
        if density:
            fig.add_trace(go.Histogram2dContour(
                x=x, y=y, ncontours=12, colorscale="Greys", showscale=False, contours_coloring="lines",
                line_width=1, opacity=0.5, hoverinfo="skip", name="density", showlegend=False))
            rows.append(None)
    fig.update_layout(
        title=title or None, height=height, margin=dict(l=10, r=10, t=40 if title else 10, b=10),
        dragmode="lasso", legend=dict(itemsizing="constant", groupclick="togglegroup", font=dict(size=11)),
        xaxis=dict(showticklabels=False, title=None, zeroline=False),
        yaxis=dict(showticklabels=False, title=None, zeroline=False, scaleanchor="x"),
        plot_bgcolor="white", uirevision="map", template="plotly_white",
    )
    return fig, rows


def selected_rows(selection, trace_rows: list) -> np.ndarray:
    """Row indices of the points in a plotly selection event (box, lasso or click)."""
    points = []
    if selection is None:
        return np.zeros(0, dtype=np.int64)
    sel = selection.get("selection", selection) if isinstance(selection, dict) else getattr(selection, "selection",
                                                                                              selection)
    pts = sel.get("points", []) if isinstance(sel, dict) else getattr(sel, "points", [])
    for p in pts or []:
        c = p.get("curve_number")
        i = p.get("point_index", p.get("point_number"))
        if c is None or i is None or c >= len(trace_rows) or trace_rows[c] is None:
            continue
        rows = trace_rows[c]
        if 0 <= i < len(rows):
            points.append(rows[i])
    return np.unique(np.asarray(points, dtype=np.int64))


DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
DET_TICKS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.95)


def det_range(curves: list[dict]) -> tuple[float, float]:
    """DET axis limits (as error rates) that hold the curves' data and end on ticks: the lowest tick at or
    below the smallest non-zero error rate, the highest at or above the largest one (0 % is drawn on
    the lower edge; a probit axis has no 0)."""
    values = np.concatenate([np.r_[np.asarray(c["fpr"], float), np.asarray(c["fnr"], float)] for c in curves]
                            or [np.array([])])
    positive = values[(values > 0) & (values < 1)]
    if not positive.size:
        return DET_TICKS[0], 0.5
    lo = max([t for t in DET_TICKS if t <= positive.min()] or [DET_TICKS[0]])
    hi = min([t for t in DET_TICKS if t >= positive.max()] or [DET_TICKS[-1]])
    return lo, max(hi, 0.5) if hi <= lo else hi


def coinciding(curves: list[dict]) -> list[tuple[str, str]]:
    """Pairs of curves with the same points (they would hide each other: said in a note)."""
    out = []
    for i, a in enumerate(curves):
        for b in curves[i + 1:]:
            if (len(a["fpr"]) == len(b["fpr"]) and np.allclose(a["fpr"], b["fpr"])
                    and np.allclose(a["fnr"], b["fnr"])):
                out.append((a["label"], b["label"]))
    return out


def roc_det_figures(curves: list[dict]) -> tuple[go.Figure, go.Figure]:
    """ROC and DET from [{'label', 'fpr', 'fnr', 'color', 'auc', 'theta_point'}]; real is the positive class.

    FPR = fakes accepted as real, FNR = reals rejected (DESIGN.md "Metrics"). Each curve's legend entry
    carries its AUC; `theta_point` (FPR, FNR at the run's θ from validation) is marked on both plots.
    Curves take one dash style each, so coinciding curves stay told apart. DET axes are probit-scaled,
    drawn as ticks on a normal-deviate axis and clipped to the data (`det_range`).
    """
    from scipy.stats import norm

    roc, det = go.Figure(), go.Figure()
    lo, hi = det_range(curves)
    z = lambda v: norm.ppf(np.clip(np.asarray(v, float), lo, hi))  # noqa: E731
    for i, c in enumerate(curves):
        fpr, fnr = np.asarray(c["fpr"], float), np.asarray(c["fnr"], float)
        auc = c.get("auc")
        name = hover_text(c["label"]) + ("" if auc is None or not np.isfinite(auc) else f" (AUC {auc:.3f})")
        line = dict(color=c.get("color"), dash=DASHES[i % len(DASHES)], width=2)
        roc.add_trace(go.Scatter(x=fpr, y=1 - fnr, mode="lines", name=name, legendgroup=str(i), line=line))
        det.add_trace(go.Scatter(x=z(fpr), y=z(fnr), mode="lines", name=name, legendgroup=str(i), line=line))
        op = c.get("theta_point")
        if op is not None:
            hover = (f"{hover_text(c['label'])} at θ = {c.get('theta', float('nan')):.4f}<br>"
                     f"FPR {op[0]:.2%} · FNR {op[1]:.2%}<extra></extra>")
            marker = dict(color=c.get("color"), size=11, symbol="x-thin-open" if i % 2 else "circle-open",
                          line=dict(width=3, color=c.get("color")))
            roc.add_trace(go.Scatter(x=[op[0]], y=[1 - op[1]], mode="markers", marker=marker, legendgroup=str(i),
                                     showlegend=False, hovertemplate=hover))
            det.add_trace(go.Scatter(x=z([op[0]]), y=z([op[1]]), mode="markers", marker=marker,
                                     legendgroup=str(i), showlegend=False, hovertemplate=hover))
    roc.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color="#999999"),
                             showlegend=False, hoverinfo="skip"))
    legend = dict(orientation="h", yanchor="top", y=-0.18, xanchor="left", x=0)
    roc.update_layout(height=460, margin=dict(l=10, r=10, t=30, b=10), title="ROC (positive = real) · ○ = θ",
                      xaxis=dict(title="FPR (fakes accepted)", range=[-0.01, 1.01]),
                      yaxis=dict(title="1 - FNR (reals accepted)", range=[-0.01, 1.01]), legend=legend)
    ticks = np.array([t for t in DET_TICKS if lo <= t <= hi])
    tickvals, ticktext = norm.ppf(ticks), [f"{t:.0%}" if t >= 0.01 else f"{t:.1%}" for t in ticks]
    axis = dict(tickvals=[float(v) for v in tickvals], ticktext=ticktext,
                range=[float(norm.ppf(lo)) - 0.05, float(norm.ppf(hi)) + 0.05])
    det.update_layout(height=460, margin=dict(l=10, r=10, t=30, b=10), title="DET · ○ = θ", legend=legend,
                      xaxis=dict(title="FPR (fakes accepted)", **axis),
                      yaxis=dict(title="FNR (reals rejected)", **axis))
    return roc, det


def to_html(fig) -> str:
    """A self-contained HTML file of a figure (plotly.js inlined: works offline)."""
    import plotly.io as pio

    return pio.to_html(fig, include_plotlyjs=True, full_html=True)
