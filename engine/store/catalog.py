"""The catalog's tables (`videos`, `datasets`, `catalog_problems`): one Arrow builder per table,
the one writer `engine.catalog` records through, and the readers of recorded videos.

A video kept once for several databases (FF++ originals that are also
HifiFace / DeeperForensics reals) lists the other datasets in
`videos.also_in`; the view `video_datasets` gives every (video, dataset)
membership, so "every video of dataset X" reads it.
"""

from __future__ import annotations

import os
from typing import Sequence

import pyarrow as pa

from data_catalog.names import path_to_text, printable

from .connection import Store

VIDEO_COLUMNS = ("video_id", "path", "true_class", "dataset")


def _text(value):
    """A name from the file system (str, Path, bytes, or None) as stored text."""
    return None if value is None else path_to_text(value if isinstance(value, (str, bytes, os.PathLike)) else str(value))


def videos_table(records: Sequence, synthetic: bool | Sequence[bool] = False,
                 also_in: dict[str, list[str]] | None = None) -> pa.Table:
    """`videos` rows for `VideoRecord`s; `synthetic` is one flag or one per record, `also_in`
    maps a kept video id to the other datasets that claim the same file in the same split.
    Paths and names taken from the file system are stored as `data_catalog.names.path_to_text`
    (valid UTF-8, reversible: the faces stage opens `text_to_path(path)`)."""
    n = len(records)
    also_in = also_in or {}
    flags = [bool(synthetic)] * n if isinstance(synthetic, bool) else [bool(s) for s in synthetic]
    return pa.table({
        "video_id": pa.array([r.video_id for r in records], pa.string()),
        "database": pa.array([r.database for r in records], pa.string()),
        "split": pa.array([r.split for r in records], pa.string()),
        "dataset": pa.array([r.dataset for r in records], pa.string()),
        "relpath": pa.array([_text(r.relpath) for r in records], pa.string()),
        "path": pa.array([_text(r.path) for r in records], pa.string()),
        "true_class": pa.array([r.true_class for r in records], pa.string()),
        "is_fake": pa.array([r.is_fake for r in records], pa.bool_()),
        "identity": pa.array([_text(r.identity) for r in records], pa.string()),
        "method": pa.array([_text(r.method) for r in records], pa.string()),
        "source_ids": pa.array([[_text(s) for s in r.source_ids] for r in records], pa.list_(pa.string())),
        "synthetic": pa.array(flags, pa.bool_()),
        "also_in": pa.array([also_in.get(r.video_id) for r in records], pa.list_(pa.string())),
    })


def datasets_table(dataset, database, split, role, labelled, synthetic, source) -> pa.Table:
    """`datasets` rows, one per entry of the (equal-length) columns."""
    return pa.table({
        "dataset": pa.array(list(dataset), pa.string()), "database": pa.array(list(database), pa.string()),
        "split": pa.array(list(split), pa.string()), "role": pa.array(list(role), pa.string()),
        "labelled": pa.array(list(labelled), pa.bool_()), "synthetic": pa.array(list(synthetic), pa.bool_()),
        "source": pa.array(list(source), pa.string()),
    })


def problems_table(problems: Sequence) -> pa.Table:
    """`catalog_problems` rows for (database, `data_catalog.databases.Problem`) pairs; the path
    as stored text (`path_to_text`), the message on one line (`printable`)."""
    return pa.table({
        "database": pa.array([db for db, _ in problems], pa.string()),
        "kind": pa.array([p.kind for _, p in problems], pa.string()),
        "path": pa.array([_text(p.path) for _, p in problems], pa.string()),
        "message": pa.array([printable(p.message) for _, p in problems], pa.string()),
    })


# --- writing ------------------------------------------------------------------------

def replace_catalog(store: Store, videos: pa.Table, datasets: pa.Table, problems: pa.Table,
                    databases: Sequence[str] = (), dataset_names: Sequence[str] = (), con=None) -> None:
    """Replace every catalog row of `databases` (videos, datasets, problems) and the videos and
    datasets rows of `dataset_names`, then write the new rows — in one transaction (pass `con`
    to write inside an open `store.transaction()`)."""
    if con is None:
        with store.transaction() as own:
            return replace_catalog(store, videos, datasets, problems, databases, dataset_names, own)
    if databases:
        dbs = [list(databases)]
        con.execute("DELETE FROM videos WHERE database IN (SELECT unnest(?::VARCHAR[]))", dbs)
        con.execute("DELETE FROM datasets WHERE database IN (SELECT unnest(?::VARCHAR[]))", dbs)
        con.execute("DELETE FROM catalog_problems WHERE database IN (SELECT unnest(?::VARCHAR[]))", dbs)
    if dataset_names:
        names = [list(dataset_names)]
        con.execute("DELETE FROM videos WHERE dataset IN (SELECT unnest(?::VARCHAR[]))", names)
        con.execute("DELETE FROM datasets WHERE dataset IN (SELECT unnest(?::VARCHAR[]))", names)
    store.insert("videos", videos, replace=True, con=con)
    store.insert("datasets", datasets, replace=True, con=con)
    store.insert("catalog_problems", problems, con=con)


# --- reading ------------------------------------------------------------------------

def databases_recorded(store: Store, databases) -> int:
    """How many of `databases` have videos in the store."""
    return int(store.scalar("SELECT count(DISTINCT database) FROM videos WHERE database IN "
                            "(SELECT unnest(?::VARCHAR[]))", [list(databases)]) or 0)


def video_rows(store: Store, databases=None, split: str | None = None, dataset: str | None = None) -> pa.Table:
    """video_id, path, true_class, dataset of the recorded videos, by video_id: of `databases`
    (every database when None), of one `split` and / or one `dataset` when given."""
    return store.arrow("""
        SELECT video_id, path, true_class, dataset FROM videos
        WHERE (?::VARCHAR[] IS NULL OR database IN (SELECT unnest(?::VARCHAR[])))
          AND (?::VARCHAR IS NULL OR split = ?) AND (?::VARCHAR IS NULL OR dataset = ?)
        ORDER BY video_id""",
                       [None if databases is None else list(databases)] * 2 + [split, split, dataset, dataset])


def dataset_databases(store: Store, role: str) -> list[str]:
    """Databases recorded in the catalog with `role` (superset / cross_db / unknown)."""
    return store.df("SELECT DISTINCT database FROM datasets WHERE role = ? ORDER BY 1", [role]).database.tolist()
