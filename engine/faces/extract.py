"""One video -> face crops: the per-video function every executor runs.

`process_video(task)` decodes N frames evenly spaced in time (opened and
sampled by `engine.faces.decoder`, the one home of "open a video safely"), finds the most confident face
in each, enlarges its box, squares it, pads where it leaves the frame,
resizes it and returns the encoded crops and thumbnails. It never raises
for a bad video: every outcome is a `VideoResult` with a status and a
human-readable reason. It writes nothing: the parent process writes crop
files and store rows, so one process writes and Ray workers on other
machines need no shared disk.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field

import numpy as np

from data_catalog.names import text_to_path

from . import decoder
from . import frames as frame_files
from .detector import Detection, FaceFinder, quiet_native_stderr

STATUSES = ("ok", "no_face", "unreadable", "too_short", "error")
CROP_INPUT = "input crop"  # the `detector` of a face taken from a frame that is already a face crop
FINAL_STATUSES = ("ok", "no_face", "unreadable", "too_short")  # re-runs skip these; "error" is retried
DETECTOR_LOAD_FAILED = "the face detector failed to load"
# Each status in words, for people (reports, the dashboard): never a raw {'ok': 4}.
STATUS_WORDS = {"ok": "with faces", "no_face": "no face found", "unreadable": "unreadable",
                "too_short": "too short", "error": "failed (will be retried)", None: "not extracted"}


def describe_statuses(counts: dict) -> str:
    """Videos per face-extraction status in words, most frequent first: '3 with faces, 1 no face found'."""
    items = sorted(((STATUS_WORDS.get(k, str(k)), int(n)) for k, n in counts.items() if n),
                   key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{n} {word}" for word, n in items) or "none"


class DetectorLoadError(RuntimeError):
    """The worker could not build its detectors: a setup problem, not a video problem."""


@dataclass(frozen=True)
class FinderSpec:
    """Everything a worker needs to build its detectors (picklable)."""

    model_paths: tuple  # ((name, path), ...)
    detector: str = "short_range"
    tiling: str = "auto"
    min_confidence: float = 0.5
    log_path: str = ""  # where MediaPipe's native stderr goes ("" = /dev/null)
    confirm: str = "landmarks"  # how unsure faces are confirmed (engine.faces.confirm); "off": not at all


@dataclass(frozen=True)
class VideoTask:
    video_id: str
    path: str  # as stored (data_catalog.names.path_to_text); _process opens text_to_path(path)
    frames_per_video: int = 15
    crop_size: int = 224
    box_scale: float = 1.3
    crop_format: str = "png"
    crop_quality: int = 95
    thumbnail_size: int = 64
    allowed_roots: tuple = ()  # when set, the decoder opens only files whose real path is inside one
    frames: tuple = ()         # a video given as still images: their stored paths, in order (engine.faces.frames)
    face_crops: bool = False   # those images are face crops to take as they are ([faces] pre_cropped = "use")


@dataclass
class FaceCrop:
    frame_index: int
    crop: bytes       # encoded image (crop_format)
    thumbnail: bytes  # JPEG, <= thumbnail_size px
    box: tuple        # x, y, w, h in frame pixels (the detector's box, before enlarging)
    score: float
    detector: str


@dataclass
class VideoResult:
    video_id: str
    status: str
    reason: str = ""
    n_frames: int | None = None
    n_sampled: int = 0
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    decode_s: float = 0.0
    detect_s: float = 0.0
    cpu_s: float = 0.0  # CPU time of the worker on this video (steadier than wall time on a busy machine)
    faces: list = field(default_factory=list)
    n_refused: int = 0  # candidate faces the confirmation check refused

    @property
    def n_faces(self) -> int:
        return len(self.faces)


# --- worker-process state -----------------------------------------------------
_FINDER: FaceFinder | None = None
_FINDER_SPEC: FinderSpec | None = None


def _finder(spec: FinderSpec) -> FaceFinder:
    """This process's detectors, created on first use (never inherited from a parent)."""
    global _FINDER, _FINDER_SPEC
    if _FINDER is not None and _FINDER_SPEC == spec and not _FINDER.closed:
        return _FINDER
    close_worker_finder()
    try:
        _FINDER = FaceFinder(dict(spec.model_paths), spec.detector, spec.tiling, spec.min_confidence, spec.confirm)
    except Exception as exc:
        raise DetectorLoadError(f"{DETECTOR_LOAD_FAILED}: {type(exc).__name__}: {exc}") from exc
    _FINDER_SPEC = spec
    return _FINDER


def close_worker_finder() -> None:
    global _FINDER, _FINDER_SPEC
    if _FINDER is not None:
        with quiet_native_stderr(_FINDER_SPEC.log_path or None if _FINDER_SPEC else None):
            _FINDER.close()
    _FINDER, _FINDER_SPEC = None, None


def init_worker(spec: FinderSpec | None = None) -> None:
    """Pool initializer: one thread per worker, detectors closed before the process exits."""
    import signal

    os.environ["OMP_NUM_THREADS"] = "1"
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: no traceback per worker
    import cv2
    from multiprocessing import util

    cv2.setNumThreads(1)
    util.Finalize(None, close_worker_finder, exitpriority=100)
    if spec is not None:
        try:
            with quiet_native_stderr(spec.log_path or None):
                _finder(spec)
        except DetectorLoadError:
            pass  # reported by process_video for each video, so the parent can stop the run


# --- geometry -------------------------------------------------------------------
def square_crop(rgb: np.ndarray, det: Detection, scale: float, size: int) -> np.ndarray:
    """The detection box enlarged by `scale` about its centre, squared, padded with black
    where it leaves the frame, resized to size x size."""
    import cv2

    h, w = rgb.shape[:2]
    cx, cy = det.x + det.w / 2, det.y + det.h / 2
    side = max(2, int(round(max(det.w, det.h) * scale)))
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    x1, y1 = x0 + side, y0 + side
    out = np.zeros((side, side, 3), dtype=np.uint8)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = rgb[sy0:sy1, sx0:sx1]
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(out, (size, size), interpolation=interp)


def _encode(rgb: np.ndarray, fmt: str, quality: int) -> bytes:
    import cv2

    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if fmt == "jpg":
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    else:
        ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise RuntimeError(f"could not encode a {fmt} crop")
    return buf.tobytes()


def _thumbnail(rgb: np.ndarray, size: int) -> bytes:
    import cv2

    size = max(8, min(int(size), 64))
    small = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return buf.tobytes()


def process_video(task: VideoTask, spec: FinderSpec) -> VideoResult:
    """The per-video function (process pool and Ray run this one)."""
    cpu0 = time.process_time()
    try:
        with quiet_native_stderr(spec.log_path or None):
            res = _process(task, spec)
        res.cpu_s = time.process_time() - cpu0
        return res
    except DetectorLoadError as exc:
        return VideoResult(task.video_id, "error", str(exc)[:500])
    except Exception as exc:  # a bug or a library failure on one file: recorded, the run goes on
        return VideoResult(task.video_id, "error", f"{type(exc).__name__}: {exc}"[:500])


def _face_crop(index: int, rgb: np.ndarray, det: Detection, task: VideoTask) -> FaceCrop:
    crop = square_crop(rgb, det, task.box_scale, task.crop_size)
    return FaceCrop(index, _encode(crop, task.crop_format, task.crop_quality), _thumbnail(crop, task.thumbnail_size),
                    (det.x, det.y, det.w, det.h), det.score, det.detector)


def _process_images(task: VideoTask, spec: FinderSpec) -> VideoResult:
    """A video given as still images: N of them evenly in their order (`sample_indices`), each read on its
    own (`engine.faces.frames`); a face crop is taken whole (squared, resized), other frames go to the
    detector like a video's. A frame that cannot be read is noted in the reason; none readable: unreadable."""
    res = VideoResult(task.video_id, "unreadable")
    t0 = time.perf_counter()
    try:
        paths = frame_files.check_frames(task.frames, task.allowed_roots)
    except decoder.VideoRefused as exc:
        res.reason = str(exc)
        return res
    res.n_frames = len(paths)
    finder = None if task.face_crops else _finder(spec)
    # a face crop is taken whole: squared about its centre (black padding), not enlarged
    crop_task = dataclasses.replace(task, box_scale=1.0) if task.face_crops else task
    decode_s, detect_s, failed = time.perf_counter() - t0, 0.0, []
    for index in decoder.sample_indices(len(paths), task.frames_per_video):
        t0 = time.perf_counter()
        try:
            rgb = frame_files.read_image(paths[index], task.allowed_roots)
        except decoder.VideoRefused as exc:
            failed.append(str(exc))
            continue
        finally:
            decode_s += time.perf_counter() - t0
        res.n_sampled += 1
        res.height, res.width = rgb.shape[:2]
        t0 = time.perf_counter()
        det = (Detection(0.0, 0.0, float(rgb.shape[1]), float(rgb.shape[0]), 1.0, CROP_INPUT) if task.face_crops
               else finder.find(rgb))
        if det is not None:
            res.faces.append(_face_crop(index, rgb, det, crop_task))
        detect_s += time.perf_counter() - t0
    res.decode_s, res.detect_s = decode_s, detect_s
    notes = []
    if failed:
        notes.append(f"{len(failed)} of {len(failed) + res.n_sampled} sampled frames unreadable ({failed[0]})")
    if 0 < len(paths) < task.frames_per_video:
        notes.append(f"only {len(paths)} frames (< {task.frames_per_video}): used all of them")
    if res.n_sampled == 0:
        res.reason = "; ".join(notes) or "no frame"
        return res
    if res.faces:
        res.status = "ok"
        if len(res.faces) < res.n_sampled:
            notes.append(f"face found in {len(res.faces)} of {res.n_sampled} sampled frames")
    else:
        res.status = "no_face"
        notes.insert(0, f"no face found in {res.n_sampled} sampled frames")
    res.reason = "; ".join(notes)
    return res


def _process(task: VideoTask, spec: FinderSpec) -> VideoResult:
    if task.frames:
        return _process_images(task, spec)
    path = text_to_path(task.path)  # the stored text (data_catalog.names) -> the file's exact name
    res = VideoResult(task.video_id, "unreadable")
    try:
        checked = decoder.checked_file(path, task.allowed_roots)
    except decoder.VideoRefused as exc:
        res.reason = str(exc)
        return res
    with checked:  # every open below reads the file that was checked (decoder.CheckedFile)
        return _process_video(task, spec, checked.path, res)


def _process_video(task: VideoTask, spec: FinderSpec, real: str, res: VideoResult) -> VideoResult:
    """Decode, detect and crop one checked video file (`real`: the path that opens it)."""
    import cv2

    t0 = time.perf_counter()
    cap = decoder.open_capture(real)
    opened = cap.isOpened()
    timestamps = None
    if opened:
        reported = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        res.width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0) or None
        res.height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0) or None
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0)
        res.fps = fps if fps > 0 and np.isfinite(fps) else None
        timestamps = decoder.frame_timestamps(cap)
    cap.release()
    if not opened:
        res.reason = decoder.open_failure_reason(real)
        return res
    by_time = not decoder.constant_rate(timestamps, res.fps)  # variable frame rate: sample by time
    if by_time:
        n_frames = len(timestamps)
    else:
        n_frames = reported if reported > 0 else decoder.count_frames(real)
    res.n_frames = n_frames
    timer = {"decode": time.perf_counter() - t0, "detect": 0.0, "decoded_to": None}
    if n_frames <= 0:
        res.status, res.reason = "too_short", "the video has no frames"
        res.decode_s = timer["decode"]
        return res

    finder = _finder(spec)
    notes = []

    refusals = {"candidates": 0, "frames": 0}

    def run(n: int) -> tuple[int, list]:
        faces, sampled = [], 0
        refusals.update(candidates=0, frames=0)
        targets = (decoder.sample_by_time(timestamps[:n], task.frames_per_video) if by_time
                   else decoder.sample_indices(n, task.frames_per_video))
        for index, rgb in decoder.sampled_frames(real, targets, timer):
            sampled += 1
            res.height, res.width = rgb.shape[:2]  # as displayed (after rotation metadata), not as stored
            t1 = time.perf_counter()
            found = finder.search(rgb)
            det = found.face
            if found.refused:
                refusals["candidates"] += len(found.refused)
                refusals["frames"] += 1
            if det is not None:
                faces.append(_face_crop(index, rgb, det, task))
            timer["detect"] += time.perf_counter() - t1
        return sampled, faces

    sampled, faces = run(n_frames)
    stopped = timer["decoded_to"]
    if stopped is not None:
        # Truncated, or the container over-reports its frames: sample again over the frames that decode.
        notes.append(f"stream ended at frame {stopped} of {n_frames} reported")
        wanted = min(task.frames_per_video, stopped)
        if stopped > 0 and sampled < wanted:
            timer["decoded_to"] = None
            sampled, faces = run(stopped)
        res.n_frames = stopped
    res.n_sampled = sampled
    res.faces = faces
    res.decode_s, res.detect_s = timer["decode"], timer["detect"]
    if sampled == 0:
        res.status = "unreadable"
        res.reason = "; ".join(notes + ["no frame could be decoded"])
        return res
    if 0 < (res.n_frames or 0) < task.frames_per_video:
        notes.append(f"only {res.n_frames} frames (< {task.frames_per_video}): used all of them")
    res.n_refused = refusals["candidates"]
    refused = refusal_note(refusals["candidates"], refusals["frames"])
    if not faces:
        res.status = "no_face"
        notes.insert(0, f"{refused}, no face confirmed in {sampled} sampled frames" if refused
                     else f"no face found in {sampled} sampled frames")
    else:
        res.status = "ok"
        if len(faces) < sampled:
            notes.append(f"face found in {len(faces)} of {sampled} sampled frames")
        if refused:
            notes.append(refused)
    res.reason = "; ".join(notes)
    return res


def refusal_note(candidates: int, frames: int) -> str:
    """'3 candidate faces in 2 frames refused by the confirmation check', or '' when none were."""
    if not candidates:
        return ""
    return (f"{candidates} candidate face{'s' if candidates != 1 else ''} in {frames} frame{'s' if frames != 1 else ''} "
            "refused by the confirmation check")
