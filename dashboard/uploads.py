"""Saving the Analyse page's uploads: size limit, video or image signature, sanitised names, inside the workspace.

Frames as input: the images of one upload are the frames of ONE video (saved together in `frames/`, taken
in natural name order, `engine.analysis.inputs`); each video file is a video of its own.

The safe on-disk name is ASCII (`engine.analysis.sanitize_filename`); the name the user's file had, in
whatever script, is kept beside it (`engine.analysis.custody.write_upload_names`, keyed by the path inside
the upload folder) and stored with the set's hashes when it is analysed."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from data_catalog.databases.base import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from engine.analysis.custody import write_upload_names
from engine.analysis.paths import AnalysisError, looks_like_image, looks_like_video, sanitize_filename, sanitize_name

FRAMES_DIR = "frames"  # where an upload's images go: one frame folder, one video


@dataclass
class UploadResult:
    folder: Path
    saved: list[str]
    refused: list[str]


def save_uploads(workspace, set_name: str, files, max_upload_mb: float) -> UploadResult:
    """Write uploaded videos under `<workspace>/uploads/<set>-<time>/` with sanitised names, and uploaded
    images under its `frames/` folder (together one video).

    `files`: objects with `.name` and `.getvalue()` (Streamlit's UploadedFile) or (name, bytes) pairs.
    A file over `max_upload_mb`, or one that is neither a video (suffix and container signature) nor an
    image (suffix and image signature), is refused with its reason; if nothing is left, AnalysisError and
    nothing is written.
    """
    limit = float(max_upload_mb) * 1024 * 1024
    accepted, refused = [], []
    total = 0
    for f in files:
        name, data = (f if isinstance(f, tuple) else (f.name, f.getvalue()))
        size = len(data)
        if size > limit:
            refused.append(f"{name}: {size / 2**20:.1f} MB is over the {max_upload_mb} MB limit")
            continue
        image = looks_like_image(bytes(data[:16]), name)
        if not image and not looks_like_video(bytes(data[:16]), name):
            refused.append(f"{name}: neither a video ({', '.join(VIDEO_SUFFIXES)} with a video container) nor an "
                           f"image ({', '.join(IMAGE_SUFFIXES)})")
            continue
        total += size
        if total > limit:
            refused.append(f"{name}: the upload together is over the {max_upload_mb} MB limit")
            continue
        accepted.append((sanitize_filename(name), data, FRAMES_DIR if image else "", name))
    if not accepted:
        raise AnalysisError("no video to analyse in the upload" + (": " + "; ".join(refused) if refused else ""))
    stamp = f"{sanitize_name(set_name)}-{time.strftime('%Y%m%d-%H%M%S')}"
    folder = None
    try:
        workspace.uploads_dir.mkdir(parents=True, exist_ok=True)
        for i in range(1000):  # two uploads of one name in the same second (two sessions) get two folders
            folder = workspace.uploads_dir / (stamp if i == 0 else f"{stamp}-{i}")
            try:
                folder.mkdir(exist_ok=False)
                break
            except FileExistsError:
                continue
        saved, used, originals = [], set(), {}
        for name, data, sub, original in accepted:
            stem, suffix = os.path.splitext(name)
            candidate, i = name, 1
            while (sub, candidate) in used:
                candidate, i = f"{stem}_{i}{suffix}", i + 1
            used.add((sub, candidate))
            (folder / sub).mkdir(exist_ok=True)
            (folder / sub / candidate).write_bytes(bytes(data))
            saved.append(f"{sub}/{candidate}" if sub else candidate)
            originals[saved[-1]] = str(original)
        write_upload_names(folder, originals)
    except OSError as exc:  # read-only or full workspace: nothing half-written is left behind
        if folder is not None and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
        raise AnalysisError(f"cannot save the upload under {workspace.uploads_dir} ({exc.strerror or exc}); "
                            "is the workspace writable, with space left?") from None
    return UploadResult(folder, saved, refused)
