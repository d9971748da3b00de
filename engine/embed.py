"""Embed every face of a run's databases and store the head's own predictions.

For each run: every face (of the run's face settings) of the training
super-set (all splits) and of every cross-database set is passed through the
run's best checkpoint (`engine.models.load_for_inference`). Stored per face:
the embedding (`FLOAT[]`: 64-d for the metric heads, the layer before last for
binary / attribution) and, for heads with predictions of their own, those as
classifier `native` (`Approach.native_predictions`: attribution's softmax;
binary's sigmoid real-score with pred_class 0 'real' or -1 'fake').

Faces already embedded for the run are skipped, so re-running resumes. Writes
go in bulk (Arrow) per chunk of faces, one transaction each. `embed_crops` is
the in-memory half that `dfatlas analyze` shares.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from data_catalog.errors import AtlasError

from .runs import RunRecord, read_run
from .store import runs as run_table
from .store.embeddings import embedded_count, embeddings_table, pending_faces, write_embeddings
from .store.predictions import predictions_table


def auto_device(device: str) -> str:
    """'auto' -> 'cuda' when torch sees a GPU, else 'cpu'."""
    if device != "auto":
        return device
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except Exception:  # noqa: BLE001 - no usable torch: CPU
        return "cpu"


def load_model(workspace, run: RunRecord, device: str = "cpu"):
    from .models import load_for_inference

    return load_for_inference(workspace, run.run_id, device=auto_device(device))


def embed_crops(workspace, run: RunRecord, crop_paths: list[str], model, batch_size: int = 256) -> dict:
    """`embedding` [N, d] float32 and the head's `native` predictions (or None) of stored face crops."""
    from .faces import read_crops

    imgs = read_crops(workspace, crop_paths, size=getattr(model, "input_size", None) or None)
    try:
        out = model.predict(imgs, batch_size=batch_size)
    except TypeError:  # a predict() without batch_size
        out = model.predict(imgs)
    emb = np.asarray(out["embedding"], dtype=np.float32)
    if emb.shape[0] != len(imgs):
        raise AtlasError(f"run {run.run_id}: the model returned {emb.shape[0]} embeddings for {len(imgs)} crops")
    native = run.kind.native_predictions(out.get("probs"), out.get("real_score")) \
        if out.get("probs") is not None or out.get("real_score") is not None else None
    return {"embedding": emb, "native": native}


def embed_run(workspace, run_id: str, databases: list[str], model=None, device: str = "cpu", chunk: int = 2048,
              batch_size: int = 256, progress: Callable[[int, int], None] | None = None) -> dict:
    """Embed the run's pending faces of `databases`; returns counts and timings.

    `model` (optional) is anything with `.predict(uint8 [N,H,W,3]) ->
    {embedding, probs, real_score}` — by default the run's checkpoint via
    `engine.models.load_for_inference`.
    """
    store = workspace.store()
    run = read_run(store, run_id)
    if not run.settings_key:
        raise AtlasError(f"run {run_id} records no face settings key; was it trained by this dfatlas?")
    todo = pending_faces(store, run_id, run.settings_key, databases)
    n = todo.num_rows
    done_before = embedded_count(store, run_id)
    if n == 0:
        return {"run_id": run_id, "embedded": 0, "already": done_before, "seconds": 0.0}
    model = model or load_model(workspace, run, device)
    face_ids = todo["face_id"].to_pylist()
    paths = todo["crop_path"].to_pylist()
    datasets = todo["dataset"].to_pylist()
    t0 = time.perf_counter()
    dim = None
    for start in range(0, n, chunk):
        sl = slice(start, min(start + chunk, n))
        out = embed_crops(workspace, run, paths[sl], model, batch_size)
        dim = out["embedding"].shape[1]
        native = out["native"]
        preds = None if native is None else predictions_table(
            run_id, "native", face_ids[sl], datasets[sl], native["pred_class"], native["real_score"], native["probs"],
            out_of_fold=False)
        write_embeddings(store, embeddings_table(run_id, face_ids[sl], datasets[sl], out["embedding"]), preds)
        if progress:
            progress(sl.stop, n)
    secs = time.perf_counter() - t0
    if dim is not None:
        run_table.set_embedding_dim(store, run_id, dim)
    return {"run_id": run_id, "embedded": n, "already": done_before, "seconds": secs,
            "faces_per_s": n / secs if secs else None, "dim": dim}
