"""Listing and removing analysed sets: their store rows (engine.store.analyses) and their crop files."""

from __future__ import annotations

import pandas as pd

from ..store import Store
from ..store import analyses as set_table
from .paths import ROLE, UNKNOWN_DB, AnalysisError


def list_analyses(store: Store, run_id: str | None = None) -> pd.DataFrame:
    """Analysed unknown sets (with the runs that analysed them), newest first."""
    return set_table.list_sets(store, ROLE, run_id)


def set_state(store: Store, dataset: str, run_id: str) -> dict:
    """complete, source, n_videos, analysed_by_run of a set (see `engine.store.analyses.set_state`)."""
    return set_table.set_state(store, dataset, run_id)


def delete_set(workspace, dataset: str, run_id: str | None = None) -> dict:
    """Remove an unknown set from the store (and its crop files).

    With `run_id`, only that run's embeddings, predictions and map points go;
    without, everything: every run's rows, the face rows, the videos, the
    `datasets` row and the crop files. One transaction; files after commit.
    """
    if not dataset.startswith(f"{UNKNOWN_DB}/"):
        raise AnalysisError(f"{dataset!r} is not an unknown set (unknown/<name>); refusing to delete it")
    counts, crop_paths = set_table.delete_set_rows(workspace.store(), dataset, run_id)
    if crop_paths:
        remove_crops(workspace, crop_paths)
    return counts


def remove_crops(workspace, crop_paths: list[str]) -> None:
    """Delete crop files (inside the workspace's faces folder only) and prune the folders left empty."""
    root = workspace.root.resolve()
    faces_root = workspace.faces_dir.resolve()
    dirs = set()
    for rel in crop_paths:
        p = (root / rel).resolve()
        if faces_root not in p.parents:  # never delete outside the workspace's faces folder
            continue
        try:
            p.unlink()
        except FileNotFoundError:
            pass
        dirs.add(p.parent)
    # prune now-empty folders up to faces/<settings_key>
    for d in sorted(dirs, key=lambda x: len(x.parts), reverse=True):
        while d != faces_root and faces_root in d.parents and len(d.relative_to(faces_root).parts) > 1:
            try:
                d.rmdir()
            except OSError:
                break
            d = d.parent
