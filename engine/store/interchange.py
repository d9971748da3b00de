"""A run's rows going out (`dfatlas export`) and a detector's embeddings coming in (`dfatlas import-embeddings`).

The readers give one Arrow table per kind of row, ordered by face id (the
export's row-order key follows that order); the writers put an imported run,
or an imported unknown set, into the store in one transaction each, leaving
rows that are already there (the same video or face recorded by the catalog
or another import) as they are.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from .connection import Store


def _ids(name: str, values) -> dict:
    return {"_ids": pa.table({name: pa.array(list(values), pa.string())})}


# --- export ------------------------------------------------------------------------

def run_face_rows(store: Store, run_id: str, datasets=None) -> pa.Table:
    """Every embedded face of a run (of `datasets` when given), by face_id: face_id, video_id, frame_index,
    database, split, dataset, role, true_class, is_fake, identity, source_ids, method, also_in, synthetic,
    embedding."""
    return store.arrow("""
        SELECT e.face_id, f.video_id, f.frame_index, v.database, v.split, e.dataset, d.role, v.true_class,
               v.is_fake, v.identity, v.source_ids, v.method, v.also_in, v.synthetic, e.embedding
        FROM embeddings e JOIN faces f ON f.face_id = e.face_id JOIN videos v ON v.video_id = f.video_id
        LEFT JOIN datasets d ON d.dataset = e.dataset
        WHERE e.run_id = ? AND (?::VARCHAR[] IS NULL OR e.dataset IN (SELECT unnest(?::VARCHAR[])))
        ORDER BY e.face_id""", [run_id] + [None if datasets is None else list(datasets)] * 2)


def run_prediction_rows(store: Store, run_id: str) -> pa.Table:
    """Every stored prediction of a run: face_id, dataset, classifier, pred_class, real_score, out_of_fold,
    probs — by classifier, then face_id."""
    return store.arrow("SELECT face_id, dataset, classifier, pred_class, real_score, out_of_fold, probs "
                       "FROM predictions WHERE run_id = ? ORDER BY classifier, face_id", [run_id])


# --- import: what the store already holds --------------------------------------------

def known_videos(store: Store, video_ids) -> pd.DataFrame:
    """video_id, database, split, true_class, is_fake of those of `video_ids` the store records."""
    return store.df("SELECT v.video_id, v.database, v.split, v.true_class, v.is_fake FROM videos v "
                    "WHERE v.video_id IN (SELECT video_id FROM _ids)", tables=_ids("video_id", video_ids))


def known_faces(store: Store, face_ids) -> pd.DataFrame:
    """face_id, video_id of those of `face_ids` the store records."""
    return store.df("SELECT f.face_id, f.video_id FROM faces f WHERE f.face_id IN (SELECT face_id FROM _ids)",
                    tables=_ids("face_id", face_ids))


def known_datasets(store: Store, names) -> pd.DataFrame:
    """dataset, role of those of `names` the store records."""
    return store.df("SELECT d.dataset, d.role FROM datasets d WHERE d.dataset IN (SELECT dataset FROM _ids)",
                    tables=_ids("dataset", names))


# --- import: writing ------------------------------------------------------------------

def _insert_new(con, table: str, rows: pa.Table) -> None:
    """Insert the rows whose primary key the table does not hold yet (the others are kept as they are)."""
    if rows.num_rows == 0:
        return
    cols = ", ".join(f'"{c}"' for c in rows.column_names)
    con.register("_incoming", rows)
    try:
        con.execute(f"INSERT OR IGNORE INTO {table} ({cols}) SELECT {cols} FROM _incoming")
    finally:
        con.unregister("_incoming")


def write_imported_run(store: Store, run_row: pa.Table, created_at, videos: pa.Table, datasets: pa.Table,
                       settings: pa.Table, faces: pa.Table, statuses: pa.Table, embeddings: pa.Table) -> None:
    """An imported run in one transaction: its `runs` row (replacing a row of the same id, with
    `created_at`), its embeddings, and the videos, datasets, face settings, faces and face statuses the
    store lacks."""
    run_id = run_row.column("run_id")[0].as_py()
    with store.transaction() as con:
        for table, rows in (("videos", videos), ("datasets", datasets), ("face_settings", settings),
                            ("faces", faces), ("face_videos", statuses)):
            _insert_new(con, table, rows)
        con.execute("DELETE FROM embeddings WHERE run_id = ?", [run_id])
        store.insert("embeddings", embeddings, con=con)
        con.execute("DELETE FROM runs WHERE run_id = ?", [run_id])
        store.insert("runs", run_row, con=con)
        con.execute("UPDATE runs SET updated_at = current_timestamp, created_at = ? WHERE run_id = ?",
                    [created_at, run_id])


def write_imported_set(store: Store, videos: pa.Table, faces: pa.Table, statuses: pa.Table, embeddings: pa.Table,
                       predictions: list[pa.Table], points: pa.Table, dataset: pa.Table | None) -> None:
    """An imported unknown set in one transaction: its videos and faces (those the store lacks), the
    run's embeddings, predictions and map points of it, and — when new — its `datasets` row, which marks
    the set complete (as `engine.store.analyses.write_analysis` does for an analysed one)."""
    with store.transaction() as con:
        _insert_new(con, "videos", videos)
        _insert_new(con, "faces", faces)
        _insert_new(con, "face_videos", statuses)
        store.insert("embeddings", embeddings, replace=True, con=con)
        for t in predictions:
            store.insert("predictions", t, replace=True, con=con)
        store.insert("projection_points", points, replace=True, con=con)
        if dataset is not None:
            store.insert("datasets", dataset, con=con)
