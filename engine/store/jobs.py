"""Background jobs (`jobs`): the Arrow builder, the writers a job's process keeps its row current
with, and the readers the dashboard polls (`engine.jobs` is the process side)."""

from __future__ import annotations

import json

import pyarrow as pa

from .connection import Store


def jobs_table(job_id: str, kind: str, params: dict | None, pid: int, status: str = "running",
               message: str = "starting") -> pa.Table:
    """One `jobs` row at progress 0 (its parameters as JSON)."""
    return pa.table({"job_id": pa.array([job_id], pa.string()), "kind": pa.array([kind], pa.string()),
                     "status": pa.array([status], pa.string()), "progress": pa.array([0.0], pa.float64()),
                     "message": pa.array([message], pa.string()),
                     "params_json": pa.array([json.dumps(params or {}, default=str)], pa.string()),
                     "pid": pa.array([pid], pa.int32())})


def write_job(store: Store, row: pa.Table) -> None:
    """Insert a job's row, replacing any earlier row of the same id (one transaction)."""
    with store.transaction() as con:
        con.execute("DELETE FROM jobs WHERE job_id = ?", [row.column("job_id")[0].as_py()])
        store.insert("jobs", row, con=con)


def update_progress(store: Store, job_id: str, fraction: float, message: str) -> None:
    """A running job's progress (0..1) and message."""
    store.execute("UPDATE jobs SET progress = ?, message = ?, updated_at = current_timestamp WHERE job_id = ?",
                  [fraction, message, job_id])


def finish(store: Store, job_id: str, ok: bool, message: str) -> None:
    """Mark a job finished (progress 1) or failed (progress kept), with its last message."""
    store.execute(
        "UPDATE jobs SET status = ?, progress = CASE WHEN ? THEN 1 ELSE progress END, message = ?, "
        "updated_at = current_timestamp, finished_at = current_timestamp WHERE job_id = ?",
        ["finished" if ok else "failed", ok, message, job_id])


def job_row(store: Store, job_id: str) -> dict | None:
    """A job's row (every column) as a dict, or None."""
    df = store.df("SELECT * FROM jobs WHERE job_id = ?", [job_id])
    return None if df.empty else df.iloc[0].to_dict()

