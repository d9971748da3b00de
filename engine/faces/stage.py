"""The faces stage for an experiment config (what `dfatlas faces` and `engine.pipeline.faces_stage` run)."""

from __future__ import annotations

import sys

import pyarrow as pa

from data_catalog.errors import AtlasError

from ..catalog import record_catalog
from ..store.catalog import video_rows
from .driver import FaceSummary, extract_faces


def videos_for_config(cfg, workspace, db: str | None = None, split: str | None = None) -> pa.Table:
    """The config's videos recorded in the store (video_id, path, true_class, dataset)."""
    if db:
        cfg.source(db)  # ConfigError naming the known databases
    names = [db] if db else list(cfg.sources.databases)
    if not names:
        raise AtlasError(f"{cfg.path}: [sources] lists no databases")
    return video_rows(workspace.store(), names, split=split)


def extract_for_config(cfg, workspace, db: str | None = None, split: str | None = None,
                       workers: int | None = None, executor: str = "process", progress: bool = True,
                       limit: int | None = None, verify: bool = False) -> tuple[FaceSummary, pa.Table]:
    """Faces for the config's databases (optionally one database / one split); when the store
    has none of their videos yet, the catalog is recorded first.

    Returns the summary and the videos it covered (for per-class tables). `verify`: decode every crop
    of the videos believed done, not only check that it is there.
    """
    workspace.ensure()
    videos = videos_for_config(cfg, workspace, db, split)
    if videos.num_rows == 0:
        print("no videos recorded for this config yet: recording the catalog first ...", file=sys.stderr, flush=True)
        record_catalog(cfg, workspace, databases=[db] if db else None)
        videos = videos_for_config(cfg, workspace, db, split)
        if videos.num_rows == 0:
            where = f"database {db!r}" if db else "the configured databases"
            raise AtlasError(f"no videos found in {where}" + (f" for split {split!r}" if split else "")
                             + ": check the [sources] roots in " + str(cfg.path))
    summary = extract_faces(workspace, videos, cfg.faces, workers=workers, executor=executor,
                            progress=progress, limit=limit, verify=verify)
    return summary, videos
