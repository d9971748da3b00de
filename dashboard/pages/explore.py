"""Explore: the t-SNE map (colour = predicted class, marker = true class), live metrics,
confusion of true vs predicted attribution, and the faces behind a selection."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import controls, figures, layout, queries, states, tables, video_panel
from dashboard.summaries import confusion_or_distribution, confusion_parts, evaluate_points, selected_cell
from dashboard.components import scatter_map
from dashboard.components.scatter_map import selection as map_selection
from dashboard.components.scatter_map import views as map_views
from dashboard.plain import plain
from data_catalog.records import UNSEEN_FAKE

MAX_THUMBS = 60


# Figures are cached as shared resources, not pickled copies: unpickling a 50,000-point figure costs more
# than the whole rerun budget, and a pickled go.Figure loses its template, which changes the chart's
# element id between reruns and drops the user's selection. They are read-only: nothing mutates them.
@st.cache_resource(show_spinner=False, max_entries=12)
def map_figure(path, sig, run_id, classifier, datasets, level, aggregation, top_k, colour, density, _style):
    """(figure, per-trace row indices, number of points)."""
    pts = queries.map_points(path, sig, run_id, classifier, datasets, level, aggregation, top_k)
    fig, rows = figures.map_figure(pts, _style, colour, density)
    return fig, rows, len(pts)


@st.cache_resource(show_spinner=False, max_entries=12)
def summary(path, sig, run_id, classifier, datasets, level, aggregation, top_k, mapped, _view):
    """Pooled metrics, confusion / distribution figures for the shown points (cached per view)."""
    pts = queries.map_points(path, sig, run_id, classifier, datasets, level, aggregation, top_k) if mapped \
        else _labelled_scores(_view)
    pooled = evaluate_points(_view, pts) if len(datasets) > 1 else None
    return pooled, confusion_parts(_view, pts)


def metrics_panel(view, pooled) -> None:
    agg = f" (video score: {tables.aggregation_text(view)})" if view.level == "video" else ""
    st.markdown(f"**Metrics** — {view.level} level{agg}, θ from validation at FPR ≤ 10 %")
    mt = queries.metrics_table(view.path, view.sig, view.level, 0, view.aggregation, view.top_k)
    keys = tables.metric_keys(queries.overview(view.path, view.sig)["datasets"], view.datasets)
    sel = mt.loc[(mt["run_id"] == view.run_id) & (mt["classifier"] == view.classifier) & mt["dataset"].isin(keys)
                 & ((mt["n_real"] + mt["n_fake"]) > 0)]
    table = tables.paper_table(sel).drop(columns=["Approach"])
    first = [c for c in ("Test DB", "HTER (%)", "AUC", "Acc (%)") if c in table.columns]  # key numbers in view
    table = table[first + [c for c in table.columns if c not in first]]
    st.dataframe(table, hide_index=True, key="metrics_table", width="stretch", height=tables.full_height(table),
                 column_config={"Test DB": tables.PINNED["Test DB"]})
    m = pooled
    if m is not None:
        st.caption("All shown databases pooled: AUC {:.2f} · FNR {:.2f} % · FPR {:.2f} % · HTER {:.2f} %".format(
            100 * m.auc, 100 * m.fnr, 100 * m.fpr, 100 * m.hter))
    with st.expander("All approaches on these databases (paper's Table 1/2 layout)"):
        from engine.evaluation import default_rows

        others = mt.loc[mt["dataset"].isin(keys) & ((mt["n_real"] + mt["n_fake"]) > 0)]
        every = tables.paper_table(default_rows(others))
        st.dataframe(every, hide_index=True, key="all_approaches", width="stretch",
                     height=tables.full_height(every), column_config=tables.PINNED)
    notes = sel["note"].dropna() if "note" in sel.columns else []
    for n in sorted(set(n for n in notes if n)):
        st.caption(f"note: {plain(n)}")


def selection_panel(view, pts: pd.DataFrame, rows: np.ndarray) -> None:
    sub = pts.iloc[rows]
    st.subheader(f"Selection: {len(sub):,} faces from {sub['video_id'].nunique():,} videos")
    c1, c2 = st.container(), st.container()  # stacked: the panel beside the map is narrow
    with c1:
        m = evaluate_points(view, sub)
        if m is not None:
            st.dataframe(pd.DataFrame([tables.metric_row(m, "selection")]), hide_index=True, key="selection_metrics")
        else:
            st.caption("No labelled faces in the selection: no metrics.")
        unit = sub.drop_duplicates("video_id") if view.level == "video" else sub
        breakdown = pd.crosstab(unit["true_class"], unit["pred"])
        rank = {c: i for i, c in enumerate(view.style.order())}
        breakdown = breakdown.loc[sorted(breakdown.index, key=lambda c: rank.get(c, 99)),
                                  sorted(breakdown.columns, key=lambda c: rank.get(c, 99))]
        breakdown = breakdown.rename(index=view.style.name, columns=view.style.name)
        breakdown.index.name, breakdown.columns.name = "true \\ predicted", None
        st.markdown("**Class breakdown** (rows true, columns predicted)")
        st.dataframe(breakdown, key="selection_breakdown")
    with c2:
        # An even spread over the selection, grouped by predicted then true class.
        ordered = sub.sort_values(["pred", "true_class", "video_id"], kind="stable")
        shown = ordered.iloc[np.unique(np.linspace(0, len(ordered) - 1, min(MAX_THUMBS, len(ordered))).astype(int))]
        thumbs = queries.thumbnails(view.path, view.sig, tuple(shown["face_id"]))
        caps = [f"{plain(view.style.name(t))} → {plain(view.style.name(p))}"
                for t, p in zip(shown["true_class"], shown["pred"])]
        have = [i for i, b in enumerate(thumbs) if b]
        if have:
            st.image([thumbs[i] for i in have], caption=[caps[i] for i in have], width=72)
        else:
            st.caption("No thumbnails stored for these faces.")
        if len(sub) > MAX_THUMBS:
            st.caption(f"showing {len(shown)} of {len(sub):,} faces, spread over the selection")


def page() -> None:
    view = controls.current()
    ws = str(queries.workspace_root())
    st.header(f"{tables.display_label(view.approach, view.classifier or 'native')} · embedding map")
    if states.run_not_ready(view, ws):
        return
    if view.classifier is None:
        states.no_predictions(view, ws)
        return
    if not view.datasets:
        st.info("Pick at least one test database in the sidebar.")
        return
    key = (view.path, view.sig, view.run_id, view.classifier, view.datasets, view.level, view.aggregation, view.top_k)
    states.map_state(view, ws, queries.map_status(view.path, view.sig, view.run_id))
    layout.map_beside_panel()
    left, right = st.container(key="explore_body").columns([2, 1], gap="medium")
    rows = np.zeros(0, dtype=np.int64)
    component = scatter_map.available()
    with left:
        if component:
            highlight_opened(view)
            rows, n_points = component_map(view, key, ws)
            video_panel.from_click(scatter_map.clicked("map"))  # a point click (once) opens its video
        else:
            rows, n_points = plotly_map(view, key, ws)
            open_single_video(queries.map_points(*key), rows)
    # The panel beside the map scrolls on its own, so a selection's faces and metrics appear (on top)
    # without scrolling the page, on a projector as on a laptop.
    with right.container(height=layout.PANEL_HEIGHT, key="explore_panel", border=False):
        with st.expander("Open a video (drill-down)", expanded=video_panel.opened() is None and not len(rows)):
            pts = queries.map_points(*key)
            video_panel.picker(view, "explore_drill", pts["video_id"].drop_duplicates().head(500).tolist())
        if video_panel.opened():
            # the component highlights the open video itself (its selection); the plotly map cannot: the
            # panel then draws the video's place on its own small map
            video_panel.panel(view, show_map=not component, key="explore_drill")
        if len(rows):
            with st.container(key="selection_panel"):
                selection_panel(view, queries.map_points(*key), rows)
            st.divider()
        pooled, parts = summary(*key, n_points > 0, _view=view)
        metrics_panel(view, pooled)
        confusion_or_distribution(parts, key="map", cell_select=scatter_map.available())


def component_map(view, key: tuple, ws: str) -> tuple[np.ndarray, int]:
    """The map held in the browser (dashboard.components.scatter_map): (selected rows, points shown)."""
    pts = queries.map_points(*key)
    if pts.empty:
        states.no_projection(view, ws)
        return np.zeros(0, dtype=np.int64), 0
    drawn = map_views.explore_map(view, pts, command=cell_command(view))
    if drawn is None:
        states.no_projection(view, ws)
        return np.zeros(0, dtype=np.int64), 0
    rows, sel, _state = drawn
    unit = "videos" if view.level == "video" else "faces"
    n_shown = pts["video_id"].nunique() if view.level == "video" else len(pts)
    st.caption(f"{n_shown:,} {unit} on the map · colour: {figures.COLOUR_MODES[view.colour]} · "
               f"marker: {figures.marker_meaning(view.colour)} · "
               "Lasso / Box select, Pan to move, wheel to zoom, click a legend entry to hide it")
    if sel and not len(rows):
        st.info(f"Nothing selected: {plain(map_selection.describe(sel, view.style.name))} matches no shown point.")
    return rows, len(pts)


def highlight_opened(view) -> None:
    """A video opened without a map click (picker, search) is selected on the component map, zoomed to it."""
    info = video_panel.opened()
    vid = (info or {}).get("video")
    if not vid or st.session_state.get("_drill_highlighted") == vid:
        return
    st.session_state["_drill_highlighted"] = vid
    if info.get("source") == "map point":  # the click has selected it on the map already
        return
    seq = (st.session_state.get("_map_command") or {}).get("seq", 0) + 1
    st.session_state["_map_command"] = {"seq": seq, "select": {"kind": "videos", "videos": [vid]}, "zoom": True}


def open_single_video(pts: pd.DataFrame, rows: np.ndarray) -> None:
    """On the plotly map a click or a small box on one video's faces opens that video (once per selection)."""
    vids = pts["video_id"].iloc[rows].unique() if len(rows) else []
    last = st.session_state.get("_drill_single")
    if len(vids) == 1 and last != vids[0]:
        video_panel.open_video(vids[0], "map selection")
    st.session_state["_drill_single"] = vids[0] if len(vids) == 1 else None


def cell_command(view) -> dict | None:
    """A click on a confusion-table cell, as a selection command for the map (once per click)."""
    cell = selected_cell("map")
    last = st.session_state.get("_map_cell_event")
    if cell is None:
        st.session_state["_map_cell_event"] = None
        return st.session_state.get("_map_command")
    if cell != last:
        st.session_state["_map_cell_event"] = cell
        by_name = {view.style.name(c): c for c in view.style.order()}
        true = by_name.get(cell[0], UNSEEN_FAKE if cell[0].startswith("Unseen fake") else cell[0])
        seq = (st.session_state.get("_map_command") or {}).get("seq", 0) + 1
        st.session_state["_map_command"] = {"seq": seq, "select": {"kind": "cell", "true": true,
                                                                   "pred": by_name.get(cell[1], cell[1])}}
        return st.session_state["_map_command"]
    return st.session_state.get("_map_command")


def plotly_map(view, key: tuple, ws: str) -> tuple[np.ndarray, int]:
    """The plotly map (the fallback without the component's built files, or DFATLAS_MAP=plotly)."""
    rows = np.zeros(0, dtype=np.int64)
    density = st.session_state.get("density", False)
    fig, trace_rows, n_points = map_figure(*key, view.colour, density, _style=view.style)
    if n_points == 0:
        states.no_projection(view, ws)
    else:
        st.toggle("Density contours", key="density", value=False,
                  help="contour lines of point density; useful for very large sets")
        event = st.plotly_chart(fig, key="map", on_select="rerun", selection_mode=("box", "lasso", "points"),
                                config={"displaylogo": False,
                                        "toImageButtonOptions": {"format": "png", "filename": "dfatlas-map"}})
        rows = figures.selected_rows(event, trace_rows)
        st.caption(f"{n_points:,} faces on the map · colour: {figures.COLOUR_MODES[view.colour]} · "
                   f"marker: {figures.marker_meaning(view.colour)} · box/lasso-select to see the faces and their metrics · "
                   "PNG: camera icon in the map's toolbar")
        st.download_button("Map as HTML", data=lambda: figures.to_html(fig),
                           file_name=f"dfatlas-map-{view.run_id}.html", mime="text/html",
                           on_click="ignore", key="map_html")
    return rows, n_points


def _labelled_scores(view) -> pd.DataFrame:
    """Points without coordinates (no projection yet): metrics and confusion still work."""
    return queries.scores(view.path, view.sig, view.run_id, view.classifier, view.datasets, view.level,
                          view.aggregation, view.top_k)


page()
