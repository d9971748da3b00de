"""Curves: ROC and DET per approach for a chosen database (real is the positive class)."""

from __future__ import annotations

import streamlit as st

from dashboard import controls, figures, queries, states, tables
from dashboard.plain import literal, plain
from engine.approaches import choose_classifier
from engine.metrics import error_curves
from engine.scores import evaluate_samples

PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")


def page() -> None:
    view = controls.current()
    ws = str(queries.workspace_root())
    ov = queries.overview(view.path, view.sig)
    st.header("ROC and DET curves")
    ds = ov["datasets"].set_index("dataset")
    pairs = ov["predicted"][["run_id", "classifier"]].drop_duplicates().itertuples(index=False)
    shown = sorted({d for r, c in pairs for d in controls.map_datasets(ov, r, c)},
                   key=lambda d: (ds.loc[d, "role"] != "superset" if d in ds.index else True, d))
    labelled = [d for d in shown if d not in ds.index or bool(ds.loc[d, "labelled"])]
    if not labelled:
        states.no_predictions(view, ws)
        return
    if st.session_state.get("curve_db") not in labelled:
        st.session_state["curve_db"] = view.datasets[0] if view.datasets and view.datasets[0] in labelled \
            else labelled[0]
    dataset = st.selectbox("Database", labelled, key="curve_db")
    runs = ov["runs"]
    pred = ov["predicted"]
    combos = [f"{r}|{c}" for r, c in pred.loc[pred["dataset"] == dataset, ["run_id", "classifier"]]
              .drop_duplicates().itertuples(index=False)]
    by_run = runs.set_index("run_id")
    default = [f"{r}|{choose_classifier(by_run.loc[r, 'approach'], [c.split('|')[1] for c in combos if c.startswith(r + '|')])}"
               for r in runs["run_id"] if any(c.startswith(r + "|") for c in combos)]
    default = [d for d in default if d in combos]
    chosen = st.multiselect("Approaches", combos, default=default, key="curve_runs",
                            format_func=lambda o: tables.display_label(by_run.loc[o.split("|")[0], "approach"],
                                                                        o.split("|")[1]))
    curves = []
    for i, o in enumerate(chosen):
        r, c = o.split("|")
        s = queries.scores(view.path, view.sig, r, c, (dataset,), view.level, view.aggregation, view.top_k)
        s = s.loc[s["is_real"].notna()]
        y = s["is_real"].to_numpy().astype(bool)
        if y.all() or not y.any():
            st.caption(f"{literal(o)}: needs both real and fake samples for a curve")
            continue
        score = s["real_score"].to_numpy()
        fpr, fnr = error_curves(score, y)
        theta = queries.theta(view.path, view.sig, r, c, view.level, view.aggregation, view.top_k)
        m = evaluate_samples(theta if theta is not None else 0.5, score, y)
        curves.append({"label": tables.display_label(by_run.loc[r, "approach"], c), "fpr": fpr, "fnr": fnr,
                       "color": PALETTE[i % len(PALETTE)], "auc": m.auc, "theta": theta,
                       "theta_point": None if theta is None else (m.fpr, m.fnr)})
    if not curves:
        st.info("Pick at least one approach with real and fake samples on this database.")
        return
    roc, det = figures.roc_det_figures(curves)
    c1, c2 = st.columns(2)
    c1.plotly_chart(roc, key="roc", config={"displaylogo": False})
    c2.plotly_chart(det, key="det", config={"displaylogo": False})
    st.caption(f"{literal(dataset)} · {view.level} level"
               f"{f' (video score: {tables.aggregation_text(view)})' if view.level == 'video' else ''} · FPR = fakes accepted as real, FNR = reals rejected "
               "(the paper's convention: real is the positive class) · ○ marks each approach's operating point "
               "at θ, set on the training super-set's validation split at FPR ≤ 10 % (not on this database)")
    same = figures.coinciding(curves)
    if same:
        st.caption("Coinciding curves (drawn with different dashes, one over the other): "
                   + "; ".join(f"{plain(a)} = {plain(b)}" for a, b in same))


page()
