"""The analyst's tools: what the user waits for, as ratios against a baseline measured in the same run.

    .venv/bin/python bench/bench_analyst.py [--points 20000] [--repeat 3]

On a fixture store (`testkit.dashboard_store`: four runs, two super-set databases, a cross-db set and an
unknown set of about `points` x 12 % faces):
1. `engine.evaluation.metrics_table` (every run and classifier, video level) under each video
   aggregation, as a ratio to the default mean (the one engine function, `engine.metrics.video_level`);
2. one video's drill-down (`engine.analysis.video_drilldown`: faces, verdict, nearest identities, map
   position) — cold (open-set calibration included) and with the calibration reused;
3. the case report of the unknown set (`engine.analysis.case_report_html`): seconds, bytes, per video,
   against building the same set's report alone (`engine.analysis.build_report`).
Prints the load average next to the figures (the machine is shared).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def timed(fn, repeat: int) -> float:
    """Median seconds of `repeat` calls."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from engine.analysis import analysed_files, build_report, calibrate_open_set, case_report_html, video_drilldown
    from engine.evaluation import metrics_table
    from engine.metrics import AGGREGATIONS
    from engine.runs import read_run
    from engine.store import Store
    from testkit.dashboard_store import build_fixture_store, run_ids

    with tempfile.TemporaryDirectory(prefix="analyst-bench-") as tmp:
        t0 = time.perf_counter()
        path = build_fixture_store(Path(tmp) / "ws", n_points=args.points)
        print(f"fixture store: {args.points} map points in {time.perf_counter() - t0:.1f} s")
        store = Store(path, read_only=True)
        print(f"load average before: {os.getloadavg()}")

        metrics_table(store, classifiers="all")  # warm-up: imports, first open
        base = timed(lambda: metrics_table(store, classifiers="all"), args.repeat)
        print(f"\n1. metrics_table, every run and classifier, video level — mean: {base:.3f} s")
        for agg in AGGREGATIONS[1:]:
            t = timed(lambda a=agg: metrics_table(store, classifiers="all", aggregation=a), args.repeat)
            print(f"   {agg:9s}: {t:.3f} s  ({t / base:.2f} x mean)")

        rid = run_ids()["triplet"]
        run = read_run(store, rid)
        videos = analysed_files(store, "unknown/mystery")["video_id"]
        sample = videos.iloc[:: max(1, len(videos) // 5)].head(5).tolist()
        cold = timed(lambda: video_drilldown(store, rid, sample[0]), 1)
        osm = calibrate_open_set(store, run)
        warm = statistics.median(timed(lambda v=v: video_drilldown(store, rid, v, osm=osm), 1) for v in sample)
        print(f"\n2. one video's drill-down: cold {cold:.3f} s (open-set calibration included); "
              f"calibration reused {warm:.3f} s ({warm / cold:.2f} x cold)")

        rep_s = timed(lambda: build_report(store, rid, "unknown/mystery"), 1)
        html = []
        case_s = timed(lambda: html.append(case_report_html(store, rid, "unknown/mystery")), 1)
        n = len(videos)
        print(f"\n3. case report of {n} videos ({args.points * 12 // 100} faces about): {case_s:.2f} s, "
              f"{len(html[-1].encode()) / 1e6:.2f} MB, {1000 * case_s / n:.1f} ms per video; "
              f"the report alone {rep_s:.2f} s ({case_s / rep_s:.2f} x)")
        print(f"\nload average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
