"""Tiny self-made videos with a real face (scikit-image's astronaut photo) for the face tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

FACE_CENTRE = (224, 130)  # the astronaut's face centre in the 512 x 512 photo
FACE_SIZE = 95            # BlazeFace's box side on the photo


def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


def place(canvas: np.ndarray, img: np.ndarray, face_px: int, cx: float, cy: float) -> np.ndarray:
    """Paste the photo scaled so the face is ~face_px wide, its face centred at (cx, cy)."""
    import cv2

    scale = face_px / FACE_SIZE
    a = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    H, W = canvas.shape[:2]
    x0, y0 = int(round(cx - FACE_CENTRE[0] * scale)), int(round(cy - FACE_CENTRE[1] * scale))
    ys, xs, ye, xe = max(0, y0), max(0, x0), min(H, y0 + a.shape[0]), min(W, x0 + a.shape[1])
    if ye > ys and xe > xs:
        canvas[ys:ye, xs:xe] = a[ys - y0:ye - y0, xs - x0:xe - x0]
    return canvas


def face_video(path: Path, size=(640, 360), n_frames=24, face_px=150, centre=(0.5, 0.45), fps=25.0,
               grey=False, faces: list[tuple[int, tuple]] | None = None, noface=False) -> Path:
    """An MJPG AVI with the astronaut's face moving a little from frame to frame.

    `faces` = [(face_px, (fx, fy)), ...] puts several faces in each frame.
    Returns the path; the face centre of frame i is (fx*W + 8 sin(i/3), fy*H).
    """
    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    W, H = size
    img = astronaut()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (W, H), isColor=not grey)
    assert writer.isOpened(), f"cannot write {path}"
    rng = np.random.default_rng(0)
    spec = faces if faces is not None else [(face_px, centre)]
    for i in range(n_frames):
        canvas = np.full((H, W, 3), 110, np.uint8)
        if noface:
            canvas = (rng.random((H, W, 3)) * 60 + np.linspace(40, 180, W)[None, :, None]).astype(np.uint8)
        else:
            for px, (fx, fy) in spec:
                place(canvas, img, px, fx * W + 8 * np.sin(i / 3), fy * H)
        bgr = cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR)
        writer.write(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) if grey else bgr)
    writer.release()
    return path


def video_rows(store, database: str, root: Path, paths: list[Path], true_class="real", split="test") -> pa.Table:
    """Record videos in the store's `videos` table as the catalog builds them (replacing rows of the
    same ids, keeping the others); returns the rows."""
    from data_catalog.records import VideoRecord
    from engine.store.catalog import videos_table

    rows = videos_table([VideoRecord(database, split, p, p.relative_to(root).as_posix(), true_class,
                                     true_class != "real") for p in paths])
    store.insert("videos", rows, replace=True)
    return rows


def rotated_video(path: Path, n_frames: int = 8) -> Path:
    """An MP4 stored landscape (640x360) with a 90-degree display matrix in its `tkhd` box,
    as phones write them: shown upright it is a 360x640 portrait with the face at (180, 300)."""
    import struct

    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (640, 360))
    portrait = place(np.full((640, 360, 3), 110, np.uint8), astronaut(), 150, 180, 300)
    stored = cv2.cvtColor(cv2.rotate(portrait, cv2.ROTATE_90_COUNTERCLOCKWISE), cv2.COLOR_RGB2BGR)
    for _ in range(n_frames):
        writer.write(stored)
    writer.release()
    data = bytearray(path.read_bytes())
    i = data.find(b"tkhd")
    assert i > 0 and data[i + 4] == 0, "expected a version-0 tkhd box"
    off = i + 4 + 4 + 20 + 8 + 8  # version/flags, times/track/duration, reserved, layer/group/volume/reserved
    data[off:off + 36] = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)
    path.write_bytes(bytes(data))
    return path


def crash_on_request(task, spec):
    """A stand-in per-video function whose worker process dies on videos named 'crash'."""
    import os

    from engine.faces import VideoResult

    if "crash" in task.video_id:
        os._exit(3)
    return VideoResult(task.video_id, "ok", "fake")
