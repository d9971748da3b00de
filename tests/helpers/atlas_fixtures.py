"""A tiny store with videos, faces, runs, embeddings and native predictions,
written through testkit.store_builder (the engine's own writers; no models, no videos on disk).

Databases: super-set `dba`, `dbb` (train/val/test), cross-db `dbx` (reals +
unseen fakes) and `dby` (unseen fakes only: AUC undefined there).
Classes: real, fa, fb, fc. Embeddings are class-centred Gaussians.
"""

from __future__ import annotations

import json

import numpy as np

from testkit.store_builder import StoreBuilder

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
    b = StoreBuilder(ws.store())
    rows, rng = _videos(seed, per_class)
    b.video_columns(database=[r[0] for r in rows], split=[r[1] for r in rows], relpath=[r[3] for r in rows],
                    true_class=[r[2] for r in rows], identity=[str(i % 5) for i in range(len(rows))],
                    method=[r[2] for r in rows], synthetic=synthetic)
    vids = [f"{db}/{rel}" for db, _, _, rel in rows]
    face_vid = [v for v in vids for _ in range(frames)]
    face_ds = [f"{db}/{split}" for db, split, _, _ in rows for _ in range(frames)]
    face_cls = [cls for _, _, cls, _ in rows for _ in range(frames)]
    n = len(face_vid)
    face_ids = b.faces(SETTINGS, face_vid, np.tile(np.arange(frames), len(rows)),
                       [f"faces/{i}.png" for i in range(n)])
    datasets = sorted(set(face_ds))
    b.datasets(datasets, [d.split("/")[0] for d in datasets], [d.split("/")[1] for d in datasets],
               ["superset" if d.split("/")[0] in SUPERSET else "cross_db" for d in datasets], synthetic=synthetic)
    centres = rng.normal(0, 1.5, size=(len(CLASSES) + 1, dim))
    cls_index = np.array([CLASSES.index(c) if c in CLASSES else len(CLASSES) for c in face_cls])
    # the unseen fakes sit between fa and fb
    centres[len(CLASSES)] = (centres[1] + centres[2]) / 2
    run_ids = {}
    for k, approach in enumerate(approaches):
        run_id = f"{approach}-test{k}"
        run_ids[approach] = run_id
        cfg = {"sources": {"superset": SUPERSET, "cross_db": CROSS}, "classifiers": {}}
        b.run({"run_id": run_id, "approach": approach, "backbone": "tiny", "config_json": json.dumps(cfg),
               "config_hash": "cfg123", "classes": CLASSES, "settings_key": SETTINGS, "embedding_dim": dim,
               "seed": 0, "status": "finished", "synthetic": synthetic, "code_revision": "abc"})
        r = np.random.default_rng(seed + 10 + k)
        emb = centres[cls_index] + r.normal(0, noise, size=(n, dim))
        if not embed:
            continue
        b.embeddings(run_id, face_ids, face_ds, emb)
        if approach in ("binary", "attribution"):
            logits = -0.5 * ((emb[:, None, :] - centres[None, :len(CLASSES), :]) ** 2).sum(-1)
            p = np.exp(logits - logits.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            real = p[:, 0]
            if approach == "binary":
                pred, probs = np.where(real >= 0.5, 0, -1), None
            else:
                pred, probs = p.argmax(1), p
            b.predictions(run_id, "native", face_ids, face_ds, pred, real, probs)
    return run_ids
