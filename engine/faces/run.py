"""Face extraction for an experiment config (what `dfatlas faces` runs)."""

from __future__ import annotations

import sys

import pyarrow as pa

from data_catalog.errors import AtlasError

from .pipeline import FaceSummary, extract_faces


def videos_for_config(cfg, workspace, db: str | None = None, split: str | None = None) -> pa.Table:
    """The config's videos recorded in the store (video_id, path, true_class, dataset)."""
    names = [db] if db else list(cfg.sources.databases)
    if db:
        cfg.source(db)  # ConfigError naming the known databases
    if not names:
        raise AtlasError(f"{cfg.path}: [sources] lists no databases")
    store = workspace.store()
    ids = pa.table({"database": pa.array(names, pa.string())})
    sql = ("SELECT video_id, path, true_class, dataset FROM videos "
           "WHERE database IN (SELECT database FROM _dbs) {split} ORDER BY video_id")
    return store.arrow(sql.format(split="AND split = ?" if split else ""), [split] if split else None,
                       tables={"_dbs": ids})


def _record_catalog(cfg, workspace, db: str | None) -> None:
    """Scan the config's databases into the store (the catalog step) when nothing is recorded."""
    try:
        from engine.catalog import record_catalog
    except ImportError:
        raise AtlasError(
            "no videos recorded for this config yet: run `dfatlas catalog show --config CONFIG` first") from None
    print("no videos recorded for this config yet: recording the catalog first ...", file=sys.stderr, flush=True)
    record_catalog(cfg, workspace, databases=[db] if db else None)


def extract_for_config(cfg, workspace, db: str | None = None, split: str | None = None,
                       workers: int | None = None, executor: str = "process", progress: bool = True,
                       limit: int | None = None) -> tuple[FaceSummary, pa.Table]:
    """Faces for the config's databases (optionally one database / one split).

    Returns the summary and the videos it covered (for per-class tables).
    """
    workspace.ensure()
    videos = videos_for_config(cfg, workspace, db, split)
    if videos.num_rows == 0:
        _record_catalog(cfg, workspace, db)
        videos = videos_for_config(cfg, workspace, db, split)
        if videos.num_rows == 0:
            where = f"database {db!r}" if db else "the configured databases"
            raise AtlasError(f"no videos found in {where}" + (f" for split {split!r}" if split else "")
                             + ": check the [sources] roots in " + str(cfg.path))
    summary = extract_faces(workspace, videos, cfg.faces, workers=workers, executor=executor,
                            progress=progress, limit=limit)
    return summary, videos


def faces_for(store, settings_key: str, video_ids=None, columns: str = "face_id, video_id, frame_index, crop_path, score, detector") -> pa.Table:
    """The `faces` rows of one settings key (thumbnails left out), optionally for some videos."""
    sql = f"SELECT {columns} FROM faces WHERE settings_key = ? {{filter}} ORDER BY video_id, frame_index"
    if video_ids is None:
        return store.arrow(sql.format(filter=""), [settings_key])
    ids = pa.table({"video_id": pa.array(list(video_ids), pa.string())})
    return store.arrow(sql.format(filter="AND video_id IN (SELECT video_id FROM _wanted)"), [settings_key],
                       tables={"_wanted": ids})
