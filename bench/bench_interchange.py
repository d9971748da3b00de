"""Export / import benchmark: a run's embeddings out as Parquet, and a detector's embeddings file in.

    .venv/bin/python bench/bench_interchange.py [--videos 20000] [--frames 5] [--dim 64]

1. Read and check an embedding file (`engine.embedding_file.read_embedding_file` + `store_rows`) against
   the bare `pyarrow.parquet.read_table` of the same file (the floor).
2. Import it as an external run (`engine.embedding_import.import_run`, no map) with the classifiers left
   out — their cost is `dfatlas classify`'s, the same for any run — against the bare Arrow insert of the
   same embeddings into the store (`engine.store.embeddings.write_embeddings`).
3. Export the run's embeddings (`engine.export.export_run`, Parquet) against `pyarrow.parquet.write_table`
   of the table it writes.
Prints seconds, ratios to the baselines and the load average (the machine is shared: compare ratios).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_file(path: Path, n_videos: int, frames: int, dim: int) -> int:
    from engine.store import matrix_to_arrow

    rng = np.random.default_rng(0)
    classes = np.array(["real", "fa", "fb", "fc"])
    kind = rng.integers(0, 4, n_videos)
    db = np.where(np.arange(n_videos) % 5 == 0, "cross", "sup")
    split = np.where(db == "cross", "test", np.array(["train", "val", "test"])[np.arange(n_videos) % 3])

    def rep(a):
        return np.repeat(a, frames)

    cls = rep(classes[kind])
    X = (rng.normal(0, 1, (n_videos * frames, dim)) + np.eye(4, dim)[rep(kind)] * 2).astype(np.float32)
    pq.write_table(pa.table({
        "video_id": rep(np.char.add("v", np.arange(n_videos).astype(str))),
        "frame_index": np.tile(np.arange(frames), n_videos), "database": rep(db), "split": rep(split),
        "label": np.where(cls == "real", "real", "fake"), "true_class": cls,
        "identity": rep(np.char.add("p", (np.arange(n_videos) % 997).astype(str))), "embedding": matrix_to_arrow(X),
    }), path)
    return len(X)


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", type=int, default=20000)
    p.add_argument("--frames", type=int, default=5)
    p.add_argument("--dim", type=int, default=64)
    args = p.parse_args(argv)

    import engine.classify
    from engine.embedding_file import read_embedding_file, store_rows
    from engine.embedding_import import import_run
    from engine.export import embeddings_table, export_run
    from engine.store import Store
    from engine.store.embeddings import embeddings_table as raw_embeddings, write_embeddings
    from engine.workspace import resolve_workspace

    engine.classify.classify_run = lambda *a, **k: []  # leave the classifiers out (see the docstring)
    with tempfile.TemporaryDirectory(prefix="bench-interchange-") as tmp:
        tmp = Path(tmp)
        n = make_file(tmp / "in.parquet", args.videos, args.frames, args.dim)
        base_read, table = timed(lambda: pq.read_table(tmp / "in.parquet"))
        ours_read, _ = timed(lambda: store_rows(read_embedding_file(tmp / "in.parquet"), "x"))
        floor = Store(tmp / "floor.duckdb")
        X = np.asarray(table["embedding"].combine_chunks().flatten(), dtype=np.float32).reshape(n, -1)
        base_write, _ = timed(lambda: write_embeddings(floor, raw_embeddings(
            "r", [f"f{i}" for i in range(n)], ["d"] * n, X)))
        ws = resolve_workspace(tmp / "ws").ensure()
        ours_import, summary = timed(lambda: import_run(ws, tmp / "in.parquet", project=False))
        store = ws.store(read_only=True)
        out_table = embeddings_table(store, summary.run_id)
        base_export, _ = timed(lambda: pq.write_table(out_table, tmp / "floor.parquet"))
        ours_export, _ = timed(lambda: export_run(store, summary.run_id, tmp / "out", tables=("embeddings",)))
    load = os.getloadavg()[0]
    print(f"{n:,} faces of {args.videos:,} videos, {args.dim}-d (load average {load:.1f})")
    print(f"read + check   {ours_read:6.2f} s   pq.read_table {base_read:6.2f} s   ratio {ours_read / base_read:5.1f}")
    print(f"import (write) {ours_import:6.2f} s   bare insert   {base_write:6.2f} s   ratio {ours_import / base_write:5.1f}")
    print(f"export         {ours_export:6.2f} s   pq.write      {base_export:6.2f} s   ratio {ours_export / base_export:5.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
