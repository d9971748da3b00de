"""Large stores for the map's scale benchmark, written through the engine's own writers (StoreBuilder).

Ten classes (real + nine fakes) in clusters, a super-set test split, one cross-database set whose fakes
are unseen, one unlabelled set; 15 frames per video; thumbnails for at most 20,000 faces (the rest share
one placeholder); one finished run with two embedding classifiers and one map.

    python -m testkit.scale_store WORKSPACE 100000 [EMBEDDING_DIM]
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np

from testkit.store_builder import StoreBuilder

FRAMES = 15
CLASSES = ["real"] + [f"fake-{i}" for i in range(1, 10)]
RUN_ID = "triplet-scale0001"
KEY = "scale0settings"
MAX_THUMBS = 20_000


def _jpeg(color) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 32), color).save(buf, format="JPEG", quality=60)
    return buf.getvalue()


def scale_embeddings(cls_idx: np.ndarray, part: np.ndarray, frames: int, dim: int = 64, seed: int = 0) -> np.ndarray:
    """[videos x frames, dim] float32 unit vectors shaped like a metric head's: one centre per class with
    four sub-clusters (identities, compressions), a spread per video and a smaller one per frame; the
    cross-database set's fakes (unseen methods) lie halfway between two known classes; the
    unlabelled set mixes all of them. Faces in video order, `frames` per video."""
    rng = np.random.default_rng(seed + 1)
    n_vid = len(cls_idx)
    centres = rng.normal(size=(len(CLASSES), dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    sub = centres[:, None, :] + 0.35 * rng.normal(size=(len(CLASSES), 4, dim)) / np.sqrt(dim)
    video = sub[cls_idx, rng.integers(0, 4, n_vid)]
    unseen = (part == 1) & (cls_idx != 0)
    other = rng.integers(1, len(CLASSES), n_vid)
    video[unseen] = 0.5 * (centres[cls_idx[unseen]] + centres[other[unseen]])
    video += 0.3 * rng.normal(size=(n_vid, dim)) / np.sqrt(dim)
    out = np.repeat(video, frames, axis=0)
    out += 0.2 * rng.normal(size=out.shape) / np.sqrt(dim)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out.astype(np.float32)


def build_scale_store(root: str | Path, n_faces: int, seed: int = 0, embedding_dim: int = 0) -> Path:
    """The store; with `embedding_dim` the run also holds every face's embedding (`scale_embeddings`),
    written in slices of 100,000 through the engine's writer."""
    rng = np.random.default_rng(seed)
    b = StoreBuilder.at(root)
    n_vid = max(len(CLASSES), n_faces // FRAMES)
    # 70 % super-set test, 20 % cross-database (real + unseen fakes), 10 % unlabelled
    part = np.where(np.arange(n_vid) % 10 < 7, 0, np.where(np.arange(n_vid) % 10 < 9, 1, 2))
    cls_idx = rng.integers(0, len(CLASSES), n_vid)
    dbs = np.array(["big-a", "big-x", "unknown"], dtype=object)[part]
    splits = np.array(["test", "test", "mystery"], dtype=object)[part]
    true = np.where(part == 0, np.array(CLASSES, dtype=object)[cls_idx],
                    np.where(part == 1, np.where(cls_idx == 0, "real", "unseen-fake"), None))
    rel = [f"{s}/{i:07d}.mp4" for i, s in enumerate(splits)]
    b.video_columns(database=list(dbs), split=list(splits), relpath=rel, true_class=list(true), synthetic=True)
    b.datasets(dataset=["big-a/test", "big-x/test", "unknown/mystery"], database=["big-a", "big-x", "unknown"],
               split=["test", "test", "mystery"], role=["superset", "cross_db", "unknown"],
               labelled=[True, True, False], synthetic=True)
    b.settings(KEY, {"frames_per_video": FRAMES})
    video_ids = np.array([f"{d}/{r}" for d, r in zip(dbs, rel)], dtype=object)
    vid = np.repeat(np.arange(n_vid), FRAMES)
    n = len(vid)
    placeholder, thumb = _jpeg((150, 150, 150)), _jpeg((200, 120, 90))
    thumbs = [thumb if i < MAX_THUMBS else placeholder for i in range(n)]
    ids = b.faces(KEY, video_ids[vid], np.tile(np.arange(FRAMES), n_vid), [f"faces/{i}.png" for i in range(n)],
                  thumbnail=thumbs)
    datasets = np.array(["big-a/test", "big-x/test", "unknown/mystery"], dtype=object)[part[vid]]
    b.run({"run_id": RUN_ID, "approach": "triplet", "backbone": "resnet10t", "config_json": "{}",
           "config_hash": "scale", "classes": CLASSES, "settings_key": KEY, "embedding_dim": embedding_dim or 8,
           "seed": seed,
           "status": "finished", "synthetic": True,
           "taxonomy_json": json.dumps({"class": [{"id": c, "name": c.title(), "sources": [f"*:{c}"]}
                                                  for c in CLASSES]})})
    # clusters: one per predicted class, videos' faces near their video
    target = np.where(cls_idx == 0, 0, cls_idx)[vid]
    for k, clf in enumerate(("knn", "lr")):
        ok = rng.random(n) < 0.85 - 0.05 * k
        pred = np.where(ok, target, rng.integers(0, len(CLASSES), n)).astype(np.int32)
        score = np.clip(np.where(pred == 0, 0.8, 0.2) + rng.normal(0, 0.1, n), 0, 1)
        b.predictions(RUN_ID, clf, ids, list(datasets), pred, score, fit={"fitted_on": "big-a/val", "n_fit": 100})
    if embedding_dim:
        emb = scale_embeddings(cls_idx, part, FRAMES, embedding_dim, seed)
        for s in range(0, n, 100_000):
            b.embeddings(RUN_ID, ids[s:s + 100_000], list(datasets[s:s + 100_000]), emb[s:s + 100_000])
    angle = target * 2 * np.pi / len(CLASSES)
    centre = np.stack([np.cos(angle), np.sin(angle)], 1) * 30 + rng.normal(0, 6, (n_vid, 2))[vid]
    xy = centre + rng.normal(0, 1.5, (n, 2))
    b.map("tsne-scale0001", RUN_ID, ["big-a/test"], {"perplexity": 30}, seed, 1.0, ids, list(datasets), xy,
          is_reference=datasets == "big-a/test")
    return Path(root) / "atlas.duckdb"


if __name__ == "__main__":
    print(build_scale_store(sys.argv[1], int(sys.argv[2]), embedding_dim=int(sys.argv[3]) if len(sys.argv) > 3 else 0))
