"""A tiny store with one finished metric-head run, for the analysis tests.

Three known classes (real, swap, gan) whose validation embeddings cluster
around three orthogonal directions of a 6-d space; the fourth and fifth
directions belong to no known class (an "unseen" method). Embeddings,
predictions and runs go through the engine's own writers (`testkit.store_builder`),
as the pipeline writes them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engine.config import FacesSection
from engine.store import Store
from testkit.store_builder import StoreBuilder

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
    b = StoreBuilder(store)
    n_v = len(video_classes)
    rel = [f"{split}/{prefix}{i:03d}.avi" for i in range(n_v)]
    vids = [f"{database}/{r}" for r in rel]
    face_vid = np.repeat(vids, frames)
    frame_index = np.tile(np.arange(frames), n_v)
    n = len(face_vid)
    statuses = None
    if with_videos:
        b.video_columns(database=database, split=split, relpath=rel, true_class=video_classes,
                        path=[f"/nowhere/{v}" for v in vids])
        statuses = b.statuses(settings_key, vids, n_faces=frames)
    face_ids = b.faces(settings_key, face_vid, frame_index, [f"faces/x/{i}.png" for i in range(n)],
                       thumbnail=_thumb(), statuses=statuses)
    b.embeddings(run_id, face_ids, dataset, embeddings)
    if real_scores is not None:
        b.predictions(run_id, classifier, face_ids, dataset, pred_class, real_scores, out_of_fold=True)
    return vids


def build_store(root: Path, seed: int = 0, n_val_videos: int = 8, frames: int = 3,
                with_projection: bool = True, approach: str = "triplet") -> Store:
    """Workspace store with the run, its validation (and train) embeddings and predictions."""
    rng = np.random.default_rng(seed)
    b = StoreBuilder.at(root)
    key = FACES.settings_key()
    b.run({"run_id": RUN_ID, "approach": approach, "backbone": "resnet10t",
           "config_json": json.dumps(run_config()), "classes": CLASSES, "settings_key": key,
           "embedding_dim": DIM, "status": "finished", "synthetic": True})
    for split in ("val", "train"):
        video_classes = [c for c in CLASSES for _ in range(n_val_videos)]
        emb = np.concatenate([cluster(direction(CLASSES.index(c)), frames, rng) for c in video_classes])
        true_idx = np.repeat([CLASSES.index(c) for c in video_classes], frames)
        write_faces(b.store, f"synth/{split}", "synth", split, video_classes, emb, frames, key,
                    real_scores=np.where(true_idx == 0, 0.8, 0.2) + 0.1 * rng.random(len(true_idx)),
                    pred_class=true_idx, prefix=split)
    b.datasets(dataset=["synth/val", "synth/train"], database="synth", split=["val", "train"], role="superset")
    if with_projection:
        b.map("proj1", RUN_ID, ["synth/val"], {}, 0)
    return b.store
