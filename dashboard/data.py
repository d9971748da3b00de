"""Cached, read-only queries on the store.

Every function here opens a read-only `Store` for one query and closes it
(DuckDB: an open reader blocks writers in other processes), so no connection
outlives a rerun. Results are cached with `st.cache_data`, keyed by the store
file's signature (mtime and size of the file and its WAL): when a job writes,
the signature changes and the next rerun reads fresh data.

Metrics come from `engine.metrics` / `engine.evaluation`; this module only
fetches arrays.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from data_catalog.records import REAL, UNSEEN_FAKE, to_is_real
from engine.store import Store, arrow_to_matrix
from engine.workspace import resolve_workspace

# How long a dashboard query waits for a writer before saying "busy".
BUSY_RETRY_S = float(os.environ.get("DFATLAS_DASHBOARD_BUSY_S", "4"))
APPROACH_ORDER = ("binary", "attribution", "triplet", "arcfacemod")
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


def _store(path: str) -> Store:
    return Store(path, read_only=True, retry_seconds=BUSY_RETRY_S, announce_after=1e9)


def _arrow(store: Store, sql: str, params: list):
    """One query as an Arrow table."""
    return store.arrow(sql, params)


@st.cache_data(show_spinner=False, max_entries=8)
def overview(path: str, sig: tuple) -> dict[str, pd.DataFrame]:
    """Runs, datasets, classifiers and which (run, classifier, dataset) have predictions."""
    s = _store(path)
    runs = s.df("SELECT * EXCLUDE (config_json), config_json FROM runs ORDER BY approach, created_at")
    order = {a: i for i, a in enumerate(APPROACH_ORDER)}
    runs = runs.assign(_o=runs["approach"].map(order).fillna(len(order))).sort_values(["_o", "run_id"]).drop(
        columns="_o").reset_index(drop=True)
    return {
        "runs": runs,
        "datasets": s.df("SELECT * FROM datasets ORDER BY role DESC, dataset"),
        "classifiers": s.df("SELECT run_id, classifier, params_json, fitted_on, n_fit FROM classifiers"),
        "predicted": s.df(
            "SELECT run_id, classifier, dataset, count(*) AS n_faces FROM predictions GROUP BY ALL ORDER BY ALL"),
        "projections": s.df("SELECT * FROM projections ORDER BY created_at DESC"),
        "jobs": s.df("SELECT * FROM jobs ORDER BY started_at DESC LIMIT 20"),
        "epochs": s.df("SELECT * FROM epochs ORDER BY run_id, epoch"),
    }


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
    s = _store(path)
    runs = overview(path, sig)["runs"]
    classes = _classes_of(runs, run_id)
    pid = s.scalar("SELECT projection_id FROM projections WHERE run_id = ? ORDER BY created_at DESC LIMIT 1",
                   [run_id])
    if pid is None or not datasets:
        return _empty_points()
    tab = _arrow(s, 
        """SELECT pp.face_id, f.video_id, pp.dataset, v.database, pp.x, pp.y, v.true_class, v.is_fake,
                  p.pred_class AS pred_idx, p.real_score, p.probs
           FROM projection_points pp
           JOIN faces f ON f.face_id = pp.face_id
           JOIN videos v ON v.video_id = f.video_id
           LEFT JOIN predictions p ON p.run_id = ? AND p.classifier = ? AND p.face_id = pp.face_id
           WHERE pp.projection_id = ? AND list_contains(?, pp.dataset)
           ORDER BY pp.dataset, pp.face_id""",
        [run_id, classifier, pid, list(datasets)])
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


def _empty_points() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in [
        ("face_id", object), ("video_id", object), ("dataset", object), ("database", object), ("x", np.float32),
        ("y", np.float32), ("true_class", object), ("pred", object), ("real_score", float), ("correct", object)]})


@st.cache_data(show_spinner=False, max_entries=24)
def scores(path: str, sig: tuple, run_id: str, classifier: str, datasets: tuple[str, ...],
           level: str) -> pd.DataFrame:
    """Real-scores and labels (video_id, dataset, real_score, is_real, true_class, pred) at a level.

    Validation scores of non-native classifiers are the out-of-fold ones.
    """
    s = _store(path)
    runs = overview(path, sig)["runs"]
    classes = _classes_of(runs, run_id)
    tab = _arrow(s, 
        """SELECT p.face_id, f.video_id, p.dataset, p.pred_class AS pred_idx, p.real_score, p.probs,
                  v.true_class, v.is_fake
           FROM predictions p JOIN faces f ON f.face_id = p.face_id JOIN videos v ON v.video_id = f.video_id
           WHERE p.run_id = ? AND p.classifier = ? AND list_contains(?, p.dataset)
                 AND (p.out_of_fold OR p.classifier = 'native' OR NOT p.dataset LIKE '%/val')
           ORDER BY p.dataset, p.face_id""",
        [run_id, classifier, list(datasets)])
    pcol = tab.column("probs")
    probs = arrow_to_matrix(pcol) if tab.num_rows and pcol.null_count == 0 else None
    df = _to_level(tab.drop_columns(["probs"]).to_pandas(), probs, classes, level)
    if level == "video" and len(df):
        df = df.drop_duplicates("video_id")
    is_fake = df["is_fake"]
    is_real = np.where(is_fake.isna(), np.nan, to_is_real(is_fake.fillna(False).to_numpy(dtype=bool)))
    return pd.DataFrame({
        "video_id": df["video_id"].astype(object), "dataset": df["dataset"].astype(object),
        "real_score": df["real_score"].to_numpy(float), "is_real": is_real.astype(float),
        "true_class": df["true_class"].astype(object).where(df["true_class"].notna(), UNLABELLED),
        "pred": _pred_labels(df["pred_idx"].to_numpy(dtype=float), classes),
    }).reset_index(drop=True)


def validation_datasets(datasets: pd.DataFrame) -> tuple[str, ...]:
    """The pooled validation split of the training super-set (where thresholds come from)."""
    d = datasets.loc[(datasets["role"] == "superset") & (datasets["split"] == "val"), "dataset"]
    return tuple(sorted(d))


@st.cache_data(show_spinner=False, max_entries=64)
def thumbnails(path: str, sig: tuple, face_ids: tuple[str, ...]) -> list[bytes]:
    """JPEG thumbnails in the order of `face_ids` (missing ones as b'')."""
    if not face_ids:
        return []
    df = _store(path).df("SELECT face_id, thumbnail FROM faces WHERE list_contains(?, face_id)", [list(face_ids)])
    by_id = dict(zip(df["face_id"], df["thumbnail"]))
    return [bytes(by_id.get(f) or b"") for f in face_ids]


@st.cache_data(show_spinner=False, max_entries=8)
def metrics_table(path: str, sig: tuple, level: str, bootstrap: int = 0) -> pd.DataFrame:
    """engine.evaluation.metrics_table for every run and classifier (cached)."""
    from engine.evaluation import metrics_table as table

    return table(_store(path), classifiers="all", level=level, bootstrap=bootstrap)
