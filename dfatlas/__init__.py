"""The Deepfake Attribution Atlas from Python: a thin API over the engine for notebooks.

Every call is the engine function the matching `dfatlas` command (or dashboard page) uses, so a
notebook and the command line give the same numbers::

    import dfatlas

    atlas = dfatlas.open("dfatlas-workspace")        # read-only; `dfatlas demo` makes one
    atlas.runs()                                     # DataFrame: what `dfatlas runs` lists
    atlas.metrics(level="video")                     # tidy Tables 1/2: `dfatlas evaluate --format csv`
    atlas.table("same-db")                           # Table 1 in the paper's layout (%)
    faces, X = atlas.embeddings(run_id, "synth-alpha/test")
    atlas.map(run_id, colour="pred")                 # plotly figure, the dashboard's colours and markers
    atlas.export(run_id, "exports/")                 # Parquet files: `dfatlas export`

    atlas = dfatlas.open("dfatlas-workspace", writable=True)
    report = atlas.analyze(run_id, "suspicious/", name="case-42")   # `dfatlas analyze`, under the lock
    report.class_shares, report.videos                               # the report's DataFrames

Nothing in `engine/` or `dashboard/` imports this package.
"""

from __future__ import annotations

from .atlas import MAP_POINTS, Atlas, open

__all__ = ["Atlas", "MAP_POINTS", "open"]
