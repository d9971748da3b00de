"""The SYNTHETIC benchmark: databases, splits, video jobs, files on disk.

Layout written by `generate(out_dir)`:

    OUT/demo.toml                      experiment config (roots relative to it)
    OUT/SYNTHETIC.txt                  what this is, seed, size, counts
    OUT/<db>/manifest.csv              path,label,class,split,identity,method
    OUT/<db>/face_boxes.csv            path,frame,x0,y0,x1,y1 (the drawn face)
    OUT/<db>/real/<id>_<n>.avi
    OUT/<db>/fake/<method>/<target>_<source>_<n>.avi

Videos are MJPG AVI (OpenCV's built-in writer, no FFmpeg needed), one JPEG
quality per video. Every video is a pure function of (seed, database,
video index), so generation can run in any number of processes and still be
byte-identical.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from ..errors import AtlasError
from ..records import REAL, UNSEEN_FAKE
from . import manipulations as mm
from . import render as rr

GENERATOR_VERSION = 2
FPS = 25
CONFIG_NAME = "demo.toml"


@dataclass(frozen=True)
class DatabaseSpec:
    name: str
    kind: str                 # "train" (has splits, in the taxonomy) or "cross" (unseen, tested whole)
    methods: tuple[str, ...]
    description: str
    quality: tuple[int, int] = (70, 95)   # JPEG quality range, drawn per video
    size_factor: float = 1.0               # frame size relative to the size preset
    # unseen sets only (training databases take the size preset's counts):
    reals_per_id: int = 1
    fakes_per_id: int = 2                  # methods taken in turn


DATABASES = (
    DatabaseSpec("synth-alpha", "train", ("poisson-swap", "lowres-resynth", "reenact-warp"),
                 "FaceForensics++-like: Poisson swap, low-res re-synthesis, mouth/eye reenactment warps"),
    DatabaseSpec("synth-beta", "train", ("upsample-texture", "pyramid-swap"),
                 "Celeb-DF/HifiFace-like: up-sampling texture artefacts, pyramid-blended sharpened swap"),
    DatabaseSpec("synth-gamma", "train", ("flicker-blend",),
                 "DeeperForensics-like: blend-mask flicker across frames"),
    DatabaseSpec("synth-variants", "cross", mm.VARIANT_METHODS,
                 "unseen: variants of poisson-swap and upsample-texture on new identities"),
    DatabaseSpec("synth-shift", "cross", mm.KNOWN_METHODS,
                 "unseen: all six known methods at lower resolution and stronger JPEG compression",
                 quality=(30, 50), size_factor=2 / 3),
    DatabaseSpec("synth-novel", "cross", mm.NOVEL_METHODS,
                 "unseen: a manipulation of another family (JPEG splice on a shifted block grid) on new identities"),
)


@dataclass(frozen=True)
class SizePreset:
    frame_size: int
    n_frames: int
    train_ids: tuple[int, int, int]   # identities per split (train, val, test) in each training database
    cross_ids: int                    # identities in each unseen set
    reals_per_id: int
    fakes_per_method: int


SIZES = {
    "small": SizePreset(frame_size=160, n_frames=8, train_ids=(4, 2, 2), cross_ids=4, reals_per_id=1, fakes_per_method=1),
    "default": SizePreset(frame_size=192, n_frames=16, train_ids=(48, 6, 8), cross_ids=16, reals_per_id=2, fakes_per_method=2),
    "large": SizePreset(frame_size=256, n_frames=32, train_ids=(60, 15, 20), cross_ids=40, reals_per_id=2, fakes_per_method=2),
}


@dataclass(frozen=True)
class VideoJob:
    seed: int
    db_index: int
    video_index: int
    database: str
    relpath: str
    split: str
    identity: int
    source: int            # source identity for swaps, -1 otherwise
    method: str            # "real" for real videos
    label: str
    true_class: str
    frame_size: int
    n_frames: int
    quality: int


@dataclass
class Summary:
    """What `generate` wrote."""

    out_dir: Path
    config: Path
    seed: int
    size: str
    databases: dict = field(default_factory=dict)   # name -> {"videos", "real", "fake", "splits": {..}, "classes": {..}}
    n_videos: int = 0
    n_frames: int = 0
    seconds: float = 0.0

    def lines(self) -> list[str]:
        out = []
        for name, d in self.databases.items():
            classes = ", ".join(f"{c} {n}" for c, n in d["classes"].items())
            splits = ", ".join(f"{s} {n}" for s, n in d["splits"].items())
            out.append(f"{name:15s} {d['videos']:4d} videos ({splits}; {classes})")
        return out


def _id_name(database: str, identity: int) -> str:
    return f"{database.removeprefix('synth-')[:1]}{identity:03d}"


def plan(seed: int = 0, size: str = "default") -> list[VideoJob]:
    """Every video to write, in a fixed order (the manifest order)."""
    if size not in SIZES:
        raise AtlasError(f"unknown size {size!r} (choose from {', '.join(SIZES)})")
    preset = SIZES[size]
    jobs: list[VideoJob] = []
    for db_index, db in enumerate(DATABASES):
        rng = np.random.default_rng(np.random.SeedSequence([seed, db_index, 7]))
        frame_size = int(round(preset.frame_size * db.size_factor / 16) * 16)
        if db.kind == "train":
            splits = [s for s, n in zip(("train", "val", "test"), preset.train_ids) for _ in range(n)]
            reals, fakes = preset.reals_per_id, preset.fakes_per_method
        else:
            splits = ["test"] * preset.cross_ids
            reals, fakes = db.reals_per_id, db.fakes_per_id
        by_split: dict[str, list[int]] = {}
        for i, s in enumerate(splits):
            by_split.setdefault(s, []).append(i)
        entries = []
        for i, split in enumerate(splits):
            name = _id_name(db.name, i)
            for r in range(reals):
                entries.append((split, i, -1, REAL, f"real/{name}_{r}.avi"))
            if db.kind == "train":
                methods = [m for m in db.methods for _ in range(fakes)]
            else:
                methods = [db.methods[(i * fakes + j) % len(db.methods)] for j in range(fakes)]
            for j, method in enumerate(methods):
                src = -1
                if method in mm.SWAPS:
                    pool = [x for x in by_split[split] if x != i]
                    src = int(pool[(int(rng.integers(len(pool))))])
                tag = f"{name}_{_id_name(db.name, src)}" if src >= 0 else name
                entries.append((split, i, src, method, f"fake/{method}/{tag}_{j}.avi"))
        for vi, (split, i, src, method, rel) in enumerate(entries):
            is_real = method == REAL
            if is_real:
                cls = REAL
            else:
                cls = method if db.kind == "train" else UNSEEN_FAKE
            q = int(rng.integers(db.quality[0], db.quality[1] + 1))
            jobs.append(VideoJob(seed, db_index, vi, db.name, rel, split,
                                 i, src, method, "real" if is_real else "fake", cls, frame_size, preset.n_frames, q))
    return jobs


@lru_cache(maxsize=64)
def _identity(seed: int, db_index: int, identity: int, frame_size: int) -> rr.Identity:
    rng = np.random.default_rng(np.random.SeedSequence([seed, db_index, 1_000_000 + identity]))
    return rr.draw_identity(rng, frame_size)


def render_job(job: VideoJob) -> tuple[list[np.ndarray], list[tuple[float, float, float, float]]]:
    """The frames (uint8 BGR, before compression) and drawn face boxes of one video."""
    S = job.frame_size
    rng = np.random.default_rng(np.random.SeedSequence([job.seed, job.db_index, 2_000_000 + job.video_index]))
    ident = _identity(job.seed, job.db_index, job.identity, S)
    motion = rr.draw_motion(rng, S, job.n_frames, ident.cx, ident.cy)
    bg = rr.draw_background(rng, S)
    method = job.method
    params = mm.draw_params(method, rng) if method != REAL else {}
    source = _identity(job.seed, job.db_index, job.source, S) if job.source >= 0 else None
    lower = None
    if method in ("upsample-texture", "upsample-texture-mouth"):
        yy = np.arange(S, dtype=np.float32)[:, None]
        lower = ident.mouth_mask if method.endswith("mouth") else ident.inner_mask * (yy > ident.eye_y + ident.eye_ry * 1.8)
    frames, boxes = [], []
    for k in range(job.n_frames):
        M = motion.matrices[k]
        f, _ = rr.compose(ident, motion, k, bg)
        frame = rr.finish(f, rng, motion.noise)
        if method != REAL:
            mask = rr.warp(ident.inner_mask, M, S)
            if source is not None:
                sf, _ = rr.compose(source, motion, k, bg)
                src = rr.finish(sf, rng, motion.noise)
                mask = mask * rr.warp(source.inner_mask, M, S)
            if method == "poisson-swap":
                frame = mm.poisson_swap(frame, src, mask, params, rng)
            elif method == "poisson-swap-wide":
                frame = mm.poisson_swap(frame, src, mask, params, rng, wide=True)
            elif method == "lowres-resynth":
                frame = mm.lowres_resynth(frame, src, mask, params, rng)
            elif method == "pyramid-swap":
                frame = mm.pyramid_swap(frame, src, mask, params, rng)
            elif method == "flicker-blend":
                frame = mm.flicker_blend(frame, src, mask, params, rng)
            elif method == "reenact-warp":
                pts = np.array([[ident.cx, ident.mouth_y], [ident.cx - ident.eye_dx, ident.eye_y],
                                [ident.cx + ident.eye_dx, ident.eye_y]], np.float32) @ M[:, :2].T + M[:, 2]
                scale = ident.a * float(np.sqrt(abs(np.linalg.det(M[:, :2]))))
                frame = mm.reenact_warp(frame, mask, params, rng, k, job.n_frames, tuple(pts[0]), [tuple(p) for p in pts[1:]], scale)
            elif method == "recompress-splice":
                frame = mm.recompress_splice(frame, mask, params, rng)
            elif method.startswith("upsample-texture"):
                frame = mm.upsample_texture(frame, mask, params, rng, region=rr.warp(lower, M, S),
                                            mouth_only=method.endswith("mouth"))
            else:  # pragma: no cover - plan() only emits known methods
                raise ValueError(method)
        frames.append(frame)
        boxes.append(rr.face_box(ident, M))
    return frames, boxes


def write_avi(path: Path, frames: list[np.ndarray], quality: int) -> None:
    """MJPG AVI through OpenCV's own MJPEG writer (deterministic, no FFmpeg)."""
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.CAP_OPENCV_MJPEG, cv2.VideoWriter_fourcc(*"MJPG"), FPS, (w, h))
    if not writer.isOpened():
        raise AtlasError(f"{path}: cannot open an MJPG video writer there")
    writer.set(cv2.VIDEOWRITER_PROP_QUALITY, quality)
    for f in frames:
        writer.write(f)
    writer.release()


def _run_job(args: tuple[str, VideoJob]) -> list[tuple[float, float, float, float]]:
    out_dir, job = args
    cv2.setNumThreads(1)
    frames, boxes = render_job(job)
    path = Path(out_dir) / job.database / job.relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    write_avi(path, frames, job.quality)
    return boxes


def config_template() -> str:
    """The canonical demo experiment config (roots relative to the config file)."""
    return resources.files("data_catalog.synthetic").joinpath(CONFIG_NAME).read_text(encoding="utf-8")


def config_text(prefix: str = "") -> str:
    """The demo config with every database root (and the dashboard's allowed
    root) under `prefix`: "" for OUT/demo.toml, "../dfatlas-workspace/demo-data"
    for configs/demo.toml (a test keeps the two in step)."""
    text = config_template()
    if not prefix:
        return text
    prefix = prefix.rstrip("/")
    text = text.replace('= "synth-', f'= "{prefix}/synth-')
    return text.replace('allowed_roots = ["."]', f'allowed_roots = ["{prefix}"]')


def check_out_dir(out_dir: Path, force: bool) -> None:
    """Refuse a non-empty folder unless `force`; a clear error if it cannot be written."""
    if out_dir.exists() and not out_dir.is_dir():
        raise AtlasError(f"{out_dir}: exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise AtlasError(f"{out_dir}: folder exists and is not empty; choose an empty folder or pass --force to overwrite "
                         f"the benchmark files in it")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".dfatlas-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise AtlasError(f"{out_dir}: cannot write there ({exc.strerror or exc})") from None


def generate(out_dir: str | Path, seed: int = 0, size: str = "default",
             progress: Callable[[int, int], None] | None = None, workers: int | None = None,
             force: bool = True) -> Summary:
    """Write the SYNTHETIC benchmark to `out_dir`; returns what was written.

    `progress(done, total)` is called after each video. `workers`: processes
    (default: 1 for the small size, else up to 2). Existing benchmark folders
    in `out_dir` are replaced; other files are left alone (the CLI refuses a
    non-empty folder unless --force).
    """
    start = time.perf_counter()
    out = Path(out_dir).expanduser()
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise AtlasError(f"seed must be a non-negative integer, got {seed!r}")
    jobs = plan(seed, size)
    check_out_dir(out, force=force)
    for db in DATABASES:
        if (out / db.name).exists():
            shutil.rmtree(out / db.name)
    if workers is None:
        workers = 1 if size == "small" else max(1, min(2, os.cpu_count() or 1))
    total = len(jobs)
    results: list = []
    tasks = [(str(out), j) for j in jobs]
    if workers <= 1:
        for i, t in enumerate(tasks):
            results.append(_run_job(t))
            if progress:
                progress(i + 1, total)
    else:
        import multiprocessing as mp

        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            for i, r in enumerate(pool.map(_run_job, tasks, chunksize=4)):
                results.append(r)
                if progress:
                    progress(i + 1, total)
    summary = Summary(out, out / CONFIG_NAME, seed, size)
    for db in DATABASES:
        rows = [(j, b) for j, b in zip(jobs, results) if j.database == db.name]
        man = io.StringIO()
        w = csv.writer(man, lineterminator="\n")
        w.writerow(["path", "label", "class", "split", "identity", "method"])
        bx = io.StringIO()
        wb = csv.writer(bx, lineterminator="\n")
        wb.writerow(["path", "frame", "x0", "y0", "x1", "y1"])
        info = {"videos": len(rows), "real": 0, "fake": 0, "splits": {}, "classes": {}, "methods": {},
                "frame_size": rows[0][0].frame_size if rows else 0}
        for j, boxes in rows:
            w.writerow([j.relpath, j.label, j.true_class, j.split, _id_name(db.name, j.identity), j.method])
            for k, (x0, y0, x1, y1) in enumerate(boxes):
                wb.writerow([j.relpath, k, f"{x0:.1f}", f"{y0:.1f}", f"{x1:.1f}", f"{y1:.1f}"])
            info[j.label] += 1
            info["splits"][j.split] = info["splits"].get(j.split, 0) + 1
            info["classes"][j.true_class] = info["classes"].get(j.true_class, 0) + 1
            info["methods"][j.method] = info["methods"].get(j.method, 0) + 1
            summary.n_frames += j.n_frames
        (out / db.name).mkdir(parents=True, exist_ok=True)
        (out / db.name / "manifest.csv").write_text(man.getvalue(), encoding="utf-8")
        (out / db.name / "face_boxes.csv").write_text(bx.getvalue(), encoding="utf-8")
        summary.databases[db.name] = info
    summary.n_videos = total
    (out / CONFIG_NAME).write_text(config_text(), encoding="utf-8")
    (out / MARKER_NAME).write_text(_readme(summary), encoding="utf-8")
    summary.seconds = time.perf_counter() - start
    return summary


MARKER_NAME = "SYNTHETIC.txt"  # at the benchmark's root: says what the data is, to people and to `is_synthetic_path`
_MARKER_HEAD = "SYNTHETIC deepfake-attribution benchmark"


def is_synthetic_path(path: str | Path) -> bool:
    """True when `path` (a video, a folder or a manifest) lies inside a folder this generator wrote (its
    `MARKER_NAME` file in the folder or a parent): an analysed set is labelled synthetic only then, not
    because the run that analyses it was trained on synthetic data."""
    p = Path(path).absolute()
    for folder in ([p] if p.is_dir() else []) + list(p.parents):
        marker = folder / MARKER_NAME
        try:
            with open(marker, encoding="utf-8", errors="replace") as fh:
                if fh.read(len(_MARKER_HEAD)) == _MARKER_HEAD:
                    return True
        except OSError:
            continue
    return False


def _readme(s: Summary) -> str:
    lines = [
        _MARKER_HEAD + " (dfatlas demo-data).",
        "Every face here is procedurally drawn; no real person appears. Fakes are made by",
        "real image-forensics manipulations of these drawings (see data_catalog/synthetic).",
        "Figures measured on it say nothing about real deepfake detectors.",
        "",
        f"generator version {GENERATOR_VERSION}, seed {s.seed}, size {s.size}: {s.n_videos} videos, {s.n_frames} frames",
        "",
    ]
    for db, line in zip(DATABASES, s.lines()):
        lines.append(line)
        lines.append(f"{'':16s}{db.description}")
    lines += ["", f"Experiment config: {CONFIG_NAME} (roots relative to it)", ""]
    return "\n".join(lines)
