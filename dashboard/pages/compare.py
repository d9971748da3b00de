"""Compare: two approaches (or two classifiers of one run) side by side, same databases, linked colours."""

from __future__ import annotations

import dataclasses

import pandas as pd
import streamlit as st

from dashboard import controls, figures, queries, states, tables
from dashboard.components import scatter_map
from dashboard.components.scatter_map import views as map_views
from dashboard.plain import literal, plain
from dashboard.summaries import confusion_or_distribution, confusion_parts
from engine.approaches.registry import get_approach
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


def default_pair(ov: dict, opts: list[str], view) -> tuple[str, str]:
    """The last two (run, classifier) pairs this session viewed; else Attribution beside the metric head
    (TripletLoss / ArcFaceMod, any classifier) with the highest pooled validation AUC; else the first two."""
    seen = [o for o in controls.viewed() if o in opts]
    if len(seen) >= 2:
        return seen[-2], seen[-1]
    runs = ov["runs"].set_index("run_id")
    approach = {o: runs.loc[o.split("|")[0], "approach"] for o in opts}
    # the Attribution baseline: a head that attributes by itself (no embedding classifiers)
    attribution = next((o for o in opts if o.endswith("|native") and get_approach(approach[o]).attributes
                        and not get_approach(approach[o]).embedding_classifiers), None)
    heads = [o for o in opts if get_approach(approach[o]).embedding_classifiers]

    def val_auc(o):
        r, c = o.split("|")
        return queries.validation_auc(view.path, view.sig, r, c, view.level) or -1.0

    best_head = max(heads, key=val_auc) if heads else None
    if attribution and best_head:
        return attribution, best_head
    left = attribution or best_head or opts[0]
    return left, next((o for o in opts if o != left), left)


URL = {"cmp_a": "left", "cmp_b": "right"}


def _seed_sides(opts: list[str], defaults: tuple[str, str]) -> None:
    """Left/Right from the URL on a session's first visit, else kept, else the defaults."""
    if not st.session_state.get("_cmp_url_seeded"):
        st.session_state["_cmp_url_seeded"] = True
        for key, param in URL.items():
            if st.query_params.get(param) in opts:
                st.session_state[key] = st.query_params.get(param)
    for key, default in zip(URL, defaults):
        if st.session_state.get(key) not in opts:
            st.session_state[key] = default


def _write_sides(picks: list[str]) -> None:
    for (key, param), pick in zip(URL.items(), picks):
        if st.query_params.get(param) != pick:
            st.query_params[param] = pick


def differences(view, left, right) -> pd.DataFrame:
    """Faces (videos at video level) shown on both sides whose predicted class differs."""
    unit = "video_id" if view.level == "video" else "face_id"
    a = left.drop_duplicates(unit).set_index(unit)
    b = right.drop_duplicates(unit).set_index(unit)
    both = a.index.intersection(b.index)
    a, b = a.loc[both], b.loc[both]
    differ = a["pred"].to_numpy(dtype=object) != b["pred"].to_numpy(dtype=object)
    return pd.DataFrame({unit: both[differ], "database": a["database"].to_numpy()[differ],
                         "true": a["true_class"].to_numpy()[differ], "left": a["pred"].to_numpy()[differ],
                         "right": b["pred"].to_numpy()[differ]}).assign(_n=len(both))


def difference_view(view, styles, label, picks, sides) -> None:
    st.subheader("Where the two disagree")
    diff = differences(view, *sides)
    unit = "videos" if view.level == "video" else "faces"
    n_both = int(diff["_n"].iloc[0]) if len(diff) else int(len(set(sides[0]["video_id" if view.level == "video"
                                                                               else "face_id"])))
    if diff.empty:
        st.success(f"The two agree on the predicted class of every one of the {n_both:,} {unit} shown.")
        return
    sa, sb = styles
    st.markdown(f"**{len(diff):,} of {n_both:,} {unit}** ({len(diff) / max(n_both, 1):.1%}) get a different "
                f"predicted class: left **{plain(label(picks[0]))}**, right **{plain(label(picks[1]))}**")
    counts = (diff.assign(left=diff["left"].map(sa.name), right=diff["right"].map(sb.name))
              .groupby(["left", "right"]).size().rename(unit).reset_index().sort_values(unit, ascending=False))
    c1, c2 = st.columns([2, 3])
    c1.markdown("**Changes, most frequent first** (left → right)")
    c1.dataframe(counts, hide_index=True, key="cmp_diff_counts", width="stretch")
    shown = diff.head(500).assign(true=lambda d: d["true"].map(sa.name), left=lambda d: d["left"].map(sa.name),
                                  right=lambda d: d["right"].map(sb.name)).drop(columns="_n")
    c2.markdown(f"**The {unit}**" + (f" (first 500 of {len(diff):,})" if len(diff) > 500 else ""))
    c2.dataframe(shown, hide_index=True, key="cmp_diff_rows", width="stretch")


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

    _seed_sides(opts, default_pair(ov, opts, view))
    ca, cb = st.columns(2)
    picks = [ca.selectbox("Left", opts, key="cmp_a", format_func=label),
             cb.selectbox("Right", opts, key="cmp_b", format_func=label)]
    _write_sides(picks)
    if not view.datasets:
        st.info("Pick at least one test database in the sidebar.")
        return
    st.caption(f"Databases: {', '.join(literal(d) for d in view.datasets)} · {view.level} level · each map in its "
               "run's own class colours (one colour per class in every run) · marker: "
               f"{figures.marker_meaning(view.colour)} · hover or select on one map to see the same faces on the other")
    mt = queries.metrics_table(view.path, view.sig, view.level, 0, view.aggregation, view.top_k)
    sides, styles = [], []
    for side, col, pick in zip("ab", st.columns(2), picks):
        run_id, clf = pick.split("|")
        r = runs.loc[run_id]
        style = view.style if run_id == view.run_id else view.style.for_run(r["classes"], r.get("taxonomy_json"))
        pts = queries.map_points(view.path, view.sig, run_id, clf, view.datasets, view.level, view.aggregation,
                                 view.top_k)
        sides.append(pts)
        styles.append(style)
        with col:
            st.subheader(plain(label(pick)))
            if scatter_map.available():  # hover and selection shared between the two maps, in the browser
                side_view = dataclasses.replace(view, run_id=run_id, classifier=clf, style=style)
                n = len(pts) and map_views.linked_map(side_view, pts, run_id, clf, key=f"cmp_map_{side}",
                                                      group="compare") is not None
            else:
                fig, n = side_figure(view.path, view.sig, run_id, clf, view.datasets, view.level, view.colour,
                                     _style=style)
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
            if len(pts):
                confusion_or_distribution(confusion_parts(view, pts, style), key=f"cmp_{side}")
    if all(len(p) for p in sides):
        difference_view(view, styles, label, picks, sides)


page()
