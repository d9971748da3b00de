"""A small but complete, schema-valid store for dashboard tests and benchmarks.

`build_fixture_store(root, n_points=...)` writes a workspace folder whose
`atlas.duckdb` holds what the pipeline would have written: four runs (one per
approach), a training super-set of two synthetic databases (val and test
splits), one cross-database set with unseen fakes, one unlabelled unknown
set, faces with tiny JPEG thumbnails, embeddings, predictions (native head or
kNN/LR/SVM, out-of-fold on validation) and one t-SNE projection per run.

Everything is drawn from a seeded NumPy generator and written in bulk
through the engine's own writers (`testkit.store_builder`), so 50,000 points build in seconds
and a schema change is made once, in `engine/store`.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
from engine.approaches import UNATTRIBUTED, get_approach
from engine.store.faces import face_ids
from testkit.store_builder import StoreBuilder

SETTINGS_KEY = "fx0settings"
CLASSES = [
    {"id": "real", "name": "Real", "color": "#0072B2", "sources": ["*:real"]},
    {"id": "syn-swap", "name": "Synthetic swap", "color": "#CC6677", "sources": ["*:swap"]},
    {"id": "syn-reenact", "name": "Synthetic reenact", "color": "#DDCC77", "sources": ["*:reenact"]},
    {"id": "syn-gan", "name": "Synthetic GAN", "color": "#117733", "sources": ["*:gan"]},
    {"id": "syn-lowres", "name": "Synthetic low-res", "color": "#88CCEE", "sources": ["*:lowres"]},
]
CLASS_IDS = [c["id"] for c in CLASSES]
APPROACHES = {
    "binary": ("native",),
    "attribution": ("native",),
    "triplet": ("knn", "lr", "svm"),
    "arcfacemod": ("knn", "lr", "svm"),
}
# How often each approach attributes a video correctly (makes the tables differ).
QUALITY = {"binary": 0.6, "attribution": 0.8, "triplet": 0.88, "arcfacemod": 0.84}
# dataset, database, split, role, labelled, true classes present, share of points
# (dataset, database, split, role, labelled, classes, share of the map's faces); train and val faces are embedded
# (the open-set verdict is fitted on training faces and thresholded on validation ones) but not on the map.
DATASETS = [
    ("synth-a/train", "synth-a", "train", "superset", True, CLASS_IDS, 0.10),
    ("synth-b/train", "synth-b", "train", "superset", True, ["real", "syn-swap", "syn-gan"], 0.06),
    ("synth-a/val", "synth-a", "val", "superset", True, CLASS_IDS, 0.12),
    ("synth-a/test", "synth-a", "test", "superset", True, CLASS_IDS, 0.30),
    ("synth-b/val", "synth-b", "val", "superset", True, ["real", "syn-swap", "syn-gan"], 0.08),
    ("synth-b/test", "synth-b", "test", "superset", True, ["real", "syn-swap", "syn-gan"], 0.20),
    ("synth-x/test", "synth-x", "test", "cross_db", True, ["real", "unseen-fake"], 0.18),
    ("unknown/mystery", "unknown", "mystery", "unknown", False, [None], 0.12),
]


def run_ids() -> dict[str, str]:
    return {a: f"{a}-fx{i:04d}" for i, a in enumerate(APPROACHES)}


def _thumbnails() -> dict[str | None, bytes]:
    from PIL import Image

    out = {}
    palette = {c["id"]: c["color"] for c in CLASSES} | {"unseen-fake": "#5A5A5A", None: "#999999"}
    for cid, color in palette.items():
        img = Image.new("RGB", (32, 32), color)
        img.paste((230, 200, 170), (8, 6, 24, 26))  # a "face"
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=70)
        out[cid] = buf.getvalue()
    return out


# Original file names of the unknown set's videos (chain of custody): scripts other than Latin, and names
# that must be escaped wherever they are shown.
ORIGINAL_NAMES = ("видео-свидетель.mp4", "証拠ビデオ.mov", "<script>alert('x')</script>.avi", "plain name.avi")


def custody_digest(video_id: str) -> str:
    """The SHA-256 the fixture records for an unknown-set video (a digest of its id)."""
    import hashlib

    return hashlib.sha256(video_id.encode()).hexdigest()


def build_fixture_store(root: str | Path, n_points: int = 600, frames_per_video: int = 3, seed: int = 0,
                        run_status: dict[str, str] | None = None, with_projections: bool = True,
                        embedding_dim: int = 8) -> Path:
    """Write a workspace at `root` and return its store path.

    `n_points` is the number of faces on the map (val faces come on top);
    `run_status` overrides a run's status (e.g. {"triplet": "training"}).
    The unknown set's videos carry original names (`ORIGINAL_NAMES`, in turn) and SHA-256 digests
    (`custody_digest`), as an analysis records them.
    Every row goes through the engine's writers (`testkit.store_builder.StoreBuilder`).
    """
    b = StoreBuilder.at(root)
    rng = np.random.default_rng(seed)
    run_status = run_status or {}
    thumbs = _thumbnails()
    n_cls = len(CLASS_IDS)

    # --- videos and faces ---------------------------------------------------
    vid_frames, face_frames = [], []
    map_total = sum(d[6] for d in DATASETS if d[2] not in ("train", "val"))
    for dataset, database, split, role, labelled, classes, share in DATASETS:
        n_faces = max(frames_per_video * len(classes), int(round(n_points * share / map_total)))
        n_vid = max(len(classes), n_faces // frames_per_video)
        cls = np.array(classes, dtype=object)[np.arange(n_vid) % len(classes)]
        rel = np.array([f"{split}/{c or 'item'}/{i:06d}.avi" for i, c in enumerate(cls)], dtype=object)
        vids = pd.DataFrame({
            "video_id": database + "/" + pd.Series(rel, dtype=object), "database": database, "split": split,
            "relpath": rel, "true_class": cls, "identity": [f"id{i % 17:02d}" for i in range(n_vid)],
            "method": [None if c is None else c.replace("syn-", "") for c in cls],
        })
        vid_frames.append(vids)
        frame = np.tile(np.arange(frames_per_video), n_vid)
        face_frames.append(pd.DataFrame({
            "video_id": np.repeat(vids["video_id"].to_numpy(), frames_per_video), "dataset": dataset,
            "frame_index": frame.astype(np.int32), "true_class": np.repeat(cls, frames_per_video),
        }))
    videos = pd.concat(vid_frames, ignore_index=True)
    faces = pd.concat(face_frames, ignore_index=True)
    n = len(faces)
    b.video_columns(database=videos["database"], split=videos["split"], relpath=videos["relpath"],
                    true_class=videos["true_class"], identity=videos["identity"], method=videos["method"],
                    synthetic=True)
    b.datasets(dataset=[d[0] for d in DATASETS], database=[d[1] for d in DATASETS],
               split=[d[2] for d in DATASETS], role=[d[3] for d in DATASETS],
               labelled=[d[4] for d in DATASETS], synthetic=True, source=[f"/data/{d[1]}" for d in DATASETS])
    unknown = videos.loc[videos["database"] == "unknown", "video_id"].tolist()
    b.files(unknown, [ORIGINAL_NAMES[i % len(ORIGINAL_NAMES)] for i in range(len(unknown))],
            [custody_digest(v) for v in unknown], [1000 + i for i in range(len(unknown))])
    b.settings(SETTINGS_KEY, {"frames_per_video": frames_per_video})
    ids = face_ids(faces["video_id"], faces["frame_index"], SETTINGS_KEY).to_pylist()
    crop_paths = ["faces/" + i.replace("#", "_").replace("@", "_") + ".png" for i in ids]
    face_id = b.faces(SETTINGS_KEY, faces["video_id"], faces["frame_index"], crop_paths,
                      thumbnail=[thumbs.get(c, thumbs[None]) for c in faces["true_class"]],
                      box=np.tile([40.0, 30.0, 96.0, 96.0], (n, 1)), score=rng.uniform(0.8, 1.0, n),
                      detector="short_range")
    face_id = np.asarray(face_id, dtype=object)
    dataset = faces["dataset"].to_numpy(dtype=object)
    true_idx = np.array([CLASS_IDS.index(c) if c in CLASS_IDS else -1 for c in faces["true_class"]])
    vid_codes, vid_index = np.unique(faces["video_id"].to_numpy(dtype=str), return_inverse=True)

    taxonomy_json = json.dumps({"class": CLASSES})
    is_val = faces["dataset"].str.endswith("/val").to_numpy()
    on_map = ~is_val & ~faces["dataset"].str.endswith("/train").to_numpy()
    is_ref = faces["dataset"].isin(["synth-a/test", "synth-b/test"]).to_numpy()
    angles = np.linspace(0, 2 * np.pi, n_cls + 1)[:-1]

    for r, (approach, classifiers) in enumerate(APPROACHES.items()):
        run_id = run_ids()[approach]
        status = run_status.get(approach, "finished")
        config = {"experiment": {"name": "fixture", "synthetic": True, "seed": seed},
                  "sources": {"databases": {"synth-a": "/data/synth-a", "synth-b": "/data/synth-b",
                                            "synth-x": "/data/synth-x"},
                              "superset": ["synth-a", "synth-b"], "cross_db": ["synth-x"]},
                  "model": {"backbone": "resnet10t", "pretrained": False}}
        b.run({"run_id": run_id, "approach": approach, "backbone": "resnet10t",
               "config_json": json.dumps(config), "config_hash": f"fx{r}", "classes": CLASS_IDS,
               "taxonomy_json": taxonomy_json, "settings_key": SETTINGS_KEY, "embedding_dim": embedding_dim,
               "pretrained_source": "random init (offline)", "seed": seed, "status": status,
               "message": None if status == "finished" else "epoch 3/10", "best_epoch": 2,
               "epochs_done": 3 if status != "finished" else 10, "synthetic": True, "train_seconds": 12.5})
        for e in range(3 if status != "finished" else 10):  # a training history with a best epoch (index 2)
            b.epoch({"run_id": run_id, "epoch": e, "train_loss": 2.0 / (e + 1), "val_loss": 2.2 / (e + 1) + 0.05 * e,
                     "val_accuracy": min(0.95, 0.4 + 0.06 * e), "seconds": 1.25, "images_per_s": 100.0})
        if status != "finished":
            continue
        # Per video: correct attribution with probability QUALITY; per frame a little noise.
        vid_ok = rng.random(len(vid_codes)) < QUALITY[approach]
        ok = vid_ok[vid_index] & (rng.random(n) < 0.93)
        wrong = rng.integers(0, n_cls, n)
        target = np.where(true_idx >= 0, true_idx, rng.integers(1, n_cls, n))  # unseen/unknown look like some fake
        unknown_truth = faces["true_class"].isna().to_numpy()
        target = np.where(unknown_truth, np.where(rng.random(n) < 0.7, 1, 3), target)
        pred_base = np.where(ok, target, wrong)
        emb_centre = np.stack([np.cos(angles[pred_base] + r), np.sin(angles[pred_base] + r)], axis=1) * 10
        xy = emb_centre + rng.normal(0, 1.6, (n, 2))
        emb = np.concatenate([xy / 10, rng.normal(0, 0.3, (n, embedding_dim - 2))], axis=1).astype(np.float32)
        b.embeddings(run_id, face_id, dataset, emb)
        has_probs = get_approach(approach).attributes  # Binary: real or unattributed fake, no class probabilities
        for c_i, clf in enumerate(classifiers):
            flip = rng.random(n) < 0.03 * c_i  # classifiers of one run differ slightly
            pred = np.where(flip, rng.integers(0, n_cls, n), pred_base)
            pred_real = pred == 0
            score = np.clip(0.5 + np.where(pred_real, 0.28, -0.28) + rng.normal(0, 0.14, n), 0.0, 1.0)
            probs = np.full((n, n_cls), 0.0, dtype=np.float32)
            probs[:, 0] = score
            rest = (1.0 - score) / (n_cls - 1)
            probs[:, 1:] = rest[:, None] * 0.5
            fake_pred = np.where(pred == 0, 1, pred)
            probs[np.arange(n), fake_pred] += (1.0 - score) - (rest * 0.5 * (n_cls - 1))
            b.predictions(run_id, clf, face_id, dataset,
                          pred if has_probs else np.where(pred_real, 0, UNATTRIBUTED), score,
                          probs if has_probs else None, out_of_fold=is_val & (clf != "native"),
                          fit={"params_json": {"k": 14} if clf == "knn" else {}, "fitted_on": "superset/val",
                               "n_fit": int(is_val.sum())})
        if with_projections:
            b.map(f"proj-{run_id}", run_id, ["superset/test"], {"perplexity": 30, "n_iter": 500}, seed, 1.23,
                  face_id[on_map], dataset[on_map], xy[on_map], is_reference=is_ref[on_map])
    return b.store.path


if __name__ == "__main__":  # python -m testkit.dashboard_store DIR [N]
    import sys

    path = build_fixture_store(sys.argv[1], n_points=int(sys.argv[2]) if len(sys.argv) > 2 else 600)
    print(path)
