"""The writer: batches of `VideoResult`s into crop files and store rows.

Workers return encoded crops; this (parent) process writes the crop files
(temp file + atomic rename, `engine.diskspace.write_atomic`) and then, in one transaction per batch
(`engine.store.faces.write_video_faces`), each video's `faces` rows
together with its `face_videos` status row. A kill -9 therefore leaves
either a whole video or none of it; crop files written for an unfinished
batch are simply overwritten by the re-run. A full disk removes the batch's
crop files (they have no rows yet) and stops with one line (`DiskFull`).
"""

from __future__ import annotations

import os

import numpy as np

from ..diskspace import DiskFull, disk_full, is_disk_full, remove_quietly, write_atomic
from ..store import faces as face_table
from .crop_reader import read_crop
from .extract import VideoResult
from .model_files import ModelFile


# --- settings ---------------------------------------------------------------------
def settings_params(faces) -> dict:
    """The [faces] settings that change the crops (what the settings key hashes)."""
    return faces.crop_settings()


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


def _decodes(path) -> bool:
    """The crop decodes; a JPEG also ends with its end-of-image marker (OpenCV decodes a truncated JPEG
    without complaint, filling the missing rows grey)."""
    if read_crop(path) is None:
        return False
    if str(path).lower().endswith((".jpg", ".jpeg")):
        with open(path, "rb") as fh:
            fh.seek(-2, os.SEEK_END)
            return fh.read(2) == b"\xff\xd9"
    return True


def videos_with_bad_crops(store, workspace, key: str, video_ids, decode: bool = False, threads: int = 4) -> set[str]:
    """Which of `video_ids` (done with settings key `key`) have a face whose crop file is missing or
    empty — or, with `decode`, does not decode as an image: the driver extracts them again."""
    ids = list(video_ids)
    if not ids:
        return set()
    rows = face_table.face_rows(store, key, ids)
    root = workspace.root

    def bad(rel: str) -> bool:
        path = root / rel
        try:
            if path.stat().st_size == 0:
                return True
        except OSError:
            return True
        return decode and not _decodes(path)

    vids = rows.column("video_id").to_pylist()
    rels = rows.column("crop_path").to_pylist()
    if decode and threads > 1 and len(rels) > 64:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(threads) as pool:
            flags = list(pool.map(bad, rels, chunksize=64))
    else:
        flags = [bad(r) for r in rels]
    return {v for v, f in zip(vids, flags) if f}


# --- one batch --------------------------------------------------------------------------
def write_batch(store, workspace, key: str, fmt: str, results: list[VideoResult]) -> None:
    """Crop files first, then one transaction with every face row and status row of the batch."""
    faces = [(r.video_id, f) for r in results for f in r.faces]
    paths = [crop_relpath(workspace, key, vid, f.frame_index, fmt) for vid, f in faces]
    written = []
    try:
        for rel, (_, f) in zip(paths, faces):
            write_atomic(workspace.root / rel, f.crop)
            written.append(workspace.root / rel)
    except DiskFull as exc:
        # the batch has no rows yet: its crops go too, so the attempt does not keep the disk full
        remove_quietly(*written)
        raise disk_full(exc.path, sum(len(f.crop) for _, f in faces)) from None
    rows = face_table.faces_table(
        key, [vid for vid, _ in faces], [f.frame_index for _, f in faces], paths, [f.thumbnail for _, f in faces],
        np.array([f.box for _, f in faces], dtype=np.float64).reshape(len(faces), 4),
        [f.score for _, f in faces], [f.detector for _, f in faces])
    status = face_table.face_videos_table(key, *zip(*[
        (r.video_id, r.status, r.reason, r.n_frames, r.n_sampled, r.n_faces, r.width, r.height, r.fps, r.decode_s,
         r.detect_s) for r in results])) if results else None
    if status is not None:
        try:
            face_table.write_video_faces(store, rows, status)
        except BaseException as exc:
            if is_disk_full(exc):
                remove_quietly(*written)
            raise
