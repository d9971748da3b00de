"""BlazeFace through MediaPipe's Tasks `FaceDetector`, with small-face fall-backs.

The short-range model expects selfie-distance faces; in a 1080p or portrait
frame a face can be too small for it (DESIGN.md "Offline and hardware
facts"). `FaceFinder.find` therefore runs, in order and only while nothing
is found:

1. the configured model on the whole frame;
2. the same model on overlapping square tiles along the frame's long axis
   (side = the short side), then on a finer grid of half-size tiles;
3. (tiling "auto") the full-range model on the whole frame, then its tiles.

Each detection records which model and tiling found it ("short_range/whole",
"short_range/tiles3", "full_range/tiles21", ...). Every detection of a fall-back
pass (2, 3), and a whole-frame one the model is unsure of, must be confirmed by
`engine.faces.confirm` (issue 16: title-card letters were taken for faces);
`FaceFinder.search` also returns the candidates it refused.

Detectors are created *inside* the process that uses them (one created in a
parent and used in forked children hangs), one thread each, and closed
explicitly (their destructor at interpreter exit prints a traceback).
MediaPipe's native logging goes straight to file descriptor 2; `quiet_native_stderr`
sends it elsewhere while a detector is alive.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from typing import Iterator

import numpy as np

CONFIRM_MODEL = "face_landmark"  # the model file (engine.faces.model_files.MODELS) that confirms fall-back faces


@dataclass(frozen=True)
class Detection:
    x: float  # box in frame pixels
    y: float
    w: float
    h: float
    score: float
    detector: str
    keypoints: tuple = ()  # BlazeFace's six (x, y) in frame pixels: eyes, nose tip, mouth, ear tragions

    @property
    def area(self) -> float:
        return self.w * self.h


@dataclass(frozen=True)
class FaceSearch:
    """What `FaceFinder.search` found in one frame: the face kept (or None) and the fall-back
    candidates the confirmation check refused."""

    face: Detection | None
    refused: list


@contextlib.contextmanager
def quiet_native_stderr(target: str | None = None) -> Iterator[None]:
    """Point fd 2 at `target` (default /dev/null) for the block: silences C++ logging.

    Python's own `sys.stderr` object keeps writing to fd 2 too, so only use this
    around native calls in worker processes, never around the CLI's progress bar.
    """
    try:
        sys.stderr.flush()
    except Exception:
        pass
    try:
        fd = os.open(target or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError:  # e.g. a Ray worker on another machine without the workspace
        fd = os.open(os.devnull, os.O_WRONLY)
    saved = os.dup(2)
    try:
        os.dup2(fd, 2)
        yield
    finally:
        try:
            sys.stderr.flush()
        except Exception:
            pass
        os.dup2(saved, 2)
        os.close(saved)
        os.close(fd)


def _create(model_path: str, min_confidence: float):
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core.base_options import BaseOptions

    options = vision.FaceDetectorOptions(
        base_options=BaseOptions(model_asset_path=model_path, delegate=BaseOptions.Delegate.CPU),
        min_detection_confidence=min_confidence,
    )
    return vision.FaceDetector.create_from_options(options)


def tiles(height: int, width: int) -> list[list[tuple[int, int, int]]]:
    """Tile levels for a frame: lists of (y, x, side) squares.

    Level 1: squares of the short side, overlapping, along the long axis
    (3 for 16:9 and 9:16); level 2: half-size squares with 50 % overlap.
    Frames close to square get only level 2.
    """
    levels = []
    short, long_ = min(height, width), max(height, width)
    for side, min_overlap in ((short, 0.25), (short // 2, 0.5)):
        if side < 64:
            continue
        step = int(side * (1 - min_overlap))

        def starts(extent: int) -> list[int]:
            if extent <= side:
                return [0]
            n = int(np.ceil((extent - side) / step)) + 1
            return [int(round(v)) for v in np.linspace(0, extent - side, n)]

        level = [(y, x, side) for y in starts(height) for x in starts(width)]
        if side == short and long_ < short * 1.15:
            continue  # a near-square frame: the whole-frame pass already saw this
        levels.append(level)
    return levels


class FaceFinder:
    """The face detector(s) of one worker: `find(rgb) -> Detection | None`."""

    def __init__(self, model_paths: dict[str, str], detector: str = "short_range", tiling: str = "auto",
                 min_confidence: float = 0.5, confirm: str = "landmarks"):
        import cv2

        cv2.setNumThreads(1)
        self.primary = detector
        self.tiling = tiling
        self.min_confidence = min_confidence
        self._paths = dict(model_paths)
        self._detectors: dict[str, object] = {}
        self.closed = False
        self._get(detector)  # fail early if the model does not load
        # `confirm` "off": every detection is taken as it is (the detector before issue 16). Otherwise
        # unsure ones need the confirmation model; without it there are no fall-back passes (and
        # the whole-frame pass is taken as it is).
        self.confirm = None
        self.confirming = confirm != "off"
        if self.confirming and CONFIRM_MODEL in self._paths:
            from .confirm import FaceCheck

            self.confirm = FaceCheck(self._paths[CONFIRM_MODEL], lambda name, img: self._detect(name, img))

    def _get(self, name: str):
        det = self._detectors.get(name)
        if det is None:
            det = _create(self._paths[name], self.min_confidence)
            self._detectors[name] = det
        return det

    def plan(self) -> list[tuple[str, str]]:
        """(model, 'whole' | 'tiles') passes in order."""
        passes = [(self.primary, "whole")]
        if self.confirming and self.confirm is None:
            return passes  # fall-back detections could not be confirmed: none are looked for
        if self.tiling in ("auto", "always"):
            passes.append((self.primary, "tiles"))
        if self.tiling == "auto":
            other = "full_range" if self.primary == "short_range" else None
            if other and other in self._paths:
                passes += [(other, "whole"), (other, "tiles")]
        return passes

    def _detect(self, name: str, rgb: np.ndarray, oy: int = 0, ox: int = 0, label: str = "") -> list[Detection]:
        import mediapipe as mp

        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        result = self._get(name).detect(image)
        h, w = rgb.shape[:2]
        out = []
        for d in result.detections:
            b = d.bounding_box
            score = max((c.score for c in d.categories), default=0.0)
            points = tuple((float(ox + k.x * w), float(oy + k.y * h)) for k in (d.keypoints or ()))
            out.append(Detection(float(b.origin_x + ox), float(b.origin_y + oy), float(b.width), float(b.height),
                                 float(score), label, points))
        return out

    def passes(self, rgb: np.ndarray) -> Iterator[tuple[str, list[Detection]]]:
        """(label, detections) of each pass in plan order, one entry per tile level; lazy, so a caller
        that stops early runs no further detector."""
        h, w = rgb.shape[:2]
        for name, mode in self.plan():
            if mode == "whole":
                label = f"{name}/whole"
                yield label, [d for d in self._detect(name, rgb, label=label) if d.w > 1 and d.h > 1]
                continue
            for level in tiles(h, w):
                label = f"{name}/tiles{len(level)}"
                found: list[Detection] = []
                for (y, x, side) in level:
                    found += self._detect(name, rgb[y:y + side, x:x + side], y, x, label)
                yield label, [d for d in found if d.w > 1 and d.h > 1]

    def needs_confirmation(self, det: Detection) -> bool:
        """True for a detection of a fall-back pass (tiles, the other model), or a whole-frame one
        the configured model is unsure of (score below `engine.faces.confirm.CONFIRM_BELOW`)."""
        from .confirm import CONFIRM_BELOW

        return det.detector != f"{self.primary}/whole" or det.score < CONFIRM_BELOW

    def search(self, rgb: np.ndarray) -> FaceSearch:
        """The most confident face (ties: the largest) of the first pass that finds one, and the
        candidates the confirmation check refused on the way.

        A whole-frame detection of the configured model scoring >= CONFIRM_BELOW is taken as it is;
        every other candidate must pass `engine.faces.confirm.FaceCheck` (most confident first; a
        pass whose candidates are all refused lets the search go on). With confirm "off" every
        candidate is taken (the detector before issue 16). With tiling "always", every pass is
        searched and the best face over all of them wins.
        """
        accepted: list[Detection] = []
        refused: list[Detection] = []
        for _label, found in self.passes(rgb):
            for det in sorted(found, key=lambda d: (-round(d.score, 4), -d.area)):
                if self.confirm is None or not self.needs_confirmation(det) or self.confirm.accepts(rgb, det):
                    accepted.append(det)
                    break  # the most confident kept candidate is this pass's best
                refused.append(det)
            if accepted and self.tiling != "always":
                break
        best = max(accepted, key=lambda d: (round(d.score, 4), d.area)) if accepted else None
        return FaceSearch(best, refused)

    def find(self, rgb: np.ndarray) -> Detection | None:
        """The face `search` keeps, or None."""
        return self.search(rgb).face

    def close(self) -> None:
        for det in self._detectors.values():
            try:
                det.close()
            except Exception:
                pass
        self._detectors.clear()
        self.closed = True

    def __enter__(self) -> "FaceFinder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
