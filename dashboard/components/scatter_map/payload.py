"""One run's map points as ONE Arrow IPC buffer, keyed by a hash of its bytes.

Every point of every selectable dataset, with every classifier's predicted class and correctness at face
and at video level, crosses the wire once per run; the browser applies classifier, dataset, level,
colour, legend and search changes itself. Rows are in one seeded shuffled order, so no class is drawn
last over the others (draw order = row order).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

CORRECT = ("correct", "incorrect", "unknown")
DRAW_ORDER_SEED = 0


@dataclass(frozen=True)
class MapPayload:
    data: bytes
    hash: str
    n_points: int
    classifiers: tuple[str, ...]


def _codes(values, vocabulary: list[str]) -> np.ndarray:
    cat = pd.Categorical(np.asarray(values, dtype=object), categories=vocabulary)
    if (cat.codes < 0).any():
        raise ValueError("map payload: a value outside its vocabulary")
    return cat.codes.astype(np.int8)


def encode(base: pd.DataFrame, per_classifier: dict[str, dict[str, np.ndarray]], label_order: list[str]) -> MapPayload:
    """`base`: video_id, dataset, database, x, y, true_class (one row per face); `per_classifier[c]`:
    pred, vpred (class ids / 'fake' / 'no prediction'), ok, vok ('correct' / ...), score, in base's order."""
    n = len(base)
    order = np.random.default_rng(DRAW_ORDER_SEED).permutation(n)
    seen = set(base["true_class"])
    for cols in per_classifier.values():
        seen |= set(cols["pred"]) | set(cols["vpred"])
    labels = [c for c in dict.fromkeys(label_order) if c in seen] + sorted(seen - set(label_order))
    datasets = sorted(set(base["dataset"]))
    db_of = base.drop_duplicates("dataset").set_index("dataset")["database"]
    databases = sorted(set(db_of))
    vid_codes, vid_names = pd.factorize(base["video_id"].to_numpy(dtype=object)[order])
    x = base["x"].to_numpy(np.float32)
    y = base["y"].to_numpy(np.float32)
    cols = {
        "x": pa.array(x[order]), "y": pa.array(y[order]),
        "dataset": pa.array(_codes(base["dataset"].to_numpy(dtype=object)[order], datasets)),
        "video": pa.DictionaryArray.from_arrays(pa.array(vid_codes.astype(np.int32)),
                                                pa.array(list(vid_names), pa.string())),
        "true": pa.array(_codes(base["true_class"].to_numpy(dtype=object)[order], labels)),
    }
    for c, v in per_classifier.items():
        cols[f"pred:{c}"] = pa.array(_codes(v["pred"][order], labels))
        cols[f"vpred:{c}"] = pa.array(_codes(v["vpred"][order], labels))
        cols[f"ok:{c}"] = pa.array(_codes(v["ok"][order], list(CORRECT)))
        cols[f"vok:{c}"] = pa.array(_codes(v["vok"][order], list(CORRECT)))
        cols[f"score:{c}"] = pa.array(np.asarray(v["score"], np.float32)[order])
    finite = np.isfinite(x) & np.isfinite(y)
    bounds = [float(x[finite].min()), float(y[finite].min()), float(x[finite].max()), float(y[finite].max())] \
        if finite.any() else [0.0, 0.0, 1.0, 1.0]
    # `databases` is per dataset code (the browser colours by database through it).
    meta = {"labels": labels, "datasets": datasets, "databases": [str(db_of[d]) for d in datasets],
            "database_names": databases, "correct": list(CORRECT), "classifiers": list(per_classifier),
            "bounds": bounds}
    table = pa.table(cols).replace_schema_metadata({"dfatlas": json.dumps(meta)})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=max(n, 1))
    data = sink.getvalue().to_pybytes()
    return MapPayload(data, hashlib.blake2b(data, digest_size=12).hexdigest(), n, tuple(per_classifier))
