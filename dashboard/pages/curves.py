"""Curves: ROC and DET per approach for a chosen database (real is the positive class)."""

from __future__ import annotations

import streamlit as st
from sklearn.metrics import roc_curve

from dashboard import controls, data, figures, states, tables
from dashboard.pages_common import default_classifier

PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")


def page() -> None:
    view = controls.current()
    ws = str(data.workspace_root())
    ov = data.overview(view.path, view.sig)
    st.header("ROC and DET curves")
    ds = ov["datasets"].set_index("dataset")
    labelled = [d for d in controls.map_datasets(ov, view.run_id, view.classifier)
                if d not in ds.index or bool(ds.loc[d, "labelled"])]
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
    default = [f"{r}|{default_classifier(by_run.loc[r, 'approach'], [c.split('|')[1] for c in combos if c.startswith(r + '|')])}"
               for r in runs["run_id"] if any(c.startswith(r + "|") for c in combos)]
    default = [d for d in default if d in combos]
    chosen = st.multiselect("Approaches", combos, default=default, key="curve_runs",
                            format_func=lambda o: tables.approach_label(by_run.loc[o.split("|")[0], "approach"],
                                                                        o.split("|")[1]))
    curves = []
    for i, o in enumerate(chosen):
        r, c = o.split("|")
        s = data.scores(view.path, view.sig, r, c, (dataset,), view.level)
        s = s.loc[s["is_real"].notna()]
        y = s["is_real"].to_numpy().astype(bool)
        if y.all() or not y.any():
            st.caption(f"{o}: needs both real and fake samples for a curve")
            continue
        fpr, tpr, _thr = roc_curve(y, s["real_score"].to_numpy(), pos_label=True)
        curves.append({"label": tables.approach_label(by_run.loc[r, "approach"], c), "fpr": fpr, "fnr": 1 - tpr,
                       "color": PALETTE[i % len(PALETTE)]})
    if not curves:
        st.info("Pick at least one approach with real and fake samples on this database.")
        return
    roc, det = figures.roc_det_figures(curves)
    c1, c2 = st.columns(2)
    c1.plotly_chart(roc, key="roc", config={"displaylogo": False})
    c2.plotly_chart(det, key="det", config={"displaylogo": False})
    st.caption(f"{dataset} · {view.level} level · FPR = fakes accepted as real, FNR = reals rejected "
               "(the paper's convention: real is the positive class)")


page()
