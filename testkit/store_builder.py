"""The one store builder of the tests and benchmarks: every row goes through the engine's own
Arrow builders and writers (`engine.store.catalog`, `faces`, `runs`, `embeddings`,
`predictions`, `projections`, `jobs`), so a schema change is made once, in the store package.

    b = StoreBuilder.at(workspace_root)            # or StoreBuilder(store)
    b.videos(records)                              # data_catalog.records.VideoRecord s
    b.video_columns(database=..., split=..., relpath=..., true_class=..., ...)
    b.datasets(dataset=[...], database=[...], split=[...], role=[...])
    b.settings(key, params)
    ids = b.faces(key, video_id, frame_index, crop_path, thumbnail=..., statuses=b.statuses(...))
    b.run({"run_id": ..., "approach": ..., ...})   # a `runs` row (RUNS_SCHEMA's columns)
    b.embeddings(run_id, ids, datasets, matrix)
    b.predictions(run_id, "knn", ids, datasets, pred_class, real_score, probs, out_of_fold=mask,
                  fit={"params_json": "{}", "fitted_on": "superset/val", "n_fit": 10})
    b.map(projection_id, run_id, ["superset/test"], params, seed, kl, ids, datasets, xy, is_reference=mask)

No SQL text and no hand-built store tables here: a column a fixture leaves out is passed to the
engine's builder as "unknown" (None / NaN), as an extraction without that information would.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa

from data_catalog.records import VideoRecord
from engine.store import Store
from engine.store.analyses import files_table, write_files
from engine.store.catalog import datasets_table, problems_table, replace_catalog, videos_table
from engine.store.embeddings import embeddings_table, write_embeddings
from engine.store.faces import face_videos_table, faces_table, settings_table, write_settings, \
    write_video_faces
from engine.store.jobs import jobs_table, write_job
from engine.store.predictions import predictions_table, write_predictions
from engine.store.projections import points_table, write_map, write_points
from engine.store.runs import write_epoch, write_run


def _col(values, n: int) -> list:
    """A column of n values: a sequence as given, one scalar (or None) repeated."""
    if values is None or isinstance(values, (str, bytes, bool, int, float)):
        return [values] * n
    return list(values)


def _mask(values, n: int) -> np.ndarray:
    return np.full(n, bool(values)) if isinstance(values, (bool, np.bool_)) else np.asarray(values, dtype=bool)


def _take(values, mask: np.ndarray):
    if values is None:
        return None
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        values = values.to_numpy(zero_copy_only=False)
    return np.asarray(values)[mask] if np.ndim(values) else values


class StoreBuilder:
    """Writes a store's rows through the engine's writers; `created_at` is every run's creation
    time (one time for all, so runs list in run_id order, as rows written in one transaction do)."""

    def __init__(self, store: Store, created_at: datetime | None = None):
        self.store = store
        self.created_at = created_at or datetime.now()

    @classmethod
    def at(cls, root: str | Path, **kw) -> "StoreBuilder":
        """A builder on `<root>/atlas.duckdb` (the workspace layout), creating the folder."""
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        return cls(Store(root / "atlas.duckdb"), **kw)

    # --- catalog --------------------------------------------------------------------------

    def videos(self, records: Sequence[VideoRecord], synthetic: bool | Sequence[bool] = False,
               also_in: dict[str, list[str]] | None = None) -> pa.Table:
        """`videos` rows of `VideoRecord`s (replacing rows of the same ids, keeping the others);
        returns the rows written."""
        rows = videos_table(list(records), synthetic=synthetic, also_in=also_in)
        replace_catalog(self.store, rows, datasets_table([], [], [], [], [], [], []), problems_table([]))
        return rows

    def video_columns(self, database, split, relpath, true_class, is_fake=None, path=None, identity=None,
                      method=None, source_ids=None, synthetic: bool | Sequence[bool] = False) -> pa.Table:
        """`videos` rows from equal-length columns (a scalar is repeated): `is_fake` defaults to
        true_class != 'real' (None when unlabelled), `path` to `/data/<video_id>`."""
        relpath = list(relpath)
        n = len(relpath)
        database, split, true_class = _col(database, n), _col(split, n), _col(true_class, n)
        if is_fake is None:
            is_fake = [None if c is None else c != "real" for c in true_class]
        path = _col(path, n) if path is not None else [f"/data/{d}/{r}" for d, r in zip(database, relpath)]
        source_ids = _col(source_ids, n) if source_ids is not None else [()] * n
        records = [VideoRecord(db, sp, p, rel, cls, fake, ident, meth, tuple(src or ()))
                   for db, sp, p, rel, cls, fake, ident, meth, src in
                   zip(database, split, path, relpath, true_class, _col(is_fake, n), _col(identity, n),
                       _col(method, n), source_ids)]
        return self.videos(records, synthetic=synthetic)

    def datasets(self, dataset, database, split, role, labelled=True, synthetic=False, source=None) -> pa.Table:
        """`datasets` rows (a scalar is repeated), replacing rows of the same names."""
        dataset = list(dataset)
        n = len(dataset)
        rows = datasets_table(dataset, _col(database, n), _col(split, n), _col(role, n), _col(labelled, n),
                              _col(synthetic, n), _col(source, n))
        replace_catalog(self.store, videos_table([]), rows, problems_table([]))
        return rows

    # --- faces ----------------------------------------------------------------------------

    def settings(self, settings_key: str, params: dict) -> None:
        write_settings(self.store, settings_table(settings_key, params))

    @staticmethod
    def statuses(settings_key: str, video_id, status="ok", n_faces=None, reason=None, n_frames=None,
                 n_sampled=None, width=None, height=None, fps=None, decode_s=None, detect_s=None) -> pa.Table:
        """`face_videos` status rows (for `faces(..., statuses=)`); a scalar is repeated."""
        video_id = list(video_id)
        n = len(video_id)
        return face_videos_table(settings_key, video_id, _col(status, n), _col(reason, n), _col(n_frames, n),
                                 _col(n_sampled, n), _col(n_faces, n), _col(width, n), _col(height, n),
                                 _col(fps, n), _col(decode_s, n), _col(detect_s, n))

    def faces(self, settings_key: str, video_id, frame_index, crop_path, thumbnail=None, box=None, score=None,
              detector=None, statuses: pa.Table | None = None) -> list[str]:
        """`faces` rows (face ids made by `engine.store.faces.face_ids`); returns the face ids.

        With `statuses` (see `statuses()`) the videos are written whole, faces and status rows in one
        transaction, by `write_video_faces`, as extraction writes them; without, the face rows alone
        (a fixture that never ran extraction has no status rows). Missing boxes / scores are NaN,
        missing thumbnails and detectors NULL."""
        video_id = list(video_id)
        n = len(video_id)
        table = faces_table(settings_key, video_id, frame_index, list(crop_path), _col(thumbnail, n),
                            np.full((n, 4), np.nan) if box is None else box,
                            np.full(n, np.nan) if score is None else score, _col(detector, n))
        if statuses is not None:
            write_video_faces(self.store, table, statuses)
        else:
            self.store.insert("faces", table)
        return table.column("face_id").to_pylist()

    # --- runs, embeddings, predictions ----------------------------------------------------

    def run(self, row: dict, created_at: datetime | None = None) -> str:
        """One `runs` row (RUNS_SCHEMA's columns; missing ones NULL) through `write_run`."""
        write_run(self.store, row, created_at or self.created_at)
        return row["run_id"]

    def epoch(self, row: dict) -> None:
        write_epoch(self.store, row)

    def embeddings(self, run_id: str, face_ids, datasets, embedding: np.ndarray) -> None:
        n = len(face_ids)
        write_embeddings(self.store, embeddings_table(run_id, list(face_ids), _col(datasets, n), embedding))

    def predictions(self, run_id: str, classifier: str, face_ids, datasets, pred_class, real_score, probs=None,
                    out_of_fold: bool | Sequence[bool] = False, fit: dict | None = None) -> None:
        """One (run, classifier)'s predictions in one transaction; `out_of_fold` is one flag or one per face,
        `fit` the `classifiers` row's fields (params_json — a dict is dumped —, fitted_on, n_fit,
        selection_json)."""
        n = len(face_ids)
        face_ids, datasets = np.asarray(list(face_ids), dtype=object), np.asarray(_col(datasets, n), dtype=object)
        pred_class, real_score = np.asarray(pred_class), np.asarray(real_score, dtype=np.float64)
        probs = None if probs is None else np.asarray(probs)
        oof = _mask(out_of_fold, n)
        tables = []
        for flag in (False, True):
            m = oof == flag
            if m.any():
                tables.append(predictions_table(run_id, classifier, list(face_ids[m]), list(datasets[m]),
                                                pred_class[m], real_score[m], _take(probs, m), out_of_fold=flag))
        record = None
        if fit is not None:
            params = fit.get("params_json", {})
            record = {"run_id": run_id, "classifier": classifier,
                      "params_json": params if isinstance(params, str) else json.dumps(params),
                      "fitted_on": fit.get("fitted_on"), "n_fit": fit.get("n_fit"),
                      "selection_json": fit.get("selection_json")}
        write_predictions(self.store, tables, fit_record=record)

    # --- maps and jobs --------------------------------------------------------------------

    def map(self, projection_id: str, run_id: str, reference: list[str], params: dict, seed: int,
            kl_divergence: float | None = None, face_ids=(), datasets=(), xy=None,
            is_reference: bool | Sequence[bool] = True) -> None:
        """A map's `projections` row and its points (`is_reference`: one flag or one per point):
        the reference points with the row (`write_map`), the others after (`write_points`)."""
        n = len(face_ids)
        face_ids, datasets = np.asarray(list(face_ids), dtype=object), np.asarray(_col(datasets, n), dtype=object)
        xy = np.zeros((0, 2)) if xy is None else np.asarray(xy, dtype=np.float64).reshape(n, 2)
        ref = _mask(is_reference, n)
        write_map(self.store, projection_id, run_id, list(reference), params, seed, kl_divergence,
                  points_table(projection_id, list(datasets[ref]), list(face_ids[ref]), xy[ref], True))
        if (~ref).any():
            self.points(projection_id, datasets[~ref], face_ids[~ref], xy[~ref], is_reference=False)

    def points(self, projection_id: str, datasets, face_ids, xy, is_reference: bool = False) -> None:
        write_points(self.store, points_table(projection_id, list(datasets), list(face_ids), np.asarray(xy),
                                              is_reference))

    def files(self, video_id, original_name, sha256, size_bytes) -> None:
        """`video_files` rows: the chain of custody of analysed sets (original names, SHA-256)."""
        video_id = list(video_id)
        n = len(video_id)
        write_files(self.store, files_table(video_id, _col(original_name, n), _col(sha256, n), _col(size_bytes, n)))

    def job(self, job_id: str, kind: str, params: dict | None = None, pid: int = 0, status: str = "running",
            message: str = "starting") -> None:
        write_job(self.store, jobs_table(job_id, kind, params, pid, status=status, message=message))
