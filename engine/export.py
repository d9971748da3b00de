"""A run's results as files for pandas, polars or DuckDB: `dfatlas export` (and `dfatlas.Atlas.export`).

Four tables, each one Parquet or CSV file named `<run_id>.<table>.<ext>`:

- `embeddings`: one row per embedded face — `row` (the row-order key: 0..n-1 in face-id order; the
  other tables carry it too), face_id, video_id, frame_index, database, split, dataset, role, label
  (real / fake / null), true_class, identity, source_ids, method, also_in, synthetic, embedding (a list
  of floats; CSV: one column `e0`, `e1`, ... per dimension). This is the file `dfatlas
  import-embeddings` reads (`engine.embedding_import`): an export round-trips.
- `predictions`: one row per (face, classifier) — row, face_id, video_id, dataset, classifier,
  pred_class (index into the run's classes; -1: fake without attribution), pred_label, real_score,
  out_of_fold, probs (CSV: `p_<class>` columns).
- `map`: the run's latest t-SNE map — row, face_id, dataset, x, y, is_reference, projection_id.
- `metrics`: Tables 1/2 of the run, every classifier, as one tidy table (`engine.rendering.tidy_metrics`).

Parquet files carry the run's classes, taxonomy and [classifiers] / [projection] sections in their
schema metadata (key `dfatlas`). Everything is built and written through Arrow, never row by row.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from data_catalog.errors import AtlasError

from .store import Store, arrow_to_matrix

TABLES = ("embeddings", "predictions", "map", "metrics")
FORMATS = ("parquet", "csv")
FORMAT_VERSION = 1


def _label(is_fake: pa.ChunkedArray) -> pa.Array:
    return pc.if_else(is_fake, pa.scalar("fake"), pa.scalar("real"))


def run_metadata(store: Store, run, granularity: str | None = None) -> dict:
    """What an import needs to refit the same classifiers on the same rows (JSON in the Parquet metadata):
    the run's classes, taxonomy, sections, super-set and the requests its classifiers were fitted with."""
    from .classify import recorded_requests

    cfg = run.config if isinstance(run.config, dict) else {}
    return {"fits": recorded_requests(store, run.run_id), "format": FORMAT_VERSION, "run_id": run.run_id, "approach": run.approach, "backbone": run.backbone,
            "classes": list(run.classes), "taxonomy": cfg.get("taxonomy") if isinstance(cfg.get("taxonomy"), dict)
            else None, "seed": run.seed, "classifiers": cfg.get("classifiers"), "projection": cfg.get("projection"),
            "superset": list(run.superset), "cross_db": list(run.cross_db), "embedding_dim": run.embedding_dim,
            "granularity": granularity or (run.imported or {}).get("granularity") or "face"}


def embeddings_table(store: Store, run_id: str, datasets=None) -> pa.Table:
    """The `embeddings` table of a run (see the module docstring)."""
    from .store.interchange import run_face_rows

    t = run_face_rows(store, run_id, datasets)
    t = t.append_column("label", _label(t["is_fake"])).drop_columns(["is_fake"])
    order = ["face_id", "video_id", "frame_index", "database", "split", "dataset", "role", "label", "true_class",
             "identity", "source_ids", "method", "also_in", "synthetic", "embedding"]
    t = t.select(order)
    return t.add_column(0, "row", pa.array(np.arange(t.num_rows, dtype=np.int64)))


def _rows_of(face_ids, faces: pa.Table) -> pa.Array:
    """The row-order key of each face id (its position in the embeddings table)."""
    return pc.index_in(face_ids, value_set=faces["face_id"]).cast(pa.int64())


def predictions_table(store: Store, run, faces: pa.Table) -> pa.Table:
    """The `predictions` table of a run, keyed by the embeddings table's `row`."""
    from .store.interchange import run_prediction_rows

    t = run_prediction_rows(store, run.run_id)
    rows = _rows_of(t["face_id"], faces)
    names = np.array(list(run.classes) + ["fake"], dtype=object)
    idx = t["pred_class"].to_numpy(zero_copy_only=False)
    idx = np.where(np.isnan(idx.astype(float)), -1, idx).astype(np.int64)
    label = pa.array(names[np.where(idx >= 0, idx, len(run.classes))].tolist(), pa.string())
    video = pc.take(faces["video_id"], pc.fill_null(rows, 0))
    return pa.table({"row": rows, "face_id": t["face_id"], "video_id": video, "dataset": t["dataset"],
                     "classifier": t["classifier"], "pred_class": t["pred_class"], "pred_label": label,
                     "real_score": t["real_score"], "out_of_fold": t["out_of_fold"], "probs": t["probs"]})


def map_table(store: Store, run_id: str, faces: pa.Table) -> pa.Table | None:
    """The run's latest map as a table keyed by `row`; None when the run has no map."""
    from .projection import TSNEMap

    tsne_map = TSNEMap.latest(store, run_id)
    if tsne_map is None:
        return None
    pts = pa.Table.from_pandas(tsne_map.points(store), preserve_index=False)
    return pa.table({"row": _rows_of(pts["face_id"], faces), "face_id": pts["face_id"], "dataset": pts["dataset"],
                     "x": pts["x"], "y": pts["y"], "is_reference": pts["is_reference"],
                     "projection_id": pa.array([tsne_map.projection_id] * pts.num_rows, pa.string())})


def metrics_frame(store: Store, run_id: str, level: str = "video"):
    """Tables 1/2 of the run, every classifier, as the tidy table."""
    from .evaluation import metrics_table
    from .rendering import tidy_metrics

    return tidy_metrics(metrics_table(store, [run_id], "all", level=level))


# --- files -------------------------------------------------------------------------------

def _csv_ready(t: pa.Table, classes) -> pa.Table:
    """CSV holds no lists: an embedding becomes e0..e(d-1), probabilities p_<class>, text lists 'a;b'."""
    for name in list(t.column_names):
        col = t[name]
        if not pa.types.is_list(col.type) and not pa.types.is_large_list(col.type):
            continue
        at = t.column_names.index(name)
        t = t.remove_column(at)
        if pa.types.is_string(col.type.value_type):
            t = t.add_column(at, name, pc.binary_join(col, ";"))
            continue
        if col.null_count == len(col):
            continue
        col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
        valid = col.is_valid()
        width = int(pc.max(pc.list_value_length(col)).as_py() or 0)
        X = np.full((len(col), width), np.nan, dtype=np.float32)
        X[valid.to_numpy(zero_copy_only=False)] = arrow_to_matrix(col.filter(valid))
        heads = [f"p_{c}" for c in classes] if name == "probs" and width == len(classes) else \
            [f"{'e' if name == 'embedding' else name + '_'}{i}" for i in range(width)]
        for j, head in enumerate(heads):
            t = t.add_column(at + j, head, pa.array(X[:, j]))
    return t


def _payload(t: pa.Table, fmt: str, meta: dict, classes) -> bytes:
    buf = io.BytesIO()
    if fmt == "parquet":
        import pyarrow.parquet as pq

        t = t.replace_schema_metadata({**(t.schema.metadata or {}), b"dfatlas": json.dumps(meta).encode()})
        pq.write_table(t, buf)
    else:
        import pyarrow.csv as pcsv

        pcsv.write_csv(_csv_ready(t, classes), buf)
    return buf.getvalue()


def export_run(store: Store, run_id: str, out_dir: str | Path, fmt: str = "parquet", tables=TABLES,
               level: str = "video") -> dict[str, Path]:
    """Write the chosen tables of a run into `out_dir` (created); returns {table: path}. A run without a
    map exports no `map` file (and says so by its absence from the result)."""
    from .diskspace import write_atomic
    from .runs import read_run

    if fmt not in FORMATS:
        raise AtlasError(f"export format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    unknown = [t for t in tables if t not in TABLES]
    if unknown:
        raise AtlasError(f"unknown export table {unknown[0]!r} (choose from {', '.join(TABLES)})")
    run = read_run(store, run_id)
    faces = embeddings_table(store, run_id)
    if faces.num_rows == 0 and any(t != "metrics" for t in tables):
        raise AtlasError(f"run {run_id} has no embeddings yet: run `dfatlas embed --config CONFIG --run {run_id}`")
    meta = run_metadata(store, run)
    built = {}
    for name in tables:
        if name == "embeddings":
            built[name] = faces
        elif name == "predictions":
            built[name] = predictions_table(store, run, faces)
        elif name == "map":
            t = map_table(store, run_id, faces)
            if t is not None:
                built[name] = t
        else:
            built[name] = pa.Table.from_pandas(metrics_frame(store, run_id, level), preserve_index=False)
    out = Path(out_dir).expanduser()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AtlasError(f"{out}: cannot create the export folder ({exc.strerror or exc})") from None
    written = {}
    for name, t in built.items():
        path = out / f"{run_id}.{name}.{'parquet' if fmt == 'parquet' else 'csv'}"
        write_atomic(path, _payload(t, fmt, meta | {"table": name}, run.classes))
        written[name] = path
    return written
