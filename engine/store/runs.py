"""Runs and their epochs: the rows `engine.runs.RunRecord` is read from, and the training writers."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from .connection import Store

RUNS_SCHEMA = pa.schema([
    ("run_id", pa.string()), ("approach", pa.string()), ("backbone", pa.string()), ("config_json", pa.string()),
    ("config_hash", pa.string()), ("classes", pa.list_(pa.string())), ("taxonomy_json", pa.string()),
    ("settings_key", pa.string()), ("embedding_dim", pa.int32()), ("pretrained_source", pa.string()),
    ("seed", pa.int32()), ("status", pa.string()), ("message", pa.string()), ("best_epoch", pa.int32()),
    ("epochs_done", pa.int32()), ("synthetic", pa.bool_()), ("train_seconds", pa.float64()),
    ("timings_json", pa.string()), ("code_revision", pa.string()), ("versions_json", pa.string()),
])
EPOCHS_SCHEMA = pa.schema([
    ("run_id", pa.string()), ("epoch", pa.int32()), ("train_loss", pa.float64()), ("val_loss", pa.float64()),
    ("val_accuracy", pa.float64()), ("seconds", pa.float64()), ("images_per_s", pa.float64()),
])


def run_rows(store: Store, run_ids=None) -> pd.DataFrame:
    """Every column of `runs` (or of `run_ids` only), oldest first."""
    if run_ids is None:
        return store.df("SELECT * FROM runs ORDER BY created_at, run_id")
    return store.df("SELECT * FROM runs WHERE run_id IN (SELECT unnest(?)) ORDER BY created_at, run_id",
                    [list(run_ids)])


def run_listing(store: Store) -> pd.DataFrame:
    """One row per run, oldest first: run_id, approach, backbone, status, best_epoch, epochs_done,
    embedding_dim, synthetic, created_at, classifiers (those with predictions, sorted), maps (how many),
    n_embedded (faces)."""
    return store.df("""
        SELECT r.run_id, r.approach, r.backbone, r.status, r.best_epoch, r.epochs_done, r.embedding_dim,
               r.synthetic, r.created_at,
               coalesce((SELECT list(DISTINCT p.classifier ORDER BY p.classifier) FROM predictions p
                         WHERE p.run_id = r.run_id), []) AS classifiers,
               (SELECT count(*) FROM projections m WHERE m.run_id = r.run_id) AS maps,
               (SELECT count(*) FROM embeddings e WHERE e.run_id = r.run_id) AS n_embedded
        FROM runs r ORDER BY r.created_at, r.run_id""")


def run_ids_with_status(store: Store) -> pd.DataFrame:
    """run_id and status of every run (for 'unknown run' messages)."""
    return store.df("SELECT run_id, status FROM runs ORDER BY run_id")


def write_run(store: Store, row: dict, created_at) -> None:
    """Replace a run's row (one transaction); `created_at` keeps the first training's time."""
    table = pa.Table.from_pylist([row], schema=RUNS_SCHEMA)
    with store.transaction() as con:
        con.execute("DELETE FROM runs WHERE run_id = ?", [row["run_id"]])
        store.insert("runs", table, con=con)
        con.execute("UPDATE runs SET updated_at = current_timestamp, created_at = ? WHERE run_id = ?",
                    [created_at, row["run_id"]])


def write_epoch(store: Store, row: dict) -> None:
    """One epoch's training record (replacing a resumed epoch's)."""
    store.insert("epochs", pa.Table.from_pylist([row], schema=EPOCHS_SCHEMA), replace=True)


def discard_run_results(store: Store, run_id: str) -> dict[str, int]:
    """Everything computed from a run's weights — epochs, embeddings, classifiers, predictions, maps and
    their points — deleted in one transaction (a retrain: the new weights make them stale); the `runs`
    row stays for the new training to replace. Returns the rows deleted per table."""
    counts = {}
    with store.transaction() as con:
        maps = "SELECT projection_id FROM projections WHERE run_id = ?"
        for table, where in (("projection_points", f"projection_id IN ({maps})"), ("projections", "run_id = ?"),
                             ("predictions", "run_id = ?"), ("classifiers", "run_id = ?"),
                             ("embeddings", "run_id = ?"), ("epochs", "run_id = ?")):
            counts[table] = con.execute(f"SELECT count(*) FROM {table} WHERE {where}", [run_id]).fetchall()[0][0]
            con.execute(f"DELETE FROM {table} WHERE {where}", [run_id])
    return counts


def set_status(store: Store, run_id: str, status: str, message: str | None) -> None:
    """A run's status and message (a retrain marks the old row before its folder is trained anew)."""
    store.execute("UPDATE runs SET status = ?, message = ?, updated_at = current_timestamp WHERE run_id = ?",
                  [status, message, run_id])


def set_embedding_dim(store: Store, run_id: str, dim: int) -> None:
    store.execute("UPDATE runs SET embedding_dim = coalesce(embedding_dim, ?) WHERE run_id = ?", [dim, run_id])


def epoch_rows(store: Store) -> pd.DataFrame:
    return store.df("SELECT * FROM epochs ORDER BY run_id, epoch")
