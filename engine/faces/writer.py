"""The writer: batches of `VideoResult`s into crop files and store rows.

Workers return encoded crops; this (parent) process writes the crop files
(temp file + atomic rename) and then, in one transaction per batch
(`engine.store.faces.write_video_faces`), each video's `faces` rows
together with its `face_videos` status row. A kill -9 therefore leaves
either a whole video or none of it; crop files written for an unfinished
batch are simply overwritten by the re-run.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

import numpy as np

from ..store import faces as face_table
from .extract import VideoResult
from .model_files import ModelFile


# --- settings ---------------------------------------------------------------------
def settings_params(faces) -> dict:
    """The [faces] settings that change the crops (what the settings key hashes)."""
    return {k: v for k, v in dataclasses.asdict(faces).items() if k not in ("workers", "blazeface_model")}


def record_settings(store, faces, models: dict[str, ModelFile] | None = None, con=None) -> str:
    """Record the settings key of `faces` (and the model files' hashes) once; returns the key."""
    key = faces.settings_key()
    params = settings_params(faces)
    if models:
        params["models"] = {n: {"sha256": m.sha256, "source": m.source} for n, m in models.items()}
    face_table.write_settings(store, face_table.settings_table(key, params), con=con)
    return key


# --- crop files -----------------------------------------------------------------------
def _safe_parts(video_id: str) -> list[str]:
    parts = [p for p in video_id.replace("\\", "/").split("/") if p not in ("", ".")]
    return ["__" if p == ".." else p for p in parts]


def crop_relpath(workspace, key: str, video_id: str, frame: int, fmt: str) -> str:
    """Where a crop lives, relative to the workspace root (POSIX separators)."""
    faces_rel = os.path.relpath(workspace.faces_dir, workspace.root).replace(os.sep, "/")
    return "/".join([faces_rel, key, *_safe_parts(video_id), f"{frame:06d}.{fmt}"])


def write_atomic(path: Path, data: bytes) -> None:
    """Write a file through a temp file and a rename: readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# --- one batch --------------------------------------------------------------------------
def write_batch(store, workspace, key: str, fmt: str, results: list[VideoResult]) -> None:
    """Crop files first, then one transaction with every face row and status row of the batch."""
    faces = [(r.video_id, f) for r in results for f in r.faces]
    paths = [crop_relpath(workspace, key, vid, f.frame_index, fmt) for vid, f in faces]
    for rel, (_, f) in zip(paths, faces):
        write_atomic(workspace.root / rel, f.crop)
    rows = face_table.faces_table(
        key, [vid for vid, _ in faces], [f.frame_index for _, f in faces], paths, [f.thumbnail for _, f in faces],
        np.array([f.box for _, f in faces], dtype=np.float64).reshape(len(faces), 4),
        [f.score for _, f in faces], [f.detector for _, f in faces])
    status = face_table.face_videos_table(key, *zip(*[
        (r.video_id, r.status, r.reason, r.n_frames, r.n_sampled, r.n_faces, r.width, r.height, r.fps, r.decode_s,
         r.detect_s) for r in results])) if results else None
    if status is not None:
        face_table.write_video_faces(store, rows, status)
