"""Plotly figures built from cached arrays (never row-by-row).

The map's look — class colours, marker symbols, `ClassStyle`, `map_figure` — lives in `engine.map_view`
(shared with the `dfatlas` Python API) and is re-exported here for the pages.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from engine.map_view import (COLOUR_MODES, CORRECT_COLORS, DATABASE_PALETTE, FALLBACK_COLORS,  # noqa: F401
                             NEUTRAL, REAL_COLOR, ClassStyle, fallback_color, hover_names, hover_text, map_figure,
                             marker_meaning)


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


def frame_scores_figure(frame_index, real_scores, theta: float | None, height: int = 180) -> go.Figure:
    """A video's real-score per sampled frame (in frame order), with θ as a dashed line: the drill-down's chart."""
    fig = go.Figure(go.Scatter(x=list(frame_index), y=list(real_scores), mode="lines+markers", name="real-score",
                               line=dict(color=REAL_COLOR), hovertemplate="frame %{x}: %{y:.3f}<extra></extra>"))
    if theta is not None and np.isfinite(theta):
        fig.add_hline(y=theta, line_dash="dash", line_color="#B00020", annotation_text=f"θ = {theta:.3f}",
                      annotation_position="top left")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10), showlegend=False,
                      xaxis=dict(title="frame"), yaxis=dict(title="real-score", range=[-0.02, 1.02]))
    return fig


def position_figure(background: pd.DataFrame, video: pd.DataFrame, style: ClassStyle, height: int = 260) -> go.Figure:
    """Where one video lies: the map's points small and grey, the video's faces large, outlined, on top, and
    their mean position as a cross (the drill-down's own map, whatever map the page draws)."""
    fig = go.Figure()
    if len(background):
        fig.add_trace(go.Scattergl(x=background["x"], y=background["y"], mode="markers", hoverinfo="skip",
                                   marker=dict(color=[style.color(c) for c in background["true_class"]], size=4,
                                               opacity=0.25), showlegend=False))
    if len(video):
        fig.add_trace(go.Scattergl(x=video["x"], y=video["y"], mode="markers", hoverinfo="skip", showlegend=False,
                                   marker=dict(color=[style.color(c) for c in video["pred"]], size=12,
                                               line=dict(width=2, color="#000000"))))
        fig.add_trace(go.Scatter(x=[float(video["x"].mean())], y=[float(video["y"].mean())], mode="markers",
                                 hoverinfo="skip", showlegend=False,
                                 marker=dict(symbol="x-thin", size=18, line=dict(width=3, color="#000000"))))
    fig.update_layout(height=height, margin=dict(l=5, r=5, t=5, b=5), plot_bgcolor="white",
                      xaxis=dict(showticklabels=False, zeroline=False, showgrid=False),
                      yaxis=dict(showticklabels=False, zeroline=False, showgrid=False, scaleanchor="x"))
    return fig


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
