"""Face extraction: videos -> face crops, with MediaPipe BlazeFace (DESIGN.md step 2).

Public API:

- `extract_faces(workspace, videos, faces_settings, workers=None, executor="process", progress=True)
  -> FaceSummary`: any videos already recorded in the `videos` table (records, row dicts, a
  DataFrame or an Arrow table with `video_id` and `path`).
- `extract_for_config(cfg, workspace, db=None, split=None, workers=None, executor="process")`:
  the config's databases (recording the catalog first when the store has none of them).
- `read_crops(workspace, crop_paths, size=None) -> uint8 array [N, H, W, 3]` (RGB).
- `faces_for(store, settings_key, video_ids=None)`: the `faces` rows (no thumbnails) for training.
- `resolve_models(...)` / `resolve_model(...)`: the BlazeFace model files (offline first).
- `process_video(task, spec)`: the per-video function every executor runs.
"""

from __future__ import annotations

from .detector import Detection, FaceFinder, quiet_native_stderr
from .extract import STATUSES, FinderSpec, VideoResult, VideoTask, process_video, sample_indices, square_crop
from .models import MODELS, ModelFile, ModelUnavailable, cache_dir, models_for, resolve_model, resolve_models
from .pipeline import (EXECUTORS, FaceSummary, crop_relpath, extract_faces, read_crops, record_settings,
                       resolve_face_models, settings_params, status_by_class)
from .run import extract_for_config, faces_for, videos_for_config

__all__ = [
    "Detection", "FaceFinder", "quiet_native_stderr", "STATUSES", "FinderSpec", "VideoResult", "VideoTask",
    "process_video", "sample_indices", "square_crop", "MODELS", "ModelFile", "ModelUnavailable", "cache_dir",
    "models_for", "resolve_model", "resolve_models", "EXECUTORS", "FaceSummary", "crop_relpath", "extract_faces",
    "read_crops", "record_settings", "resolve_face_models", "settings_params", "status_by_class", "extract_for_config", "faces_for",
    "videos_for_config",
]
