"""Cached, read-only calls of the store's readers and the engine's score selection.

Every function here opens a read-only `Store` for one unit of work and closes
it (DuckDB: an open reader blocks writers in other processes), so no
connection outlives a rerun. Results are cached with `st.cache_data`, keyed
by the store file's signature (mtime and size of the file and its WAL): when
a job writes, the signature changes and the next rerun reads fresh data.

No SQL here: the queries are `engine.store`'s, the map is read through
`engine.projection.TSNEMap`, θ and metrics come from `engine.scores` /
`engine.evaluation`. This module only shapes arrays for display.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from data_catalog.records import UNSEEN_FAKE
from engine import map_view
from engine.approaches import approach_names
from engine.map_view import pred_labels
from engine.metrics import DEFAULT_AGGREGATION, DEFAULT_TOP_K
from engine.store import Store
from engine.store import overview as store_overview
from engine.workspace import resolve_workspace

# How long a dashboard query waits for a writer before saying "busy".
BUSY_RETRY_S = float(os.environ.get("DFATLAS_DASHBOARD_BUSY_S", "4"))
UNLABELLED, FAKE, NO_PRED = map_view.UNLABELLED, map_view.FAKE, map_view.NO_PRED  # what a point is without a class


def workspace_root() -> Path:
    """The workspace fixed at launch (`dfatlas serve --workspace` sets the env var)."""
    return resolve_workspace(None).root


def store_path() -> str:
    return str(resolve_workspace(None).store_path)


def signature(path: str) -> tuple:
    """Changes whenever the store file (or its write-ahead log) changes."""
    sig = []
    for p in (Path(path), Path(path + ".wal")):
        try:
            s = p.stat()
            sig.append((s.st_mtime_ns, s.st_size))
        except OSError:
            sig.append(None)
    return tuple(sig)


def read_store(path: str) -> Store:
    return Store(path, read_only=True, retry_seconds=BUSY_RETRY_S, announce_after=1e9)


@st.cache_data(show_spinner=False, max_entries=8)
def overview(path: str, sig: tuple) -> dict[str, pd.DataFrame]:
    """Runs, datasets, classifiers and which (run, classifier, dataset) have predictions."""
    out = store_overview.overview(read_store(path))
    runs = out["runs"]
    order = {a: i for i, a in enumerate(approach_names())}
    out["runs"] = runs.assign(_o=runs["approach"].map(order).fillna(len(order))).sort_values(
        ["_o", "run_id"], kind="stable").drop(columns="_o").reset_index(drop=True)
    return out


def _classes_of(runs: pd.DataFrame, run_id: str) -> list[str]:
    row = runs.loc[runs["run_id"] == run_id]
    return list(row["classes"].iloc[0]) if len(row) else []


@st.cache_resource(show_spinner=False, max_entries=4)
def run_points(path: str, sig: tuple, run_id: str):
    """Every point of the run's latest map with every classifier's predictions, as codes
    (`engine.map_view.RunPoints`), or None without a map. Shared and read-only (cache_resource: held
    once, never pickled); `map_points` and `map_payload` are cut from it."""
    from engine.classify import classifier_order

    ov = overview(path, sig)
    pred = ov["predicted"]
    classifiers = tuple(classifier_order(set(pred.loc[pred["run_id"] == run_id, "classifier"])))
    return map_view.run_points(read_store(path), run_id, _classes_of(ov["runs"], run_id), classifiers)


@st.cache_resource(show_spinner=False, max_entries=6)
def map_points(path: str, sig: tuple, run_id: str, classifier: str, datasets: tuple[str, ...],
               level: str, aggregation: str = DEFAULT_AGGREGATION, top_k: int = DEFAULT_TOP_K) -> pd.DataFrame:
    """The map's points for one run and classifier (`engine.map_view.RunPoints.frame`: text columns are
    categoricals over the run's codes); at video level every face carries its video's prediction and
    real-score, its frames' by `aggregation`. Shared and read-only (cache_resource): callers never modify it.
    """
    points = run_points(path, sig, run_id)
    if points is None or not datasets:
        return map_view.empty_points()
    return points.frame(classifier, datasets, level, aggregation, top_k)


@st.cache_data(show_spinner=False, max_entries=16)
def map_status(path: str, sig: tuple, run_id: str) -> dict | None:
    """The run's latest map against its embeddings now (engine.projection.map_status): how it was made
    (`describe`), whether its reference embeddings were made again after the fit (`reference_changed`),
    embedded faces not on it yet per dataset (`unplaced`); None without a map."""
    from engine.projection import map_status as status

    return status(read_store(path), run_id)


@st.cache_data(show_spinner=False, max_entries=24)
def scores(path: str, sig: tuple, run_id: str, classifier: str, datasets: tuple[str, ...],
           level: str, aggregation: str = DEFAULT_AGGREGATION, top_k: int = DEFAULT_TOP_K) -> pd.DataFrame:
    """Real-scores and labels (video_id, dataset, database, real_score, is_real, true_class, pred) at a level
    (engine.scores.sample_scores)."""
    from engine.scores import sample_scores

    runs = overview(path, sig)["runs"]
    classes = _classes_of(runs, run_id)
    df = sample_scores(read_store(path), run_id, classifier, list(datasets), level, aggregation, top_k)
    is_real = df["is_real"].map(lambda v: np.nan if v is None else float(v)).to_numpy(float)  # per video: small
    return pd.DataFrame({
        "video_id": df["video_id"].astype(object), "dataset": df["dataset"].astype(object),
        "database": df["database"].astype(object), "real_score": df["real_score"].to_numpy(float),
        "is_real": is_real,
        "true_class": df["true_class"].astype(object).where(df["true_class"].notna(), UNLABELLED),
        "pred": pred_labels(df["pred_class"].to_numpy(dtype=float), classes),
    }).reset_index(drop=True)


@st.cache_data(show_spinner=False, max_entries=24)
def theta(path: str, sig: tuple, run_id: str, classifier: str, level: str, aggregation: str = DEFAULT_AGGREGATION,
          top_k: int = DEFAULT_TOP_K) -> float | None:
    """θ of one run and classifier at a level (and video aggregation), from engine.scores' validation population
    (None: undefined)."""
    from data_catalog.errors import AtlasError
    from engine.runs import read_run
    from engine.scores import threshold_of, validation_scores

    s = read_store(path)
    try:
        val = validation_scores(s, read_run(s, run_id), classifier, level, aggregation, top_k)
        return threshold_of(val) if len(val) else None
    except AtlasError:
        return None


@st.cache_data(show_spinner=False, max_entries=64)
def validation_auc(path: str, sig: tuple, run_id: str, classifier: str, level: str) -> float | None:
    """AUC on θ's own population (the pooled super-set validation split): how Compare ranks metric heads
    without looking at any test set."""
    from data_catalog.errors import AtlasError
    from engine.metrics import auc_score
    from engine.runs import read_run
    from engine.scores import validation_scores

    s = read_store(path)
    try:
        val = validation_scores(s, read_run(s, run_id), classifier, level)
    except AtlasError:
        return None
    if not len(val):
        return None
    return auc_score(val["real_score"].to_numpy(float), val["is_real"].to_numpy(bool))


@st.cache_data(show_spinner=False, max_entries=64)
def thumbnails(path: str, sig: tuple, face_ids: tuple[str, ...]) -> list[bytes]:
    """JPEG thumbnails in the order of `face_ids` (missing ones as b'')."""
    if not face_ids:
        return []
    from engine.store.faces import thumbnails as stored_thumbnails

    return stored_thumbnails(read_store(path), list(face_ids))


@st.cache_data(show_spinner=False, max_entries=8)
def metrics_table(path: str, sig: tuple, level: str, bootstrap: int = 0, aggregation: str = DEFAULT_AGGREGATION,
                  top_k: int = DEFAULT_TOP_K) -> pd.DataFrame:
    """engine.evaluation.metrics_table for every run and classifier (cached per level, aggregation, k)."""
    from engine.evaluation import metrics_table as table

    return table(read_store(path), classifiers="all", level=level, bootstrap=bootstrap, aggregation=aggregation,
                 top_k=top_k)


@st.cache_data(show_spinner=False, max_entries=32)
def drilldown(path: str, sig: tuple, run_id: str, video_id: str, classifier: str | None,
              aggregation: str = DEFAULT_AGGREGATION, top_k: int = DEFAULT_TOP_K, k: int = 12):
    """engine.analysis.video_drilldown of one video (cached): faces, per-frame scores, verdict, nearest
    identities, map position."""
    from engine.analysis.drilldown import video_drilldown

    return video_drilldown(read_store(path), run_id, video_id, classifier, aggregation, top_k, k,
                           osm=open_set_model(path, sig, run_id))


@st.cache_data(show_spinner=False, max_entries=8)
def open_set_model(path: str, sig: tuple, run_id: str):
    """The run's open-set calibration (engine.analysis.calibrate_open_set), shared by every drill-down."""
    from engine.analysis import calibrate_open_set
    from engine.runs import read_run

    s = read_store(path)
    return calibrate_open_set(s, read_run(s, run_id))


@st.cache_data(show_spinner=False, max_entries=16)
def find_videos(path: str, sig: tuple, run_id: str, text: str, limit: int = 50) -> list[str]:
    """Ids of the run's embedded videos containing `text` (the drill-down's video picker)."""
    from engine.analysis.drilldown import find_videos as find

    return find(read_store(path), run_id, text, limit)


def case_report(path: str, run_id: str, dataset: str, classifier: str | None, aggregation: str,
                top_k: int) -> bytes:
    """The case report of an analysed set as UTF-8 HTML (engine.analysis.case_report; made when asked,
    not cached: it carries the time it was written)."""
    from engine.analysis.case_report import case_report_html

    return case_report_html(read_store(path), run_id, dataset, classifier, aggregation, top_k).encode("utf-8")


@st.cache_resource(show_spinner=False, max_entries=4)
def map_payload(path: str, sig: tuple, run_id: str, datasets: tuple[str, ...]):
    """The run's map points for the browser: one Arrow buffer with the points of `datasets` and every
    classifier's predictions at face and video level (dashboard.components.scatter_map.payload), or None
    without a map or without predictions. Shared (cache_resource), read-only: the bytes are sent once per
    browser frame."""
    from dashboard.components.scatter_map.payload import encode

    points = run_points(path, sig, run_id)
    if points is None or not datasets or not points.classifiers or not points.n:
        return None
    return encode(points, datasets)
