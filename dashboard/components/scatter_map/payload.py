"""One run's map points for the browser as ONE Arrow IPC buffer, keyed by a hash of its bytes.

Every point of every selectable dataset, with every classifier's predicted class and correctness at face
and at video level, crosses the wire once per run; the browser applies classifier, dataset, level,
colour, legend and search changes itself. Written straight from the run's codes (`engine.map_view.RunPoints`,
in its shuffled draw order: no class is drawn last over the others): no string per point is converted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from engine.map_view import CORRECT, RunPoints


@dataclass(frozen=True)
class MapPayload:
    data: bytes
    hash: str
    n_points: int
    classifiers: tuple[str, ...]


def _compact(codes: np.ndarray, n_values: int) -> tuple[np.ndarray, np.ndarray]:
    """(codes renumbered over the values present, those values' old codes), order kept."""
    present = np.flatnonzero(np.bincount(codes, minlength=n_values))
    lut = np.zeros(max(n_values, 1), np.int32)
    lut[present] = np.arange(len(present), dtype=np.int32)
    return lut[codes], present


def encode(points: RunPoints, datasets) -> MapPayload:
    """The points of `datasets` (the ones the sidebar offers), every classifier of the run."""
    rows = points.rows_of(datasets)
    n = len(rows)
    ds, ds_present = _compact(points.dataset[rows].astype(np.int64), len(points.datasets))
    vid, vid_present = _compact(points.video[rows].astype(np.int64), len(points.videos))
    true = points.true[rows]
    x, y = points.x[rows], points.y[rows]
    cols = {
        "x": pa.array(x), "y": pa.array(y), "dataset": pa.array(ds.astype(np.int8)),
        "video": pa.DictionaryArray.from_arrays(pa.array(vid), pa.array(points.videos[vid_present], pa.string())),
        "true": pa.array(true.astype(np.int8)),
    }
    for c in points.classifiers:
        pred, score = points.predicted(c, "frame")
        vpred, _ = points.predicted(c, "video")
        pred, vpred = pred[rows], vpred[rows]
        cols[f"pred:{c}"] = pa.array(pred.astype(np.int8))
        cols[f"vpred:{c}"] = pa.array(vpred.astype(np.int8))
        cols[f"ok:{c}"] = pa.array(points.ok_table[true, pred])
        cols[f"vok:{c}"] = pa.array(points.ok_table[true, vpred])
        cols[f"score:{c}"] = pa.array(score[rows])
    finite = np.isfinite(x) & np.isfinite(y)
    bounds = [float(x[finite].min()), float(y[finite].min()), float(x[finite].max()), float(y[finite].max())] \
        if finite.any() else [0.0, 0.0, 1.0, 1.0]
    shown = [points.datasets[i] for i in ds_present]
    # `databases` is per dataset code (the browser colours by database through it).
    meta = {"labels": list(points.labels), "datasets": shown,
            "databases": [points.database_of[i] for i in ds_present],
            "database_names": sorted({points.database_of[i] for i in ds_present}), "correct": list(CORRECT),
            "classifiers": list(points.classifiers), "bounds": bounds}
    table = pa.table(cols).replace_schema_metadata({"dfatlas": json.dumps(meta)})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=max(n, 1))
    data = sink.getvalue().to_pybytes()
    return MapPayload(data, hashlib.blake2b(data, digest_size=12).hexdigest(), n, tuple(points.classifiers))
