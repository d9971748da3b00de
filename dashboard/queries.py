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

from data_catalog.records import REAL, UNSEEN_FAKE
from engine.approaches import approach_names
from engine.store import Store, arrow_to_matrix
from engine.store import overview as store_overview
from engine.store import projections as map_table
from engine.workspace import resolve_workspace

# How long a dashboard query waits for a writer before saying "busy".
BUSY_RETRY_S = float(os.environ.get("DFATLAS_DASHBOARD_BUSY_S", "4"))
UNLABELLED = "unlabelled"
FAKE = "fake"          # binary predictions: fake without attribution
NO_PRED = "no prediction"


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


def _pred_labels(pred_idx: np.ndarray, classes: list[str]) -> np.ndarray:
    """Class index -> class id; -1 -> 'fake' (binary); missing -> 'no prediction'."""
    lut = np.array(list(classes) + [FAKE, NO_PRED], dtype=object)
    idx = np.asarray(pred_idx, dtype=float)
    codes = np.where(np.isnan(idx), len(classes) + 1, np.where(idx < 0, len(classes), idx)).astype(int)
    codes = np.clip(codes, 0, len(lut) - 1)
    return lut[codes]


def correctness(true_class: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """'correct' / 'incorrect' / 'unknown' per point.

    Attribution must match the true class; for unseen fakes, and for binary
    predictions (no attribution), only real-vs-fake must match.
    """
    true_class = np.asarray(true_class, dtype=object)
    pred = np.asarray(pred, dtype=object)
    exact = true_class == pred
    real_vs_fake = (true_class == REAL) == (pred == REAL)
    coarse = (pred == FAKE) | (true_class == UNSEEN_FAKE)
    ok = np.where(coarse, real_vs_fake, exact)
    unknown = (true_class == UNLABELLED) | (pred == NO_PRED)
    return np.where(unknown, "unknown", np.where(ok, "correct", "incorrect")).astype(object)


def _to_level(df: pd.DataFrame, probs: np.ndarray | None, classes: list[str], level: str) -> pd.DataFrame:
    """Give every face its video's real-score and predicted class (engine.metrics.video_level)."""
    if level != "video" or df.empty:
        return df
    from engine.metrics import video_level

    has = df["pred_idx"].notna().to_numpy()
    if not has.any():
        return df
    sub = df.loc[has]
    vids = video_level(sub["video_id"].to_numpy(), sub["real_score"].to_numpy(dtype=float),
                       sub["pred_idx"].to_numpy(dtype=np.int64),
                       None if probs is None else probs[has])
    vids = vids.set_index("video_id")
    out = df.copy()
    m = out["video_id"].map(vids["real_score"])
    out["real_score"] = m.where(m.notna(), out["real_score"])
    p = out["video_id"].map(vids["pred_class"])
    out["pred_idx"] = p.where(p.notna(), out["pred_idx"])
    return out


@st.cache_data(show_spinner=False, max_entries=24)
def map_points(path: str, sig: tuple, run_id: str, classifier: str, datasets: tuple[str, ...],
               level: str) -> pd.DataFrame:
    """The map's points for one run and classifier: one row per face on the run's latest projection.

    Columns: face_id, video_id, dataset, database, x, y (float32), true_class
    ('unlabelled' when unknown), pred (class id / 'fake' / 'no prediction'),
    real_score, correct. At level 'video' every face carries its video's
    prediction and real-score.
    """
    from engine.projection import TSNEMap

    s = read_store(path)
    runs = overview(path, sig)["runs"]
    classes = _classes_of(runs, run_id)
    tsne_map = TSNEMap.latest(s, run_id)
    if tsne_map is None or not datasets:
        return _empty_points()
    tab = map_table.map_points(s, tsne_map.projection_id, run_id, classifier, datasets)
    probs = None
    pcol = tab.column("probs")
    if tab.num_rows and pcol.null_count == 0:
        probs = arrow_to_matrix(pcol)
    df = tab.drop_columns(["probs"]).to_pandas()
    df = _to_level(df, probs, classes, level)
    true = df["true_class"].astype(object).where(df["true_class"].notna(), UNLABELLED).to_numpy(dtype=object)
    pred = _pred_labels(df["pred_idx"].to_numpy(dtype=float), classes)
    return pd.DataFrame({
        "face_id": df["face_id"].astype(object), "video_id": df["video_id"].astype(object),
        "dataset": df["dataset"].astype(object), "database": df["database"].astype(object),
        "x": df["x"].to_numpy(np.float32), "y": df["y"].to_numpy(np.float32),
        "true_class": true, "pred": pred, "real_score": df["real_score"].to_numpy(float),
        "correct": correctness(true, pred),
    })


@st.cache_data(show_spinner=False, max_entries=16)
def map_status(path: str, sig: tuple, run_id: str) -> dict | None:
    """The run's latest map against its embeddings now (engine.projection.map_status): how it was made
    (`describe`), whether its reference embeddings were made again after the fit (`reference_changed`),
    embedded faces not on it yet per dataset (`unplaced`); None without a map."""
    from engine.projection import map_status as status

    return status(read_store(path), run_id)


def _empty_points() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in [
        ("face_id", object), ("video_id", object), ("dataset", object), ("database", object), ("x", np.float32),
        ("y", np.float32), ("true_class", object), ("pred", object), ("real_score", float), ("correct", object)]})


@st.cache_data(show_spinner=False, max_entries=24)
def scores(path: str, sig: tuple, run_id: str, classifier: str, datasets: tuple[str, ...],
           level: str) -> pd.DataFrame:
    """Real-scores and labels (video_id, dataset, database, real_score, is_real, true_class, pred) at a level
    (engine.scores.sample_scores)."""
    from engine.scores import sample_scores

    runs = overview(path, sig)["runs"]
    classes = _classes_of(runs, run_id)
    df = sample_scores(read_store(path), run_id, classifier, list(datasets), level)
    is_real = df["is_real"].map(lambda v: np.nan if v is None else float(v)).to_numpy(float)  # per video: small
    return pd.DataFrame({
        "video_id": df["video_id"].astype(object), "dataset": df["dataset"].astype(object),
        "database": df["database"].astype(object), "real_score": df["real_score"].to_numpy(float),
        "is_real": is_real,
        "true_class": df["true_class"].astype(object).where(df["true_class"].notna(), UNLABELLED),
        "pred": _pred_labels(df["pred_class"].to_numpy(dtype=float), classes),
    }).reset_index(drop=True)


@st.cache_data(show_spinner=False, max_entries=24)
def theta(path: str, sig: tuple, run_id: str, classifier: str, level: str) -> float | None:
    """θ of one run and classifier at a level, from engine.scores' validation population (None: undefined)."""
    from data_catalog.errors import AtlasError
    from engine.runs import read_run
    from engine.scores import threshold_of, validation_scores

    s = read_store(path)
    try:
        val = validation_scores(s, read_run(s, run_id), classifier, level)
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
def metrics_table(path: str, sig: tuple, level: str, bootstrap: int = 0) -> pd.DataFrame:
    """engine.evaluation.metrics_table for every run and classifier (cached)."""
    from engine.evaluation import metrics_table as table

    return table(read_store(path), classifiers="all", level=level, bootstrap=bootstrap)


@st.cache_resource(show_spinner=False, max_entries=4)
def map_payload(path: str, sig: tuple, run_id: str, classifiers: tuple[str, ...], datasets: tuple[str, ...],
                _label_order: tuple[str, ...] = ()):
    """The run's map points for the browser: one Arrow buffer with every dataset's points and every
    classifier's predictions at face and video level (dashboard.components.scatter_map.payload), or None
    without a map. Shared (cache_resource), read-only: the bytes are sent once per browser frame."""
    from dashboard.components.scatter_map.payload import encode
    from engine.projection import TSNEMap

    s = read_store(path)
    classes = _classes_of(overview(path, sig)["runs"], run_id)
    tsne_map = TSNEMap.latest(s, run_id)
    if tsne_map is None or not datasets or not classifiers:
        return None
    base, per_classifier = None, {}
    for clf in classifiers:
        tab = map_table.map_points(s, tsne_map.projection_id, run_id, clf, datasets)
        pcol = tab.column("probs")
        probs = arrow_to_matrix(pcol) if tab.num_rows and pcol.null_count == 0 else None
        df = tab.select(["video_id", "dataset", "database", "x", "y", "true_class", "pred_idx",
                         "real_score"]).to_pandas()
        if base is None:
            true = df["true_class"].astype(object).where(df["true_class"].notna(), UNLABELLED).to_numpy(dtype=object)
            base = pd.DataFrame({"video_id": df["video_id"], "dataset": df["dataset"], "database": df["database"],
                                 "x": df["x"].to_numpy(np.float32), "y": df["y"].to_numpy(np.float32),
                                 "true_class": true})
        pred = _pred_labels(df["pred_idx"].to_numpy(dtype=float), classes)
        vdf = _to_level(df[["video_id", "pred_idx", "real_score"]], probs, classes, "video")
        vpred = _pred_labels(vdf["pred_idx"].to_numpy(dtype=float), classes)
        true = base["true_class"].to_numpy(dtype=object)
        per_classifier[clf] = {"pred": pred, "vpred": vpred, "ok": correctness(true, pred),
                               "vok": correctness(true, vpred), "score": df["real_score"].to_numpy(np.float32)}
    if base is None or base.empty:
        return None
    return encode(base, per_classifier, list(_label_order) + [UNSEEN_FAKE, UNLABELLED, FAKE, NO_PRED])
