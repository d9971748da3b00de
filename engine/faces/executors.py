"""The executors: run `process_video` over many videos and yield their `VideoResult`s.

- `run_pool`: a local spawn-context process pool (default); a worker that dies
  costs only the video it was decoding.
- `run_ray`: Ray tasks (a local Ray, or the cluster at `$RAY_ADDRESS`).
- `run_inline`: this process, one video after the other (debugging).

Every executor yields results as they finish; none writes anything.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterator

from data_catalog.errors import AtlasError

from .extract import FinderSpec, VideoResult, VideoTask, close_worker_finder, init_worker, process_video

EXECUTORS = ("process", "ray", "inline")


def run_inline(tasks: list[VideoTask], spec: FinderSpec, workers: int) -> Iterator[VideoResult]:
    try:
        for t in tasks:
            yield process_video(t, spec)
    finally:
        close_worker_finder()


def run_pool(tasks: list[VideoTask], spec: FinderSpec, workers: int,
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
        yield from run_pool(pending_left, spec, workers, fn) if pending_left else iter(())


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


def run_ray(tasks: list[VideoTask], spec: FinderSpec, workers: int) -> Iterator[VideoResult]:
    try:
        import ray
    except ImportError:  # an optional extra: dfatlas[cluster]
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


def executor(name: str) -> Callable[[list[VideoTask], FinderSpec, int], Iterator[VideoResult]]:
    """The executor called `name` (one of EXECUTORS)."""
    if name not in EXECUTORS:
        raise AtlasError(f"unknown executor {name!r} (choose from {', '.join(EXECUTORS)})")
    return {"process": run_pool, "ray": run_ray, "inline": run_inline}[name]


def cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
