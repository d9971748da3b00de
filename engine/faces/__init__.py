"""Face extraction: videos -> face crops, with MediaPipe BlazeFace (DESIGN.md step 2).

- `extract.py`: `process_video(task, spec)`, the per-video function every executor runs
  (decode, detect, crop; writes nothing);
- `decoder.py` / `frames.py`: opening a video file safely / reading a video given as still images
  (a frame folder, DeepfakeBench's frames), one image file at a time;
- `detector.py`: BlazeFace on whole frames and tiles (`FaceFinder`, `FaceSearch`);
- `confirm.py`: the confirmation of faces BlazeFace is unsure of (`FaceCheck`: MediaPipe's
  face-landmark model and a second look), so title cards and drawings are not taken for faces;
- `model_files.py`: the BlazeFace and face-landmark model files, offline first (`resolve_models`);
- `executors.py`: the local process pool, Ray, and inline executors;
- `writer.py`: crop files and each batch's store rows (through `engine.store.faces`);
- `driver.py`: `extract_faces(workspace, videos, faces_settings, ...) -> FaceSummary`, the driver;
- `stage.py`: `extract_for_config(cfg, workspace, ...)`, the faces stage of a config;
- `crop_reader.py`: `read_crops(workspace, crop_paths, size=None)`, the one crop reader
  (uint8 RGB [N, H, W, 3]) for training and inference.

Store rows are read through `engine.store.faces` (`face_rows`, `video_faces`,
`thumbnails`, `status_by_class`, ...).
"""

from __future__ import annotations

from .crop_reader import read_crop, read_crops
from .decoder import sample_indices
from .detector import Detection, FaceFinder, FaceSearch
from .driver import FaceSummary, extract_faces
from .extract import STATUSES, FinderSpec, VideoResult, VideoTask, process_video, square_crop
from .model_files import MODELS, ModelFile, ModelUnavailable, resolve_model, resolve_models
from .stage import extract_for_config

__all__ = [
    "read_crop", "read_crops", "Detection", "FaceFinder", "FaceSearch", "STATUSES", "FinderSpec", "VideoResult", "VideoTask",
    "process_video", "sample_indices", "square_crop", "MODELS", "ModelFile", "ModelUnavailable", "resolve_model",
    "resolve_models", "FaceSummary", "extract_faces", "extract_for_config",
]
