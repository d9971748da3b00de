"""Evidence for an analysed set: nearest training faces of a video, thumbnails per class, open-set rates."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..openset import OpenSetModel, pairwise_distance, prepare
from ..runs import read_run
from ..store import Store, arrow_to_matrix
from ..store import analyses as set_table
from ..store.embeddings import dataset_embeddings
from .report import calibrate_open_set

_EVIDENCE_COLUMNS = ["face_id", "video_id", "dataset", "true_class", "distance", "thumbnail"]


def nearest_known_faces(store: Store, run_id: str, video_id: str, k: int = 12,
                        splits: tuple[str, ...] = ("train", "val")) -> pd.DataFrame:
    """Evidence for one video: the training super-set faces nearest to its faces in EMBEDDING space.

    For every reference face (splits `splits` of the run's super-set) the distance
    is its smallest distance to any face of the video, in the geometry of
    `engine.openset` (the approach's `embedding_metric`: cosine for the metric
    heads, euclidean otherwise); the `k` nearest are returned with their class,
    video, dataset and thumbnail.
    """
    run = read_run(store, run_id)
    metric = run.kind.embedding_metric
    q = set_table.one_video_embeddings(store, run_id, video_id)
    if q.num_rows == 0:
        return pd.DataFrame(columns=_EVIDENCE_COLUMNS)
    datasets = [d for s in splits for d in run.split_datasets(s)]
    ref = dataset_embeddings(store, run_id, datasets)
    if ref.num_rows == 0:
        return pd.DataFrame(columns=_EVIDENCE_COLUMNS)
    qx = prepare(arrow_to_matrix(q.column("embedding")), metric)
    rx = prepare(arrow_to_matrix(ref.column("embedding")), metric)
    best = np.full(len(rx), np.inf)
    for start in range(0, len(rx), 20000):  # bounded memory: [n_query, 20000] at a time
        best[start:start + 20000] = pairwise_distance(qx, rx[start:start + 20000], metric).min(0)
    top = np.argsort(best, kind="stable")[:k]
    ids = [ref.column("face_id")[int(i)].as_py() for i in top]
    meta = set_table.face_details(store, ids)
    out = pd.DataFrame({"face_id": ids, "dataset": [ref.column("dataset")[int(i)].as_py() for i in top],
                        "distance": best[top]})
    return out.merge(meta, on="face_id", how="left")[_EVIDENCE_COLUMNS]


def class_thumbnails(store: Store, run_id: str, dataset: str, classifier: str, per_class: int = 8) -> pd.DataFrame:
    """A few face thumbnails per predicted class of an analysed set (highest-probability faces first)."""
    return set_table.class_thumbnails(store, run_id, dataset, classifier, per_class)


def open_set_rates(store: Store, run_id: str, datasets: list[str], osm: OpenSetModel | None = None) -> pd.DataFrame:
    """Share of faces and of videos judged "resembles no known class" in already-embedded datasets
    (e.g. the super-set's test split, where it should stay near the calibrated 5 %). The verdict is
    calibrated on the run's θ population (`engine.scores.theta_population`)."""
    osm = osm or calibrate_open_set(store, read_run(store, run_id))
    rows = []
    for d in datasets:
        tbl = set_table.video_face_embeddings(store, run_id, d)
        if tbl.num_rows == 0:
            continue
        emb = arrow_to_matrix(tbl.column("embedding"))
        _, _, face_open = osm.judge_faces(emb)
        _, _, _, video_open = osm.judge_videos(emb, np.asarray(tbl.column("video_id").to_pylist(), dtype=object))
        rows.append({"dataset": d, "faces": int(len(emb)), "face_open_rate": float(face_open.mean()),
                     "videos": int(len(video_open)), "video_open_rate": float(video_open.mean())})
    return pd.DataFrame(rows, columns=["dataset", "faces", "face_open_rate", "videos", "video_open_rate"])
