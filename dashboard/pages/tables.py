"""Tables & export: every approach side by side in the paper's Table 1 / Table 2 layout."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import controls, queries, states, tables
from engine.evaluation import default_rows

PARTS = [("same-db", "Table 1: same-database (super-set test splits)", "table1"),
         ("cross-db", "Table 2: cross-database", "table2"),
         ("unknown", "Other sets (labelled unknown sets)", "table_unknown")]


def exports(mt, every_level, role: str, stem: str, key: str, level: str) -> None:
    """Download buttons: tidy CSV and Parquet (every level), Markdown and LaTeX (the level shown)."""
    for col, (fmt, (label, ext, mime)) in zip(st.columns(len(tables.EXPORT_FORMATS)), tables.EXPORT_FORMATS.items()):
        data = tables.export(every_level if fmt in ("csv", "parquet") else mt, role, fmt, level)
        col.download_button(label, data, file_name=f"{stem}.{ext}", mime=mime, key=f"{key}_{fmt}",
                            on_click="ignore", icon=":material/download:")


def page() -> None:
    view = controls.current()
    st.header("All approaches: the paper's Table 1 and Table 2")
    c1, c2 = st.columns([2, 1])
    scope = c1.radio("Classifiers", ["paper", "all"], key="tables_scope", horizontal=True,
                     format_func={"paper": "the paper's choice (NN for TripletLoss, LR for ArcFaceMod)",
                                  "all": "every classifier"}.get)
    boot = c2.number_input("Bootstrap resamples for 95 % CIs (0 = off)", 0, 2000, 0, step=100, key="tables_boot")
    mt = queries.metrics_table(view.path, view.sig, view.level, int(boot), view.aggregation, view.top_k)
    if mt.empty:
        states.no_predictions(view, str(queries.workspace_root()))
        return
    other = queries.metrics_table(view.path, view.sig, "frame" if view.level == "video" else "video", int(boot),
                                  view.aggregation, view.top_k)
    every_level = pd.concat([mt, other], ignore_index=True)
    if scope == "paper":
        mt, every_level = default_rows(mt), default_rows(every_level)
    agg = f" · a video's real-score: the {tables.aggregation_text(view, long=True)}, its class the majority of its " \
          "frames; θ set on validation videos scored the same way" if view.level == "video" else ""
    st.caption(f"{view.level} level{agg} · θ on the pooled validation split of the training super-set at FPR ≤ 10 % · "
               "AUC, FNR, FPR, HTER in % · Markdown and LaTeX downloads are rendered as by `dfatlas evaluate "
               "--format`; CSV and Parquet are the tidy table (one row per approach × classifier × test set × "
               "level, fractions in [0, 1]) of both levels")
    for role, title, key in PARTS:
        sub = mt.loc[(mt["role"] == role) & ((mt["n_real"] + mt["n_fake"]) > 0)]
        if sub.empty:
            continue
        st.subheader(title)
        shown = tables.paper_table(sub)
        st.dataframe(shown, hide_index=True, key=key, width="stretch", height=tables.full_height(shown),
                     column_config=tables.PINNED)
        exports(sub, every_level, role, f"dfatlas-{key}{tables.aggregation_suffix(view)}", key, view.level)


page()
