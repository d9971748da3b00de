"""Embed every face of a run's databases and store the head's own predictions.

For each run: every face (of the run's face settings) of the training
super-set (all splits) and of every cross-database set is passed through the
run's best checkpoint (`engine.models.load_for_inference`). Stored per face:
the embedding (`FLOAT[]`: 64-d for the metric heads, the layer before last for
binary / attribution) and, for binary / attribution, the head's prediction as
classifier `native`:

- attribution: `pred_class` = argmax of the softmax, `real_score` = P(real),
  `probs` = the softmax in `runs.classes` order;
- binary: `real_score` = sigmoid of the logit (oriented so high = real),
  `pred_class` = 0 ('real') when it is >= 0.5, else -1 ('fake', no
  attribution); `probs` NULL (a binary head has no class probabilities).

Faces already embedded for the run are skipped, so re-running resumes. Writes
go in bulk (Arrow) per chunk of faces, one transaction each.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import pyarrow as pa

from data_catalog.errors import AtlasError

from .metrics import UNATTRIBUTED
from .store import Store, matrix_to_arrow


def native_predictions(approach: str, probs, real_score) -> dict | None:
    """The head's own predictions (see the module doc); None for metric heads."""
    if approach == "binary":
        real = np.asarray(real_score if real_score is not None else np.asarray(probs)[:, 0], dtype=np.float64)
        return {"pred_class": np.where(real >= 0.5, 0, UNATTRIBUTED).astype(np.int32), "real_score": real,
                "probs": None}
    if approach == "attribution":
        p = np.asarray(probs, dtype=np.float32)
        return {"pred_class": p.argmax(1).astype(np.int32), "real_score": p[:, 0].astype(np.float64), "probs": p}
    return None


def pending_faces(store: Store, run_id: str, settings_key: str, databases: list[str]):
    """Faces of `databases` (settings `settings_key`) that the run has not embedded yet."""
    return store.arrow("""
        SELECT f.face_id, f.crop_path, v.dataset
        FROM faces f JOIN videos v ON v.video_id = f.video_id
        WHERE f.settings_key = ? AND v.database IN (SELECT unnest(?))
          AND NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.run_id = ? AND e.face_id = f.face_id)
        ORDER BY v.dataset, f.face_id""", [settings_key, list(databases), run_id])


def _auto_device(device: str) -> str:
    if device != "auto":
        return device
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except Exception:  # noqa: BLE001 - no usable torch: CPU
        return "cpu"


def embed_run(workspace, run_id: str, databases: list[str], model=None, device: str = "cpu", chunk: int = 2048,
              batch_size: int = 256, progress: Callable[[int, int], None] | None = None) -> dict:
    """Embed the run's pending faces of `databases`; returns counts and timings.

    `model` (optional) is anything with `.predict(uint8 [N,H,W,3]) ->
    {embedding, probs, real_score}` — by default the run's checkpoint via
    `engine.models.load_for_inference`.
    """
    from .faces import read_crops

    store = workspace.store()
    run = store.df("SELECT approach, settings_key, embedding_dim, status FROM runs WHERE run_id = ?", [run_id])
    if run.empty:
        known = store.df("SELECT run_id FROM runs ORDER BY 1").run_id.tolist()
        raise AtlasError(f"unknown run id {run_id!r}; runs in this store: {', '.join(known) or 'none'}")
    approach, settings_key = run.approach.iloc[0], run.settings_key.iloc[0]
    if not settings_key:
        raise AtlasError(f"run {run_id} records no face settings key; was it trained by this dfatlas?")
    todo = pending_faces(store, run_id, settings_key, databases)
    n = todo.num_rows
    done_before = store.scalar("SELECT count(*) FROM embeddings WHERE run_id = ?", [run_id])
    if n == 0:
        return {"run_id": run_id, "embedded": 0, "already": int(done_before), "seconds": 0.0}
    if model is None:
        from .models import load_for_inference

        model = load_for_inference(workspace, run_id, device=_auto_device(device))
    size = getattr(model, "input_size", None) or None
    face_ids = todo["face_id"].to_pylist()
    paths = todo["crop_path"].to_pylist()
    datasets = todo["dataset"].to_pylist()
    t0 = time.perf_counter()
    dim = None
    for start in range(0, n, chunk):
        sl = slice(start, min(start + chunk, n))
        imgs = read_crops(workspace, paths[sl], size=size)
        try:
            out = model.predict(imgs, batch_size=batch_size)
        except TypeError:  # a predict() without batch_size
            out = model.predict(imgs)
        emb = np.asarray(out["embedding"], dtype=np.float32)
        if emb.shape[0] != len(imgs):
            raise AtlasError(f"run {run_id}: the model returned {emb.shape[0]} embeddings for {len(imgs)} crops")
        dim = emb.shape[1]
        m = len(imgs)
        emb_t = pa.table({"run_id": pa.array([run_id] * m, pa.string()), "face_id": pa.array(face_ids[sl], pa.string()),
                          "dataset": pa.array(datasets[sl], pa.string()), "embedding": matrix_to_arrow(emb)})
        native = native_predictions(approach, out.get("probs"), out.get("real_score"))
        with store.transaction() as con:
            store.insert("embeddings", emb_t, replace=True, con=con)
            if native is not None:
                probs = native["probs"]
                store.insert("predictions", pa.table({
                    "run_id": emb_t["run_id"], "classifier": pa.array(["native"] * m, pa.string()),
                    "face_id": emb_t["face_id"], "dataset": emb_t["dataset"],
                    "pred_class": pa.array(native["pred_class"], pa.int32()),
                    "real_score": pa.array(native["real_score"], pa.float64()),
                    "probs": matrix_to_arrow(probs) if probs is not None else pa.nulls(m, pa.list_(pa.float32())),
                    "out_of_fold": pa.array([False] * m, pa.bool_())}), replace=True, con=con)
        if progress:
            progress(sl.stop, n)
    secs = time.perf_counter() - t0
    if dim is not None:
        store.execute("UPDATE runs SET embedding_dim = coalesce(embedding_dim, ?) WHERE run_id = ?", [dim, run_id])
    return {"run_id": run_id, "embedded": n, "already": int(done_before), "seconds": secs,
            "faces_per_s": n / secs if secs else None, "dim": dim}


def runs_for_config(store: Store, cfg, run: str | None = None, need: str = "finished") -> list[str]:
    """`--run RUN`, else the config's four runs that exist in the store (finished)."""
    from .config import APPROACHES

    if run:
        st = store.df("SELECT status FROM runs WHERE run_id = ?", [run])
        if st.empty:
            known = store.df("SELECT run_id FROM runs ORDER BY 1").run_id.tolist()
            raise AtlasError(f"unknown run id {run!r}; runs in this store: {', '.join(known) or 'none'}")
        return [run]
    ids = [cfg.run_id(a) for a in APPROACHES]
    df = store.df("SELECT run_id, status FROM runs WHERE run_id IN (SELECT unnest(?))", [ids])
    ok = [r for r in ids if r in set(df.run_id[df.status == need])] if need else [r for r in ids if r in set(df.run_id)]
    if not ok:
        raise AtlasError(f"no {need + ' ' if need else ''}runs of {cfg.path.name} in this store: "
                         "train them first (`dfatlas train --config CONFIG`)")
    return ok
