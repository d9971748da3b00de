"""Read a video given as still images: the frame source beside the decoder.

A frame folder, a DeepfakeBench video or one image given alone is a list of image files
(`data_catalog.records.VideoRecord.frames`). They are never handed to FFmpeg (which would expand a
pattern or a list): each file is read on its own by OpenCV's image decoder, from bytes this process read
through `engine.faces.decoder.checked_file` — one regular file, by its real path, inside the job's
allowed roots when it has them (docs/ARCHITECTURE.md "What the decoder opens").
"""

from __future__ import annotations

import os

import numpy as np

from data_catalog.names import text_to_path

from .decoder import VideoRefused, checked_file, inside_roots, to_rgb

# OpenCV refuses images above this many pixels (its default is 2^30, 3 GiB decoded): a frame is a video
# frame, and a decompression bomb must not take a worker's memory. OpenCV reads the variable once, at a
# process's first image decode: it is set when this package is imported, before any (measured: set later,
# it is ignored).
MAX_PIXELS = 1 << 26
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_PIXELS))


def _shown(path: str) -> str:
    return os.path.basename(os.fsencode(path).decode("utf-8", "backslashreplace"))


def check_frames(frames, roots=()) -> list[str]:
    """The frames' paths to open (from stored text, `data_catalog.names`); with `roots`, VideoRefused when
    any frame's real path (symlinks resolved) leaves them: the whole video is refused, as the decoder
    refuses a video file, whether or not that frame would be sampled."""
    paths = [text_to_path(f) for f in frames]
    if roots:
        for p in paths:
            real = os.path.realpath(p)
            if not inside_roots(real, roots):
                raise VideoRefused(f"refused: frame {_shown(p)}'s real path is outside the allowed roots")
    return paths


def read_image(path: str, roots=()) -> np.ndarray:
    """One frame as RGB uint8; VideoRefused with the one-line reason when it cannot be read."""
    import cv2

    try:
        with checked_file(path, roots) as checked:
            data = checked.read()
    except VideoRefused as exc:
        raise VideoRefused(f"frame {_shown(path)}: {exc}") from None
    except OSError as exc:
        raise VideoRefused(f"frame {_shown(path)}: cannot read it ({exc.strerror or exc})") from None
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:  # over the pixel limit (OpenCV raises rather than returning None)
        img = None
    if img is None:
        limit = os.environ.get("OPENCV_IO_MAX_IMAGE_PIXELS", MAX_PIXELS)
        raise VideoRefused(f"frame {_shown(path)}: not an image OpenCV can decode (damaged, wrong format or over "
                           f"{limit} pixels)")
    return to_rgb(img)
