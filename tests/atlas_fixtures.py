"""A tiny store with videos, faces, runs, embeddings and native predictions,
written straight through engine.store (no models, no videos on disk).

Databases: super-set `dba`, `dbb` (train/val/test), cross-db `dbx` (reals +
unseen fakes) and `dby` (unseen fakes only: AUC undefined there).
Classes: real, fa, fb, fc. Embeddings are class-centred Gaussians.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

from engine.store import matrix_to_arrow

CLASSES = ["real", "fa", "fb", "fc"]
SETTINGS = "sk0"
SUPERSET = ["dba", "dbb"]
CROSS = ["dbx", "dby"]


def _videos(seed: int, per_class: int):
    rng = np.random.default_rng(seed)
    rows = []
    for db in SUPERSET:
        fakes = ["fa", "fb"] if db == "dba" else ["fb", "fc"]
        for split, n in (("train", per_class), ("val", per_class), ("test", per_class)):
            for cls in ["real", *fakes]:
                for i in range(n):
                    rows.append((db, split, cls, f"{cls}/{split}_{i:03d}.avi"))
    for i in range(per_class):
        rows.append(("dbx", "test", "real", f"real/{i:03d}.avi"))
        rows.append(("dbx", "test", "unseen-fake", f"fake/{i:03d}.avi"))
        rows.append(("dby", "test", "unseen-fake", f"fake/{i:03d}.avi"))
    return rows, rng


def build_store(ws, approaches=("binary", "attribution", "triplet", "arcfacemod"), per_class: int = 8,
                frames: int = 3, dim: int = 8, seed: int = 0, synthetic: bool = True, noise: float = 1.0,
                embed: bool = True):
    """Fill `ws.store()`; returns {approach: run_id}. `embed=False`: runs without embeddings."""
    store = ws.store()
    rows, rng = _videos(seed, per_class)
    vids = [f"{db}/{rel}" for db, _, _, rel in rows]
    videos = pa.table({
        "video_id": vids,
        "database": [r[0] for r in rows],
        "split": [r[1] for r in rows],
        "dataset": [f"{r[0]}/{r[1]}" for r in rows],
        "relpath": [r[3] for r in rows],
        "path": [f"/data/{v}" for v in vids],
        "true_class": [r[2] for r in rows],
        "is_fake": [r[2] != "real" for r in rows],
        "identity": [str(i % 5) for i in range(len(rows))],
        "method": [r[2] for r in rows],
        "synthetic": [synthetic] * len(rows),
    })
    face_ids, face_vid, face_ds, face_cls = [], [], [], []
    for (db, split, cls, rel), v in zip(rows, vids):
        for f in range(frames):
            face_ids.append(f"{v}#{f}@{SETTINGS}")
            face_vid.append(v)
            face_ds.append(f"{db}/{split}")
            face_cls.append(cls)
    n = len(face_ids)
    faces = pa.table({
        "face_id": face_ids, "video_id": face_vid, "settings_key": [SETTINGS] * n,
        "frame_index": pa.array(np.tile(np.arange(frames), len(rows)), pa.int32()),
        "crop_path": [f"faces/{i}.png" for i in range(n)],
    })
    datasets = sorted(set(face_ds))
    ds_tab = pa.table({
        "dataset": datasets, "database": [d.split("/")[0] for d in datasets],
        "split": [d.split("/")[1] for d in datasets],
        "role": ["superset" if d.split("/")[0] in SUPERSET else "cross_db" for d in datasets],
        "synthetic": [synthetic] * len(datasets),
    })
    centres = rng.normal(0, 1.5, size=(len(CLASSES) + 1, dim))
    cls_index = np.array([CLASSES.index(c) if c in CLASSES else len(CLASSES) for c in face_cls])
    # the unseen fakes sit between fa and fb
    centres[len(CLASSES)] = (centres[1] + centres[2]) / 2
    run_ids = {}
    with store.transaction() as con:
        store.insert("videos", videos, con=con)
        store.insert("faces", faces, con=con)
        store.insert("datasets", ds_tab, con=con)
        for k, approach in enumerate(approaches):
            run_id = f"{approach}-test{k}"
            run_ids[approach] = run_id
            cfg = {"sources": {"superset": SUPERSET, "cross_db": CROSS}, "classifiers": {}}
            con.execute(
                "INSERT INTO runs (run_id, approach, backbone, config_json, config_hash, classes, settings_key, "
                "embedding_dim, seed, status, synthetic, code_revision) VALUES (?, ?, 'tiny', ?, 'cfg123', ?, ?, ?, 0, "
                "'finished', ?, 'abc')",
                [run_id, approach, json.dumps(cfg), CLASSES, SETTINGS, dim, synthetic])
            r = np.random.default_rng(seed + 10 + k)
            emb = centres[cls_index] + r.normal(0, noise, size=(n, dim))
            if not embed:
                continue
            store.insert("embeddings", pa.table({
                "run_id": [run_id] * n, "face_id": face_ids, "dataset": face_ds,
                "embedding": matrix_to_arrow(emb)}), con=con)
            if approach in ("binary", "attribution"):
                logits = -0.5 * ((emb[:, None, :] - centres[None, :len(CLASSES), :]) ** 2).sum(-1)
                p = np.exp(logits - logits.max(1, keepdims=True))
                p /= p.sum(1, keepdims=True)
                real = p[:, 0]
                if approach == "binary":
                    pred = np.where(real >= 0.5, 0, -1)
                    probs = pa.nulls(n, pa.list_(pa.float32()))
                else:
                    pred = p.argmax(1)
                    probs = matrix_to_arrow(p)
                store.insert("predictions", pa.table({
                    "run_id": [run_id] * n, "classifier": ["native"] * n, "face_id": face_ids,
                    "dataset": face_ds, "pred_class": pa.array(pred, pa.int32()), "real_score": real,
                    "probs": probs, "out_of_fold": [False] * n}), con=con)
    return run_ids
