"""Compare: two approaches (or two classifiers of one run) side by side, same databases, linked colours."""

from __future__ import annotations

import streamlit as st

from dashboard import controls, figures, queries, states, tables
from dashboard.components import scatter_map
from dashboard.components.scatter_map import views as map_views
from dashboard.plain import literal, plain
from engine.classify import CLASSIFIERS


@st.cache_resource(show_spinner=False, max_entries=8)  # shared, read-only (see explore.map_figure)
def side_figure(path, sig, run_id, classifier, datasets, level, colour, _style):
    pts = queries.map_points(path, sig, run_id, classifier, datasets, level)
    fig, _rows = figures.map_figure(pts, _style, colour, height=480)
    return fig, len(pts)


def options(ov: dict) -> list[str]:
    """'run_id|classifier' for every finished run with predictions."""
    runs = ov["runs"].set_index("run_id")
    pred = ov["predicted"][["run_id", "classifier"]].drop_duplicates()
    out = [f"{r}|{c}" for r, c in zip(pred["run_id"], pred["classifier"])
           if r in runs.index and runs.loc[r, "status"] == "finished"]
    order = {r: i for i, r in enumerate(runs.index)}
    corder = {c: i for i, c in enumerate(CLASSIFIERS)}
    return sorted(out, key=lambda o: (order.get(o.split("|")[0], 99), corder.get(o.split("|")[1], 9)))


def page() -> None:
    view = controls.current()
    ws = str(queries.workspace_root())
    ov = queries.overview(view.path, view.sig)
    st.header("Compare two approaches or classifiers")
    opts = options(ov)
    if len(opts) < 1:
        states.no_predictions(view, ws)
        return
    runs = ov["runs"].set_index("run_id")

    def label(o: str) -> str:
        r, c = o.split("|")
        return f"{tables.display_label(runs.loc[r, 'approach'], c)} ({r})"

    here = f"{view.run_id}|{view.classifier}"
    a_default = here if here in opts else opts[0]
    b_default = next((o for o in opts if o.split("|")[0] != a_default.split("|")[0]), opts[-1])
    for key, default in (("cmp_a", a_default), ("cmp_b", b_default)):
        if st.session_state.get(key) not in opts:
            st.session_state[key] = default
    ca, cb = st.columns(2)
    picks = [ca.selectbox("Left", opts, key="cmp_a", format_func=label),
             cb.selectbox("Right", opts, key="cmp_b", format_func=label)]
    if not view.datasets:
        st.info("Pick at least one test database in the sidebar.")
        return
    st.caption(f"Databases: {', '.join(literal(d) for d in view.datasets)} · {view.level} level · colours follow "
               "the left run's taxonomy in both maps")
    mt = queries.metrics_table(view.path, view.sig, view.level)
    for side, col, pick in zip("ab", st.columns(2), picks):
        run_id, clf = pick.split("|")
        with col:
            st.subheader(plain(label(pick)))
            if scatter_map.available():  # hover and selection shared between the two maps, in the browser
                pts = queries.map_points(view.path, view.sig, run_id, clf, view.datasets, view.level)
                n = len(pts) and map_views.linked_map(view, pts, run_id, clf, key=f"cmp_map_{side}",
                                                      group="compare") is not None
            else:
                fig, n = side_figure(view.path, view.sig, run_id, clf, view.datasets, view.level, view.colour,
                                     _style=view.style)
                if n:
                    st.plotly_chart(fig, key=f"cmp_map_{col is not None}_{pick}", config={"displaylogo": False})
            if not n:
                st.info(f"No map for {literal(run_id)} on these databases "
                        f"({literal('dfatlas project --run ' + run_id)}).")
            keys = tables.metric_keys(ov["datasets"], view.datasets)
            sel = mt.loc[(mt["run_id"] == run_id) & (mt["classifier"] == clf) & mt["dataset"].isin(keys)
                     & ((mt["n_real"] + mt["n_fake"]) > 0)]
            st.dataframe(tables.paper_table(sel).drop(columns=["Approach"]), hide_index=True,
                         key=f"cmp_table_{pick}")


page()
