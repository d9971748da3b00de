"""A tiny store with one finished metric-head run, for the analysis tests.

Three known classes (real, swap, gan) whose validation embeddings cluster
around three orthogonal directions of a 6-d space; the fourth and fifth
directions belong to no known class (an "unseen" method). Embeddings,
predictions and runs go through the store's own builders and writers
(`engine.store.embeddings` / `predictions` / `runs`), as the pipeline writes them.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

from engine.config import FacesSection
from engine.store import Store
from engine.store.embeddings import embeddings_table
from engine.store.predictions import predictions_table
from engine.store.runs import write_run

CLASSES = ["real", "swap", "gan"]
DIM = 6
RUN_ID = "triplet-fixture01"
FACES = FacesSection(frames_per_video=3, crop_size=32, thumbnail_size=16)
SUPERSET = ["synth"]
TAXONOMY = {"class": [
    {"id": "real", "name": "Real", "color": "#0072B2", "sources": ["*:real"]},
    {"id": "swap", "name": "Swap", "color": "#CC6677", "sources": ["*:swap"]},
    {"id": "gan", "name": "GAN", "color": "#117733", "sources": ["*:gan"]},
]}


def direction(i: int) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[i] = 1.0
    return v


def cluster(center: np.ndarray, n: int, rng, noise: float = 0.15) -> np.ndarray:
    return (center[None, :] + noise * rng.standard_normal((n, DIM))).astype(np.float32)


def run_config() -> dict:
    import dataclasses

    return {"sources": {"superset": SUPERSET, "cross_db": [], "databases": {}},
            "faces": dataclasses.asdict(FACES), "classifiers": {"knn_k": 5}, "taxonomy": TAXONOMY}


def _thumb() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 150, 120)).save(buf, format="JPEG")
    return buf.getvalue()


def write_faces(store: Store, dataset: str, database: str, split: str, video_classes: list[str | None],
                embeddings: np.ndarray, frames: int, settings_key: str, real_scores: np.ndarray | None = None,
                pred_class: np.ndarray | None = None, classifier: str = "knn", run_id: str = RUN_ID,
                with_videos: bool = True, prefix: str = "v") -> list[str]:
    """Videos (one per entry of video_classes), `frames` faces each, embeddings and predictions."""
    n_v = len(video_classes)
    vids = [f"{database}/{split}/{prefix}{i:03d}.avi" if database != "unknown" else f"unknown/{split}/{prefix}{i:03d}.avi"
            for i in range(n_v)]
    face_vid = np.repeat(vids, frames)
    face_ids = [f"{v}#{k}@{settings_key}" for v in vids for k in range(frames)]
    n = len(face_ids)
    with store.transaction() as con:
        if with_videos:
            store.insert("videos", pa.table({
                "video_id": vids, "database": [database] * n_v, "split": [split] * n_v, "dataset": [dataset] * n_v,
                "relpath": [v.split("/", 1)[1] for v in vids], "path": [f"/nowhere/{v}" for v in vids],
                "true_class": pa.array(video_classes, pa.string()),
                "is_fake": pa.array([None if c is None else c != "real" for c in video_classes], pa.bool_()),
            }), con=con)
            store.insert("face_videos", pa.table({
                "video_id": vids, "settings_key": [settings_key] * n_v, "status": ["ok"] * n_v,
                "n_faces": [frames] * n_v}), con=con)
        store.insert("faces", pa.table({
            "face_id": face_ids, "video_id": list(face_vid), "settings_key": [settings_key] * n,
            "frame_index": [k for _ in vids for k in range(frames)], "crop_path": [f"faces/x/{i}.png" for i in range(n)],
            "thumbnail": [_thumb()] * n}), con=con)
        store.insert("embeddings", embeddings_table(run_id, face_ids, [dataset] * n, embeddings), con=con)
        if real_scores is not None:
            store.insert("predictions", predictions_table(run_id, classifier, face_ids, [dataset] * n, pred_class,
                                                          real_scores, None, out_of_fold=True), con=con)
    return vids


def build_store(root: Path, seed: int = 0, n_val_videos: int = 8, frames: int = 3,
                with_projection: bool = True, approach: str = "triplet") -> Store:
    """Workspace store with the run, its validation (and train) embeddings and predictions."""
    rng = np.random.default_rng(seed)
    store = Store(Path(root) / "atlas.duckdb")
    key = FACES.settings_key()
    write_run(store, {"run_id": RUN_ID, "approach": approach, "backbone": "resnet10t",
                      "config_json": json.dumps(run_config()), "classes": CLASSES, "settings_key": key,
                      "embedding_dim": DIM, "status": "finished", "synthetic": True}, created_at=datetime.now())
    for split in ("val", "train"):
        video_classes = [c for c in CLASSES for _ in range(n_val_videos)]
        emb = np.concatenate([cluster(direction(CLASSES.index(c)), frames, rng) for c in video_classes])
        true_idx = np.repeat([CLASSES.index(c) for c in video_classes], frames)
        write_faces(store, f"synth/{split}", "synth", split, video_classes, emb, frames, key,
                    real_scores=np.where(true_idx == 0, 0.8, 0.2) + 0.1 * rng.random(len(true_idx)),
                    pred_class=true_idx, prefix=split)
    store.insert("datasets", pa.table({
        "dataset": ["synth/val", "synth/train"], "database": ["synth", "synth"], "split": ["val", "train"],
        "role": ["superset", "superset"]}))
    if with_projection:
        store.insert("projections", pa.table({"projection_id": ["proj1"], "run_id": [RUN_ID], "reference": ["synth/val"],
                                              "params_json": ["{}"], "seed": [0]}))
    return store
