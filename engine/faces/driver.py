"""The faces driver: which videos to do, the executor, progress, and batched writes.

`extract_faces` runs `process_video` over videos already recorded in the
`videos` table with one of the executors (`engine.faces.executors`: a local
process pool by default, this process with `executor="inline"`, or Ray) and
hands batches of results to the writer (`engine.faces.writer`), which writes
crop files and then each batch's `faces` and `face_videos` rows in one
transaction. A re-run skips every video that has a finished status row for
the same settings key and all of whose crop files are there (a deleted or
damaged crop makes its video be extracted again).

The caller holds the workspace lock (`with ws.lock("faces"): ...`) — this
module does not take it, so a larger job (the demo, an analysis) can call it
while holding its own.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import pyarrow as pa

from data_catalog.errors import AtlasError
from data_catalog.names import path_to_text

from ..store import faces as face_table
from . import writer
from .executors import cores, executor as executor_named
from .extract import DETECTOR_LOAD_FAILED, FINAL_STATUSES, STATUSES, FinderSpec, VideoResult, VideoTask
from .detector import CONFIRM_MODEL
from .model_files import ModelFile, ModelUnavailable, models_for, resolve_models


@dataclass
class FaceSummary:
    settings_key: str
    requested: int = 0            # videos asked for
    skipped: int = 0              # already done with this settings key
    restored: int = 0             # believed done, but a crop file was missing or damaged: extracted again
    processed: int = 0            # done in this call
    counts: dict = field(default_factory=lambda: {s: 0 for s in STATUSES})  # this call's statuses
    faces: int = 0                # face crops written in this call
    refused: int = 0              # fall-back candidates the confirmation check refused in this call
    refused_videos: int = 0       # videos with at least one refused candidate
    refused_no_face: int = 0      # ... of which ended no_face
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

    def add(self, res: VideoResult, elapsed: float) -> None:
        """Count one finished video (`elapsed`: seconds since the executor started)."""
        if self.processed == 0:
            self.startup_s = max(0.0, elapsed - res.decode_s - res.detect_s)
        self.processed += 1
        self.counts[res.status] = self.counts.get(res.status, 0) + 1
        self.faces += res.n_faces
        self.frames += res.n_sampled
        if res.n_refused:
            self.refused += res.n_refused
            self.refused_videos += 1
            self.refused_no_face += res.status == "no_face"
        self.decode_s += res.decode_s
        self.detect_s += res.detect_s
        self.cpu_s += res.cpu_s

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.update(videos_per_s=self.videos_per_s, faces_per_s=self.faces_per_s)
        return d


def resolve_face_models(faces) -> dict[str, ModelFile]:
    """The configured detector's model (required; the config's path applies to it), the
    full-range fall-back for small faces and the face-landmark model that confirms fall-back faces
    (both optional: skipped with a warning if unavailable; without the landmark model no fall-back
    pass runs, since its faces could not be confirmed)."""
    models = resolve_models([faces.detector], faces.blazeface_model or None)
    for name in models_for(faces.detector, faces.tiling, faces.confirm):
        if name not in models:
            try:
                models.update(resolve_models([name]))
            except ModelUnavailable as exc:
                what = ("face-landmark model unavailable: small faces (tiles, full-range model) will not be "
                        "looked for, since they could not be confirmed" if name == CONFIRM_MODEL
                        else "small-face fall-back model unavailable, continuing without it")
                print(f"warning: {what} ({exc})", file=sys.stderr)
    return models


# --- inputs ---------------------------------------------------------------------------
def _video_table(videos) -> pa.Table:
    """video_id + path (+ true_class, and frames / face_crops for videos given as still images, when known)
    from records, rows, a DataFrame or Arrow."""
    if isinstance(videos, pa.Table):
        t = videos
    elif hasattr(videos, "to_dict") and hasattr(videos, "columns"):  # pandas
        t = pa.Table.from_pandas(videos, preserve_index=False)
    else:
        rows = list(videos)
        if rows and hasattr(rows[0], "video_id") and not isinstance(rows[0], dict):
            t = pa.table({"video_id": [r.video_id for r in rows], "path": [path_to_text(r.path) for r in rows],
                          "true_class": [r.true_class for r in rows],
                          "frames": pa.array([[path_to_text(f) for f in r.frames] or None for r in rows],
                                             pa.list_(pa.string())),
                          "face_crops": pa.array([bool(r.face_crops) for r in rows], pa.bool_())})
        else:
            t = pa.table({
                "video_id": [r["video_id"] for r in rows],
                "path": [str(r["path"]) for r in rows],
                "true_class": [r.get("true_class") for r in rows],
                "frames": pa.array([r.get("frames") or None for r in rows], pa.list_(pa.string())),
                "face_crops": pa.array([bool(r.get("face_crops")) for r in rows], pa.bool_()),
            }) if rows else pa.table({"video_id": pa.array([], pa.string()), "path": pa.array([], pa.string())})
    missing = {"video_id", "path"} - set(t.column_names)
    if missing:
        raise AtlasError(f"videos to extract faces from need columns video_id and path (missing: {', '.join(sorted(missing))})")
    return t


# --- the public entry -------------------------------------------------------------------
def extract_faces(workspace, videos, faces, *, workers: int | None = None, executor: str = "process",
                  progress: bool = True, batch_videos: int = 16, batch_seconds: float = 5.0,
                  models: dict[str, ModelFile] | None = None, limit: int | None = None,
                  on_progress: Callable[[int, int], None] | None = None, allowed_roots=(),
                  verify: bool = False) -> FaceSummary:
    """Face crops for `videos` (VideoRecords, `videos`-table rows as dicts, a DataFrame or an
    Arrow table with video_id and path) with the `[faces]` settings `faces`.

    Skips videos already done with the same settings key; returns a FaceSummary of this call.
    `on_progress(done, total)` is called after every video (the dashboard's jobs use it).
    `allowed_roots`: the decoder opens only files whose real path is inside one (analysis jobs).
    The crop files of the videos believed done are checked first (exist, not empty; `verify` also
    decodes each): a video with a missing or damaged crop is extracted again.
    """
    runner = executor_named(executor)
    workspace.ensure()
    store = workspace.store()
    table = _video_table(videos)
    key = faces.settings_key()
    if models is None:
        models = resolve_face_models(faces)
    writer.record_settings(store, faces, models)
    done = face_table.finished_videos(store, key, FINAL_STATUSES)
    ids = table.column("video_id").to_pylist()
    restore = writer.videos_with_bad_crops(store, workspace, key, done & set(ids), decode=verify)
    done -= restore
    paths = table.column("path").to_pylist()
    names = set(table.column_names)
    frames = table.column("frames").to_pylist() if "frames" in names else [None] * len(ids)
    crops = table.column("face_crops").to_pylist() if "face_crops" in names else [False] * len(ids)
    use_crops = faces.pre_cropped == "use"  # frames that are face crops are taken as they are
    seen: set[str] = set()
    todo: list[VideoTask] = []
    for vid, path, listed, is_crop in zip(ids, paths, frames, crops):
        if vid in done or vid in seen:
            continue
        seen.add(vid)
        todo.append(VideoTask(vid, str(path), faces.frames_per_video, faces.crop_size, faces.box_scale,
                              faces.crop_format, faces.crop_quality, faces.thumbnail_size,
                              tuple(str(r) for r in allowed_roots), tuple(listed or ()),
                              bool(is_crop) and use_crops))
    if limit is not None:
        todo = todo[:limit]
    n_workers = workers if workers and workers > 0 else (faces.workers or cores())
    n_workers = max(1, min(n_workers, len(todo) or 1))
    log_dir = workspace.root / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    spec = FinderSpec(tuple(sorted((n, m.path) for n, m in models.items())), faces.detector, faces.tiling,
                      faces.min_confidence, str(log_dir / "mediapipe.log"), faces.confirm)
    summary = FaceSummary(key, requested=len(set(ids)), skipped=len(set(ids) & done), restored=len(restore),
                          workers=n_workers,
                          executor=executor, models={n: m.to_dict() for n, m in models.items()})
    if not todo:
        return summary
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
            summary.add(res, time.perf_counter() - start)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(ok=summary.counts["ok"], no_face=summary.counts["no_face"],
                                bad=summary.processed - summary.counts["ok"] - summary.counts["no_face"], refresh=False)
            if on_progress:
                on_progress(summary.processed, len(todo))
            if len(batch) >= batch_videos or time.monotonic() - last_write > batch_seconds:
                writer.write_batch(store, workspace, key, faces.crop_format, batch)
                batch, last_write = [], time.monotonic()
        if batch:
            writer.write_batch(store, workspace, key, faces.crop_format, batch)
    finally:
        if bar is not None:
            bar.close()
        summary.seconds = time.perf_counter() - start
    return summary
