"""Runs & provenance: backbone, pretrained weights, data sources, synthetic or real data, jobs."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from dashboard import controls, queries, tables
from dashboard.plain import plain
from engine.approaches.registry import get_approach


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


def _config(config_json: str) -> dict:
    try:
        cfg = json.loads(config_json or "{}")
    except ValueError:
        return {}
    return cfg if isinstance(cfg, dict) else {}


def run_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run: what it is, how it was trained and how its best epoch was chosen (epochs from 1)."""
    cfgs = [_config(c) for c in runs["config_json"]]

    def get(cfg, section, key, default=None):
        v = cfg.get(section, {})
        return v.get(key, default) if isinstance(v, dict) else default

    kinds = [get_approach(a) for a in runs["approach"]]
    crop = [get(c, "faces", "crop_size") for c in cfgs]
    size = [get(c, "model", "input_size") or cs for c, cs in zip(cfgs, crop)]
    return pd.DataFrame({
        "run": runs["run_id"], "approach": [tables.display_label(a, "native") for a in runs["approach"]],
        "status": runs["status"], "backbone": runs["backbone"],
        "pretrained weights": runs["pretrained_source"].fillna("?"),
        "seed": runs["seed"] if "seed" in runs.columns else [c.get("seed") for c in cfgs],
        "crop / input px": [f"{c} / {s}" if c else "?" for c, s in zip(crop, size)],
        "epochs": [f"{int(d) if pd.notna(d) else 0} of {get(c, 'train', 'epochs', '?')}"
                   for d, c in zip(runs["epochs_done"], cfgs)],
        "best epoch": [int(b) + 1 if pd.notna(b) and b >= 0 else None for b in runs["best_epoch"]],
        "best epoch chosen by": [k.selection_name if k.trains else "— (imported)" for k in kinds],
        "embedding": [f"{int(d)}-d: {k.embedding_layer}" if pd.notna(d) else k.embedding_layer
                      for d, k in zip(runs["embedding_dim"], kinds)],
        "train s": runs["train_seconds"].round(1), "synthetic": runs["synthetic"],
        "code": runs.get("code_revision"), "data sources": [_sources(c) for c in runs["config_json"]],
    })


def training_curves(epochs: pd.DataFrame, runs: pd.DataFrame, chosen: list[str]):
    """Loss (train solid, validation dashed) and validation accuracy per epoch, runs overlaid."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Validation accuracy"),
                        horizontal_spacing=0.08)
    by_run = runs.set_index("run_id")
    for i, rid in enumerate(chosen):
        ep = epochs.loc[epochs["run_id"] == rid].sort_values("epoch")
        if ep.empty:
            continue
        name = f"{tables.display_label(by_run.loc[rid, 'approach'], 'native')} ({rid})"
        colour = CURVE_COLOURS[i % len(CURVE_COLOURS)]
        x = ep["epoch"].to_numpy() + 1
        fig.add_trace(go.Scatter(x=x, y=ep["train_loss"], mode="lines+markers", name=f"{plain(name)} · train",
                                 line=dict(color=colour), legendgroup=rid), row=1, col=1)
        fig.add_trace(go.Scatter(x=x, y=ep["val_loss"], mode="lines+markers", name=f"{plain(name)} · validation",
                                 line=dict(color=colour, dash="dash"), legendgroup=rid), row=1, col=1)
        if ep["val_accuracy"].notna().any():
            fig.add_trace(go.Scatter(x=x, y=ep["val_accuracy"], mode="lines+markers", showlegend=False,
                                     line=dict(color=colour, dash="dot"), legendgroup=rid), row=1, col=2)
        best = by_run.loc[rid, "best_epoch"]
        if pd.notna(best) and best >= 0 and (ep["epoch"] == best).any():
            row = ep.loc[ep["epoch"] == best].iloc[0]
            fig.add_trace(go.Scatter(x=[best + 1], y=[row["val_loss"]], mode="markers", showlegend=False,
                                     marker=dict(symbol="star", size=13, color=colour), legendgroup=rid,
                                     hovertemplate=f"best epoch {int(best) + 1}<extra></extra>"), row=1, col=1)
    for col in (1, 2):
        fig.update_xaxes(title_text="epoch (from 1)", dtick=1, row=1, col=col)
    fig.update_yaxes(title_text="loss", row=1, col=1)
    fig.update_yaxes(title_text="accuracy", tickformat=".0%", row=1, col=2)
    fig.update_layout(height=380, margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="h", yanchor="top", y=-0.25, xanchor="left", x=0))
    return fig


CURVE_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")


def page() -> None:
    view = controls.current()
    ov = queries.overview(view.path, view.sig)
    st.header("Runs and provenance")
    runs = ov["runs"]
    if runs["synthetic"].any():
        st.warning("**SYNTHETIC benchmark.** These runs were trained and evaluated on the project's procedurally "
                   "generated deepfake benchmark, not on real databases: their numbers are not comparable with "
                   "the paper's.", icon=":material/science:")
    st.dataframe(run_summary(runs), hide_index=True, key="runs_table", width="stretch",
                 column_config={"run": st.column_config.TextColumn(pinned=True),
                                "approach": st.column_config.TextColumn(pinned=True)})
    ep = ov["epochs"]
    trained = [r for r in runs["run_id"] if (ep["run_id"] == r).any()]
    if trained:
        st.subheader("Training curves")
        chosen = st.multiselect("Runs", trained, default=trained, key="runs_curves",
                                format_func=run_name(runs))
        if chosen:
            st.plotly_chart(training_curves(ep, runs, chosen), key="runs_loss", config={"displaylogo": False})
            st.caption("Epochs are numbered from 1 everywhere (tables, CLI, charts) · ★ = the epoch whose "
                       "checkpoint is used (lowest selection score; see the table's criterion)")
    run = st.selectbox("Details of run", runs["run_id"].tolist(), key="runs_detail", format_func=run_name(runs),
                       index=runs["run_id"].tolist().index(view.run_id) if view.run_id in set(runs["run_id"]) else 0)
    r = runs.loc[runs["run_id"] == run].iloc[0]
    style = view.style if run == view.run_id else view.style.for_run(r["classes"], r.get("taxonomy_json"))
    st.markdown(f"- backbone **{plain(r['backbone'])}**, "
                f"pretrained weights: **{plain(r['pretrained_source'] or 'unknown')}**\n"
                f"- classes ({len(r['classes'])}): {', '.join(plain(style.name(c)) for c in r['classes'])}\n"
                f"- {plain(_sources(r['config_json']))}")
    with st.expander("Datasets"):
        st.dataframe(ov["datasets"], hide_index=True, key="datasets_table")
    with st.expander("Classifiers"):
        st.dataframe(ov["classifiers"], hide_index=True, key="classifiers_table")
    if len(ov["jobs"]):
        with st.expander("Recent jobs"):
            st.dataframe(ov["jobs"], hide_index=True, key="jobs_table")
    with st.expander("Run configuration (JSON)"):
        st.code(json.dumps(_config(r["config_json"]), indent=2), language="json")


def run_name(runs: pd.DataFrame):
    by_id = runs.set_index("run_id")
    return lambda rid: f"{tables.display_label(by_id.loc[rid, 'approach'], 'native')} ({rid})"


page()
