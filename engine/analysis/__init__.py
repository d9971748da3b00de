"""Analyse an unknown set: attribute an unseen collection of videos with a trained run.

- `paths`: set names, file names, video signatures, allowed roots (path safety);
- `inputs`: the input's videos and labels (`collect_videos`);
- `stages`: the analysis itself (`analyze`), through the run's stages, stored all-or-nothing;
- `verdict`: the one verdict per video — classifier class or "resembles no known class" (`calibrate_open_set`);
- `report`: `AnalysisReport`, read back from the store (`build_report`);
- `evidence`: a video's verdict with its nearest training faces (`video_evidence`), thumbnails per class,
  open-set rates;
- `drilldown`: one video closely (faces, per-frame scores, verdict, nearest identities, map position);
- `custody`: SHA-256 and original names of the analysed files;
- `case_report`: the self-contained HTML case report of a set;
- `cleanup`: listing and removing analysed sets and their crops.

Every query goes through `engine.store.analyses` (and the store's other readers);
the run is an `engine.runs.RunRecord`, its approach an `engine.approaches` object.
"""

from .case_report import case_report_html, write_case_report
from .cleanup import delete_set, list_analyses, remove_crops, set_state
from .custody import UPLOAD_NAMES, analysed_files, file_sha256
from .drilldown import VideoDrilldown, find_videos, video_drilldown
from .evidence import Evidence, class_thumbnails, nearest_known_faces, open_set_rates, video_evidence
from .inputs import InputSet, collect_videos
from .paths import (ROLE, UNKNOWN_DB, AnalysisError, dataset_of, looks_like_image, looks_like_video, resolve_under_roots,
                    sanitize_filename, sanitize_name)
from .report import NO_FACE_LABEL, AnalysisReport, available_classifiers, build_report, default_classifier, video_table
from .stages import STAGE_WEIGHTS, STAGES, ProgressFn, analyze, overall_fraction
from .verdict import (OPEN_SET_LABEL, calibrate_open_set, class_index, known_test_rate, open_set_section,
                      read_labelled_embeddings, read_val_embeddings)

__all__ = [
    "AnalysisError", "AnalysisReport", "Evidence", "InputSet", "NO_FACE_LABEL", "OPEN_SET_LABEL", "ProgressFn",
    "ROLE", "STAGES", "STAGE_WEIGHTS", "UNKNOWN_DB", "UPLOAD_NAMES", "VideoDrilldown", "analysed_files", "analyze",
    "available_classifiers", "build_report", "calibrate_open_set", "case_report_html", "class_index",
    "class_thumbnails", "collect_videos", "dataset_of", "default_classifier", "delete_set", "file_sha256",
    "find_videos", "known_test_rate", "list_analyses", "looks_like_image", "looks_like_video", "nearest_known_faces",
    "open_set_rates", "open_set_section", "overall_fraction", "read_labelled_embeddings", "read_val_embeddings",
    "remove_crops", "resolve_under_roots", "sanitize_filename", "sanitize_name", "set_state", "video_drilldown",
    "video_evidence", "video_table", "write_case_report",
]
