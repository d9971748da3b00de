"""Runs & provenance: backbone, pretrained weights, data sources, synthetic or real data, jobs."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from dashboard import controls, queries, tables
from dashboard.plain import literal, plain


def _sources(config_json: str) -> str:
    try:
        cfg = json.loads(config_json or "{}")
    except ValueError:
        return "?"
    src = cfg.get("sources", {})
    dbs = src.get("databases", {})
    if isinstance(dbs, dict):
        names = [f"{n} ({v.get('adapter', '?')}: {v.get('root', '?')})" if isinstance(v, dict) else f"{n} ({v})"
                 for n, v in dbs.items()]
    else:
        names = [str(d) for d in dbs]
    sup, cross = src.get("superset", []), src.get("cross_db", [])
    return f"databases: {', '.join(names)}; training super-set: {', '.join(sup)}; cross-db: {', '.join(cross)}"


def page() -> None:
    view = controls.current()
    ov = queries.overview(view.path, view.sig)
    st.header("Runs and provenance")
    runs = ov["runs"]
    if runs["synthetic"].any():
        st.warning("**SYNTHETIC benchmark.** These runs were trained and evaluated on the project's procedurally "
                   "generated deepfake benchmark, not on real databases: their numbers are not comparable with "
                   "the paper's.", icon=":material/science:")
    show = pd.DataFrame({
        "run": runs["run_id"], "approach": [tables.display_label(a, "native") for a in runs["approach"]],
        "status": runs["status"], "backbone": runs["backbone"],
        "pretrained weights": runs["pretrained_source"].fillna("?"),
        "embedding dim": runs["embedding_dim"], "epochs": runs["epochs_done"], "best epoch": runs["best_epoch"],
        "train s": runs["train_seconds"].round(1), "synthetic": runs["synthetic"],
        "code": runs.get("code_revision"), "data sources": [_sources(c) for c in runs["config_json"]],
    })
    st.dataframe(show, hide_index=True, key="runs_table", width="stretch")
    r = runs.loc[runs["run_id"] == view.run_id].iloc[0]
    st.subheader(f"Selected run: {literal(view.run_id)}")
    st.markdown(f"- backbone **{plain(r['backbone'])}**, "
                f"pretrained weights: **{plain(r['pretrained_source'] or 'unknown')}**\n"
                f"- classes ({len(r['classes'])}): {', '.join(plain(view.style.name(c)) for c in r['classes'])}\n"
                f"- {plain(_sources(r['config_json']))}")
    ep = ov["epochs"]
    ep = ep.loc[ep["run_id"] == view.run_id]
    if len(ep):
        st.line_chart(ep.set_index("epoch")[["train_loss", "val_loss"]], height=220)
    with st.expander("Datasets"):
        st.dataframe(ov["datasets"], hide_index=True, key="datasets_table")
    with st.expander("Classifiers"):
        st.dataframe(ov["classifiers"], hide_index=True, key="classifiers_table")
    if len(ov["jobs"]):
        with st.expander("Recent jobs"):
            st.dataframe(ov["jobs"], hide_index=True, key="jobs_table")
    with st.expander("Run configuration (JSON)"):
        st.code(json.dumps(json.loads(r["config_json"] or "{}"), indent=2), language="json")


page()
