"""Catalog throughput on full-size layout trees (empty files).

Builds FaceForensics++ at its published size (1000 originals, 5 methods x
1000 fakes, official-size 360/70/70 pair splits), DeeperForensics-1.0 (1000
fakes x 2 variants, reals from the FF++ tree) and Celeb-DF v2 (590 real, 300
YouTube, 5639 fake), then times, in one run:

- baseline: `os.walk` listing every video file of the same trees;
- the adapters' scans (naming rules, splits, problems);
- `engine.catalog.collect` (scans + de-duplication by real path);
- `engine.catalog.record` (one transaction into a fresh DuckDB store).

    .venv/bin/python bench/bench_catalog.py [--tmp DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from data_catalog import paper_taxonomy  # noqa: E402
from data_catalog.databases import ADAPTERS  # noqa: E402
from engine import catalog  # noqa: E402
from engine.config import load_config  # noqa: E402
from engine.store import Store  # noqa: E402

METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter")


def touch(p: Path) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"")


def build(base: Path) -> dict[str, Path]:
    rng = random.Random(0)
    ids = [f"{i:03d}" for i in range(1000)]
    rng.shuffle(ids)
    pairs = [ids[i:i + 2] for i in range(0, 1000, 2)]
    splits = {"train": pairs[:360], "val": pairs[360:430], "test": pairs[430:]}
    ff = base / "ff"
    (ff / "splits").mkdir(parents=True)
    for s, ps in splits.items():
        (ff / "splits" / f"{s}.json").write_text(json.dumps(ps))
    for v in ids:
        touch(ff / "original_sequences/youtube/c23/videos" / f"{v}.mp4")
    for m in METHODS:
        for a, b in pairs:
            touch(ff / "manipulated_sequences" / m / "c23/videos" / f"{a}_{b}.mp4")
            touch(ff / "manipulated_sequences" / m / "c23/videos" / f"{b}_{a}.mp4")
    dfr = base / "dfr"
    names = [f"{i:03d}_M{100 + i % 100:03d}" for i in range(1000)]
    for variant in ("end_to_end", "reenact_postprocess"):
        for n in names:
            touch(dfr / "manipulated_videos" / variant / f"{n}.mp4")
    (dfr / "lists/splits").mkdir(parents=True)
    (dfr / "lists/splits/train.txt").write_text("\n".join(f"{n}.mp4" for n in names[:703]))
    (dfr / "lists/splits/val.txt").write_text("\n".join(f"{n}.mp4" for n in names[703:799]))
    (dfr / "lists/splits/test.txt").write_text("\n".join(f"{n}.mp4" for n in names[799:]))
    celeb = base / "celeb"
    for i in range(590):
        touch(celeb / "Celeb-real" / f"id{i % 59}_{i // 59:04d}.mp4")
    for i in range(300):
        touch(celeb / "YouTube-real" / f"{i:05d}.mp4")
    fakes = [f"id{i % 59}_id{(i * 7 + 1) % 59}_{i // 59:04d}.mp4" for i in range(5639)]
    for f in fakes:
        touch(celeb / "Celeb-synthesis" / f)
    lines = [f"1 Celeb-real/id{i % 59}_{i // 59:04d}.mp4" for i in range(0, 590, 5)]
    lines += [f"0 Celeb-synthesis/{f}" for f in fakes[::16]]
    (celeb / "List_of_testing_videos.txt").write_text("\n".join(lines) + "\n")
    return {"ff": ff, "dfr": dfr, "celeb": celeb}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tmp", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        base = Path(tmp)
        t0 = time.perf_counter()
        roots = build(base)
        print(f"built trees in {time.perf_counter() - t0:.1f} s")

        t0, c0 = time.perf_counter(), time.process_time()
        n_walk = sum(1 for r in roots.values() for _, _, fs in os.walk(r) for f in fs if f.endswith(".mp4"))
        walk_s, walk_cpu = time.perf_counter() - t0, time.process_time() - c0

        tax = paper_taxonomy()
        t0, c0 = time.perf_counter(), time.process_time()
        scans = [ADAPTERS["faceforensics"].scan(roots["ff"], name="faceforensics", options={}, taxonomy=tax),
                 ADAPTERS["deeperforensics"].scan(roots["dfr"], name="deeperforensics",
                                                  options={"ff_root": str(roots["ff"])}, taxonomy=tax),
                 ADAPTERS["celebdf"].scan(roots["celeb"], name="celebdf", options={}, taxonomy=tax)]
        scan_s, scan_cpu = time.perf_counter() - t0, time.process_time() - c0
        n_rec = sum(len(s.records) for s in scans)

        cfg_file = base / "exp.toml"
        cfg_file.write_text(
            '[sources]\nsuperset = ["faceforensics", "deeperforensics", "celebdf"]\n'
            f'[sources.faceforensics]\nroot = "{roots["ff"]}"\n'
            f'[sources.deeperforensics]\nroot = "{roots["dfr"]}"\nff_root = "{roots["ff"]}"\n'
            f'[sources.celebdf]\nroot = "{roots["celeb"]}"\n')
        cfg = load_config(cfg_file)
        t0, c0 = time.perf_counter(), time.process_time()
        report = catalog.collect(cfg)
        collect_s, collect_cpu = time.perf_counter() - t0, time.process_time() - c0
        store = Store(base / "atlas.duckdb")
        store.tables()  # create the schema outside the timing
        t0, c0 = time.perf_counter(), time.process_time()
        n = catalog.record(store, report, cfg)
        record_s, record_cpu = time.perf_counter() - t0, time.process_time() - c0
        t0 = time.perf_counter()
        catalog.record(store, report, cfg)
        rerecord_s = time.perf_counter() - t0

        print("(wall s / CPU s of this process; wall includes waiting for a busy machine)")
        print(f"video files on disk               : {n_walk}")
        print(f"baseline os.walk listing          : {walk_s:.3f} / {walk_cpu:.3f} s  ({n_walk / walk_s:,.0f} files/s)")
        print(f"adapter scans (3 databases)       : {scan_s:.3f} / {scan_cpu:.3f} s  ({n_rec:,} records, "
              f"{n_rec / scan_s:,.0f} rec/s; {scan_cpu / max(walk_cpu, 1e-9):.1f}x the listing's CPU)")
        print(f"collect (scans + dedup)           : {collect_s:.3f} / {collect_cpu:.3f} s  ({len(report.duplicates)} "
              f"duplicates, {len(report.split_conflicts)} split conflicts)")
        print(f"record into DuckDB (1 transaction): {record_s:.3f} / {record_cpu:.3f} s  ({n:,} videos, "
              f"{n / record_s:,.0f} rows/s)")
        print(f"re-record (replace same rows)     : {rerecord_s:.3f} s")


if __name__ == "__main__":
    main()
