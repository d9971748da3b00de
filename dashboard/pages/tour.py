"""Guided tour: seven steps for a class (dashboard.tour.STEPS), each setting the view it explains.

Next / Back set the sidebar's own state (run, classifier, databases, colour) in a callback, before the
sidebar is drawn, so the URL carries the step's view like any other page's; `step` and `hl` (the
highlight) are the tour's own parameters. "Projector" enlarges the text.
"""

from __future__ import annotations

import dataclasses

import streamlit as st

from dashboard import controls, figures, layout, queries, tables, tour
from dashboard.components import scatter_map
from dashboard.components.scatter_map import views as map_views
from dashboard.plain import plain
from engine.evaluation import default_rows

BIG_TEXT = """<style>
.st-key-tour_text p, .st-key-tour_text li { font-size: 1.55rem !important; line-height: 1.45 !important; }
.st-key-tour_text h2 { font-size: 2.3rem !important; }
</style>"""


def apply_step(index: int) -> None:
    """Set the sidebar state to step `index`'s view (a button callback: runs before the next script run)."""
    step = tour.step_at(index)
    path, sig = queries.store_path(), queries.signature(queries.store_path())
    ov = queries.overview(path, sig)
    run_id = tour.run_of(ov, step.approach) or st.session_state.get("run")
    st.session_state["tour_step"] = index
    st.session_state["tour_seq"] = st.session_state.get("tour_seq", 0) + 1  # a new highlight command
    st.query_params["step"] = str(index + 1)
    st.query_params["hl"] = "none"  # the step's map writes its highlight
    for name in ("sel", "zoom"):  # the step's map starts from its own view (the highlight, all points)
        st.query_params.pop(name, None)
    if run_id is None:
        return
    classifier = tour.classifier_of(ov, run_id)
    st.session_state["run"] = run_id
    st.session_state["_classifier_run"] = run_id  # the sidebar keeps this classifier (the run's default)
    if classifier:
        st.session_state["classifier"] = classifier
        st.session_state["datasets"] = tour.datasets_of(path, sig, ov, run_id, classifier, step.with_unseen)
    st.session_state["colour"] = step.colour


def _first_visit() -> None:
    """On the session's first tour page: the step from the URL (?step=N), applied, then drawn."""
    if "tour_step" in st.session_state:
        return
    try:
        index = int(st.query_params.get("step", "1")) - 1
    except ValueError:
        index = 0
    apply_step(max(0, min(index, len(tour.STEPS) - 1)))
    st.rerun()


def draw_map(view, step, run_id: str, key: str, height: int, group: str | None = None) -> None:
    """One step's map: the sidebar's view with the step's highlight, or (`group`) one of two linked maps."""
    ov = queries.overview(view.path, view.sig)
    classifier = tour.classifier_of(ov, run_id)
    r = ov["runs"].set_index("run_id").loc[run_id]
    side = dataclasses.replace(view, run_id=run_id, classifier=classifier, approach=r["approach"],
                               style=view.style.for_run(r["classes"], r.get("taxonomy_json")))
    pts = queries.map_points(view.path, view.sig, run_id, classifier, view.datasets, view.level)
    if pts.empty:
        st.info("No map for this run on these databases yet (`dfatlas project`).")
        return
    selection = tour.highlight_selection(step, pts) if group is None else None
    if group is None:
        st.query_params["hl"] = tour.describe(selection) or "none"
    if scatter_map.available():
        if group is None:
            command = {"seq": st.session_state.get("tour_seq", 0), "select": selection}
            map_views.explore_map(side, pts, key=key, height=height, command=command)
        else:
            map_views.linked_map(side, pts, run_id, classifier, key=key, group=group, height=height)
    else:
        fig, _rows = figures.map_figure(pts, side.style, view.colour, height=height)
        st.plotly_chart(fig, key=key, config={"displaylogo": False})


def page() -> None:
    _first_visit()
    view = controls.current()
    index = st.session_state.get("tour_step", 0)
    step = tour.step_at(index)
    n = len(tour.STEPS)
    if st.toggle("Projector (large text)", key="tour_big", value=st.query_params.get("big") == "1"):
        st.html(BIG_TEXT)
        st.query_params["big"] = "1"
    else:
        st.query_params.pop("big", None)
    layout.map_beside_panel()  # the narrow sidebar and margins of small screens
    text, shown = st.columns([1, 2], gap="medium")
    with text.container(key="tour_text"):
        st.caption(f"Guided tour · step {index + 1} of {n}")
        st.header(step.title)
        st.markdown(plain(step.text))
        if step.colour:
            st.markdown(f"Colour: **{figures.COLOUR_MODES[step.colour]}** · marker: "
                        f"**{figures.marker_meaning(step.colour)}**")
        back, nxt = st.columns(2)
        back.button("← Back", key="tour_back", disabled=index == 0, on_click=apply_step, args=(index - 1,),
                    width="stretch")
        nxt.button("Next →", key="tour_next", disabled=index == n - 1, on_click=apply_step, args=(index + 1,),
                   type="primary", width="stretch")
    run_id = tour.run_of(queries.overview(view.path, view.sig), step.approach)
    with shown:
        if step.numbers:
            mt = queries.metrics_table(view.path, view.sig, "video")
            same = default_rows(mt.loc[(mt["role"] == "same-db") & ((mt["n_real"] + mt["n_fake"]) > 0)])
            st.markdown("**Table 1: each approach on the test splits of the training databases** (video level)")
            shown_table = tables.paper_table(same)
            st.dataframe(shown_table, hide_index=True, key="tour_table", width="stretch",
                         height=tables.full_height(shown_table), column_config=tables.PINNED)
        elif run_id is None:
            st.info(f"This workspace has no finished {plain(step.approach)} run for this step.")
        elif step.beside:
            other = tour.run_of(queries.overview(view.path, view.sig), step.beside)
            left, right = st.columns(2)
            for col, rid, side in ((left, run_id, "a"), (right, other, "b")):
                with col:
                    if rid is None:
                        st.info("No finished run of this approach.")
                        continue
                    st.markdown(f"**{plain(tables.display_label(*_approach_and_classifier(view, rid)))}**")
                    draw_map(view, step, rid, key=f"tour_map_{side}", height=460, group="tour")
        else:
            draw_map(view, step, run_id, key="tour_map", height=layout.MAP_HEIGHT)


def _approach_and_classifier(view, run_id: str) -> tuple[str, str]:
    ov = queries.overview(view.path, view.sig)
    approach = ov["runs"].set_index("run_id").loc[run_id, "approach"]
    return approach, tour.classifier_of(ov, run_id) or "native"


page()
