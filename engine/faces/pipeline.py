"""Face extraction over many videos: executors, resume, and the store writes.

`extract_faces` runs `process_video` over videos already recorded in the
`videos` table, in a local process pool (default), in this process
(`executor="inline"`, for debugging) or on Ray (`executor="ray"`). Workers
return encoded crops; this (parent) process writes the crop files (temp file
+ atomic rename) and then, in one transaction per batch of videos, each
video's `faces` rows together with its `face_videos` status row. A kill -9
therefore leaves either a whole video or none of it; crop files written for
an unfinished batch are simply overwritten by the re-run, which skips every
video that has a status row for the same settings key.

The caller holds the workspace lock (`with ws.lock("faces"): ...`) — this
module does not take it, so a larger job (the demo, an analysis) can call it
while holding its own.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import pyarrow as pa

from data_catalog.errors import AtlasError

from .extract import DETECTOR_LOAD_FAILED, FINAL_STATUSES, STATUSES, FinderSpec, VideoResult, VideoTask, init_worker, process_video
from .models import ModelFile, ModelUnavailable, models_for, resolve_models

EXECUTORS = ("process", "ray", "inline")


@dataclass
class FaceSummary:
    settings_key: str
    requested: int = 0            # videos asked for
    skipped: int = 0              # already done with this settings key
    processed: int = 0            # done in this call
    counts: dict = field(default_factory=lambda: {s: 0 for s in STATUSES})  # this call's statuses
    faces: int = 0                # face crops written in this call
    frames: int = 0               # frames sampled in this call
    seconds: float = 0.0
    decode_s: float = 0.0         # summed over workers
    detect_s: float = 0.0
    cpu_s: float = 0.0            # worker CPU time, summed
    startup_s: float = 0.0        # until the first result, less its own worker time (pool start, imports, detectors)
    workers: int = 1
    executor: str = "process"
    models: dict = field(default_factory=dict)  # name -> ModelFile.to_dict()

    @property
    def videos_per_s(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0

    @property
    def faces_per_s(self) -> float:
        return self.faces / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.update(videos_per_s=self.videos_per_s, faces_per_s=self.faces_per_s)
        return d


def resolve_face_models(faces) -> dict[str, ModelFile]:
    """The configured detector's model (required; the config's path applies to it) and the
    full-range fall-back for small faces (optional: skipped with a warning if unavailable)."""
    models = resolve_models([faces.detector], faces.blazeface_model or None)
    for name in models_for(faces.detector, faces.tiling):
        if name not in models:
            try:
                models.update(resolve_models([name]))
            except ModelUnavailable as exc:
                print(f"warning: small-face fall-back model unavailable, continuing without it ({exc})",
                      file=sys.stderr)
    return models


# --- settings ---------------------------------------------------------------------
def settings_params(faces) -> dict:
    """The [faces] settings that change the crops (what the settings key hashes)."""
    return {k: v for k, v in dataclasses.asdict(faces).items() if k not in ("workers", "blazeface_model")}


def record_settings(store, faces, models: dict[str, ModelFile] | None = None, con=None) -> str:
    key = faces.settings_key()
    params = settings_params(faces)
    if models:
        params["models"] = {n: {"sha256": m.sha256, "source": m.source} for n, m in models.items()}
    table = pa.table({"settings_key": [key], "params_json": [json.dumps(params, sort_keys=True)]})
    # Keep the first record of a key (its models); later runs only add missing keys.
    def write(c):
        exists = c.execute("SELECT count(*) FROM face_settings WHERE settings_key = ?", [key]).fetchall()[0][0]
        if not exists:
            store.insert("face_settings", table, con=c)
    if con is not None:
        write(con)
    else:
        with store.transaction() as c:
            write(c)
    return key


# --- inputs ---------------------------------------------------------------------------
def _video_table(videos) -> pa.Table:
    """video_id + path (+ true_class when known) from records, rows, a DataFrame or Arrow."""
    if isinstance(videos, pa.Table):
        t = videos
    elif hasattr(videos, "to_dict") and hasattr(videos, "columns"):  # pandas
        t = pa.Table.from_pandas(videos, preserve_index=False)
    else:
        rows = list(videos)
        if rows and hasattr(rows[0], "video_id") and not isinstance(rows[0], dict):
            t = pa.table({"video_id": [r.video_id for r in rows], "path": [str(r.path) for r in rows],
                          "true_class": [r.true_class for r in rows]})
        else:
            t = pa.table({
                "video_id": [r["video_id"] for r in rows],
                "path": [str(r["path"]) for r in rows],
                "true_class": [r.get("true_class") for r in rows],
            }) if rows else pa.table({"video_id": pa.array([], pa.string()), "path": pa.array([], pa.string())})
    missing = {"video_id", "path"} - set(t.column_names)
    if missing:
        raise AtlasError(f"videos to extract faces from need columns video_id and path (missing: {', '.join(sorted(missing))})")
    return t


def _done_ids(store, key: str) -> set[str]:
    """Videos finished with this settings key; those that ended in "error" are tried again."""
    final = ", ".join(f"'{s}'" for s in FINAL_STATUSES)
    col = store.arrow(f"SELECT video_id FROM face_videos WHERE settings_key = ? AND status IN ({final})",
                      [key]).column("video_id")
    return set(col.to_pylist())


# --- crop files -----------------------------------------------------------------------
def _safe_parts(video_id: str) -> list[str]:
    parts = [p for p in video_id.replace("\\", "/").split("/") if p not in ("", ".")]
    return ["__" if p == ".." else p for p in parts]


def crop_relpath(workspace, key: str, video_id: str, frame: int, fmt: str) -> str:
    """Where a crop lives, relative to the workspace root (POSIX separators)."""
    faces_rel = os.path.relpath(workspace.faces_dir, workspace.root).replace(os.sep, "/")
    return "/".join([faces_rel, key, *_safe_parts(video_id), f"{frame:06d}.{fmt}"])


def _write_atomic(path: Path, data: bytes) -> None:
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


def _write_batch(store, workspace, key: str, fmt: str, results: list[VideoResult]) -> None:
    """Crop files first, then one transaction with every face row and status row of the batch."""
    face_cols: dict[str, list] = {c: [] for c in ("face_id", "video_id", "settings_key", "frame_index", "crop_path",
                                                   "thumbnail", "box_x", "box_y", "box_w", "box_h", "score", "detector")}
    for r in results:
        for f in r.faces:
            rel = crop_relpath(workspace, key, r.video_id, f.frame_index, fmt)
            _write_atomic(workspace.root / rel, f.crop)
            face_cols["face_id"].append(f"{r.video_id}#{f.frame_index}@{key}")
            face_cols["video_id"].append(r.video_id)
            face_cols["settings_key"].append(key)
            face_cols["frame_index"].append(int(f.frame_index))
            face_cols["crop_path"].append(rel)
            face_cols["thumbnail"].append(f.thumbnail)
            for name, v in zip(("box_x", "box_y", "box_w", "box_h"), f.box):
                face_cols[name].append(float(v))
            face_cols["score"].append(float(f.score))
            face_cols["detector"].append(f.detector)
    faces = pa.table({
        **{k: v for k, v in face_cols.items() if k != "thumbnail" and k != "frame_index"},
        "frame_index": pa.array(face_cols["frame_index"], pa.int32()),
        "thumbnail": pa.array(face_cols["thumbnail"], pa.binary()),
    })
    status = pa.table({
        "video_id": [r.video_id for r in results],
        "settings_key": [key] * len(results),
        "status": [r.status for r in results],
        "reason": [r.reason or None for r in results],
        "n_frames": pa.array([r.n_frames for r in results], pa.int32()),
        "n_sampled": pa.array([r.n_sampled for r in results], pa.int32()),
        "n_faces": pa.array([r.n_faces for r in results], pa.int32()),
        "width": pa.array([r.width for r in results], pa.int32()),
        "height": pa.array([r.height for r in results], pa.int32()),
        "fps": pa.array([r.fps for r in results], pa.float64()),
        "decode_s": pa.array([r.decode_s for r in results], pa.float64()),
        "detect_s": pa.array([r.detect_s for r in results], pa.float64()),
    })
    ids = pa.table({"video_id": status.column("video_id")})
    with store.transaction() as con:
        con.register("_batch_ids", ids)
        try:
            # A video is written whole: clear any rows a forced re-run left behind.
            con.execute("DELETE FROM faces WHERE settings_key = ? AND video_id IN (SELECT video_id FROM _batch_ids)", [key])
            con.execute("DELETE FROM face_videos WHERE settings_key = ? AND video_id IN (SELECT video_id FROM _batch_ids)", [key])
        finally:
            con.unregister("_batch_ids")
        store.insert("faces", faces, con=con)
        store.insert("face_videos", status, con=con)


# --- executors ----------------------------------------------------------------------------
def _run_inline(tasks: list[VideoTask], spec: FinderSpec, workers: int) -> Iterator[VideoResult]:
    from .extract import close_worker_finder

    try:
        for t in tasks:
            yield process_video(t, spec)
    finally:
        close_worker_finder()


def _run_pool(tasks: list[VideoTask], spec: FinderSpec, workers: int,
              fn: Callable[[VideoTask, FinderSpec], VideoResult] = process_video) -> Iterator[VideoResult]:
    """A spawn-context process pool (detectors are never inherited by fork), a bounded
    number of tasks in flight; a worker that dies takes only its video with it."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    pending = list(reversed(tasks))
    suspects: list[VideoTask] = []
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=init_worker,
                             initargs=(spec,)) as pool:
        inflight: dict = {}
        broken = False
        while (pending or inflight) and not broken:
            while pending and len(inflight) < 2 * workers:
                t = pending.pop()
                inflight[pool.submit(fn, t, spec)] = t
            done, _ = wait(inflight, return_when=FIRST_COMPLETED)
            for fut in done:
                t = inflight.pop(fut)
                try:
                    yield fut.result()
                except BrokenProcessPool:
                    broken = True
                    suspects.append(t)
        if broken:
            suspects += list(inflight.values())
            pending_left = list(reversed(pending))
    if broken:
        # Retry each suspect alone so the crash is pinned on the video that caused it.
        for t in suspects:
            yield _run_isolated(t, spec, ctx, fn)
        yield from _run_pool(pending_left, spec, workers, fn) if pending_left else iter(())


def _run_isolated(task: VideoTask, spec: FinderSpec, ctx, fn=process_video) -> VideoResult:
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx, initializer=init_worker, initargs=(spec,)) as pool:
        try:
            return pool.submit(fn, task, spec).result()
        except BrokenProcessPool:
            return VideoResult(task.video_id, "error", "the worker process crashed while decoding this video")


def _ray_process(task: VideoTask, spec: FinderSpec) -> VideoResult:
    import atexit

    from . import extract

    if not getattr(extract, "_RAY_READY", False):
        os.environ["OMP_NUM_THREADS"] = "1"
        import cv2

        cv2.setNumThreads(1)
        atexit.register(extract.close_worker_finder)
        extract._RAY_READY = True
    return process_video(task, spec)


def _run_ray(tasks: list[VideoTask], spec: FinderSpec, workers: int) -> Iterator[VideoResult]:
    try:
        import ray
    except ImportError:
        raise AtlasError("--executor ray needs Ray: pip install 'dfatlas[cluster]'") from None
    started = False
    if not ray.is_initialized():
        import logging

        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
        if not os.environ.get("RAY_ADDRESS"):
            kwargs["num_cpus"] = workers
        with _quiet_python_stderr():
            ray.init(**kwargs)
        started = True
    try:
        remote = ray.remote(num_cpus=1, max_retries=1)(_ray_process)
        spec_ref = ray.put(spec)
        pending = list(reversed(tasks))
        inflight: dict = {}
        limit = 2 * max(workers, int(ray.available_resources().get("CPU", workers) or workers))
        while pending or inflight:
            while pending and len(inflight) < limit:
                t = pending.pop()
                inflight[remote.remote(t, spec_ref)] = t
            done, _ = ray.wait(list(inflight), num_returns=1)
            for ref in done:
                t = inflight.pop(ref)
                try:
                    yield ray.get(ref)
                except Exception as exc:  # a worker died or the task failed twice
                    yield VideoResult(t.video_id, "error", f"ray task failed: {type(exc).__name__}: {exc}"[:500])
    finally:
        if started:
            ray.shutdown()


class _quiet_python_stderr:
    def __enter__(self):
        self._saved = sys.stderr
        sys.stderr = open(os.devnull, "w")

    def __exit__(self, *exc):
        sys.stderr.close()
        sys.stderr = self._saved


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# --- the public entry -------------------------------------------------------------------
def extract_faces(workspace, videos, faces, *, workers: int | None = None, executor: str = "process",
                  progress: bool = True, batch_videos: int = 16, batch_seconds: float = 5.0,
                  models: dict[str, ModelFile] | None = None, limit: int | None = None,
                  on_progress: Callable[[int, int], None] | None = None) -> FaceSummary:
    """Face crops for `videos` (VideoRecords, `videos`-table rows as dicts, a DataFrame or an
    Arrow table with video_id and path) with the `[faces]` settings `faces`.

    Skips videos already done with the same settings key; returns a FaceSummary of this call.
    `on_progress(done, total)` is called after every video (the dashboard's jobs use it).
    """
    if executor not in EXECUTORS:
        raise AtlasError(f"unknown executor {executor!r} (choose from {', '.join(EXECUTORS)})")
    workspace.ensure()
    store = workspace.store()
    table = _video_table(videos)
    key = faces.settings_key()
    if models is None:
        models = resolve_face_models(faces)
    record_settings(store, faces, models)
    done = _done_ids(store, key)
    ids = table.column("video_id").to_pylist()
    paths = table.column("path").to_pylist()
    seen: set[str] = set()
    todo: list[VideoTask] = []
    for vid, path in zip(ids, paths):
        if vid in done or vid in seen:
            continue
        seen.add(vid)
        todo.append(VideoTask(vid, str(path), faces.frames_per_video, faces.crop_size, faces.box_scale,
                              faces.crop_format, faces.crop_quality, faces.thumbnail_size))
    if limit is not None:
        todo = todo[:limit]
    n_workers = workers if workers and workers > 0 else (faces.workers or _cores())
    n_workers = max(1, min(n_workers, len(todo) or 1))
    log_dir = workspace.root / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    spec = FinderSpec(tuple(sorted((n, m.path) for n, m in models.items())), faces.detector, faces.tiling,
                      faces.min_confidence, str(log_dir / "mediapipe.log"))
    summary = FaceSummary(key, requested=len(set(ids)), skipped=len(set(ids) & done), workers=n_workers,
                          executor=executor, models={n: m.to_dict() for n, m in models.items()})
    if not todo:
        return summary
    runner = {"process": _run_pool, "ray": _run_ray, "inline": _run_inline}[executor]
    bar = None
    if progress:
        from engine.progress import progress as make_bar

        bar = make_bar(total=len(todo), desc=f"faces {key}", unit="video")
    start = time.perf_counter()
    batch: list[VideoResult] = []
    last_write = time.monotonic()
    try:
        for res in runner(todo, spec, n_workers):
            if res.status == "error" and res.reason.startswith(DETECTOR_LOAD_FAILED):
                raise AtlasError(f"{res.reason} (models: "
                                 + ", ".join(f"{n}={m.path}" for n, m in models.items()) + ")")
            batch.append(res)
            if summary.processed == 0:
                summary.startup_s = max(0.0, time.perf_counter() - start - res.decode_s - res.detect_s)
            summary.processed += 1
            summary.counts[res.status] = summary.counts.get(res.status, 0) + 1
            summary.faces += res.n_faces
            summary.frames += res.n_sampled
            summary.decode_s += res.decode_s
            summary.detect_s += res.detect_s
            summary.cpu_s += res.cpu_s
            if bar is not None:
                bar.update(1)
                bar.set_postfix(ok=summary.counts["ok"], no_face=summary.counts["no_face"],
                                bad=summary.processed - summary.counts["ok"] - summary.counts["no_face"], refresh=False)
            if on_progress:
                on_progress(summary.processed, len(todo))
            if len(batch) >= batch_videos or time.monotonic() - last_write > batch_seconds:
                _write_batch(store, workspace, key, faces.crop_format, batch)
                batch, last_write = [], time.monotonic()
        if batch:
            _write_batch(store, workspace, key, faces.crop_format, batch)
    finally:
        if bar is not None:
            bar.close()
        summary.seconds = time.perf_counter() - start
    return summary


# --- reading back ---------------------------------------------------------------------------
def status_by_class(store, settings_key: str, video_ids: Iterable[str] | None = None):
    """Per (true_class, status) video counts and faces for one settings key, from the store:
    videos without a face stay counted under their class."""
    sql = """
        SELECT coalesce(v.true_class, '(unlabelled)') AS class, fv.status,
               count(*) AS videos, sum(fv.n_faces) AS faces, sum(fv.n_sampled) AS frames
        FROM face_videos fv LEFT JOIN videos v USING (video_id)
        WHERE fv.settings_key = ? {filter}
        GROUP BY ALL ORDER BY 1, 2
    """
    if video_ids is None:
        return store.df(sql.format(filter=""), [settings_key])
    ids = pa.table({"video_id": pa.array(list(video_ids), pa.string())})
    return store.df(sql.format(filter="AND fv.video_id IN (SELECT video_id FROM _wanted)"), [settings_key],
                    tables={"_wanted": ids})


def read_crops(workspace, crop_paths: Iterable[str], size: int | None = None, threads: int = 1) -> np.ndarray:
    """Crop files (paths relative to the workspace, as in `faces.crop_path`) as one
    uint8 RGB array [N, H, W, 3]; `size` resizes every crop to size x size (needed
    when crops of different sizes are mixed)."""
    import cv2

    root = Path(workspace.root if hasattr(workspace, "root") else workspace)
    paths = [str(root / p) for p in crop_paths]

    def load(p: str) -> np.ndarray:
        img = cv2.imread(p, cv2.IMREAD_COLOR)
        if img is None:
            raise AtlasError(f"face crop {p} is missing or unreadable; re-run `dfatlas faces`")
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        if size and img.shape[:2] != (size, size):
            interp = cv2.INTER_AREA if img.shape[0] > size else cv2.INTER_LINEAR
            img = cv2.resize(img, (size, size), interpolation=interp)
        return img

    if not paths:
        s = size or 0
        return np.zeros((0, s, s, 3), dtype=np.uint8)
    if threads > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(threads) as ex:
            images = list(ex.map(load, paths))
    else:
        images = [load(p) for p in paths]
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise AtlasError(f"face crops have different sizes {sorted(shapes)[:3]}: pass size= to read_crops")
    return np.stack(images)
