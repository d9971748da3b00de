"""Dashboard benchmark: script run time after a widget change with data cached (AppTest), the map's
payload, and a real browser's time to first plot, at N points (default 50,000).

    .venv/bin/python bench/bench_dashboard.py [--points 50000] [--no-browser]

Targets (issue 7): rerun after a widget change <= 0.5 s, figure payload <= 6 MB.
Baseline in the same run: the same map drawn the obvious way with plotly express
(`px.scatter(..., render_mode="webgl", hover_data=...)`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


ALL_SETS = ("synth-a/test", "synth-b/test", "synth-x/test", "unknown/mystery")  # every map point of the fixture


def apptest_figures(ws: Path, repeats: int) -> dict:
    os.environ["DFATLAS_WORKSPACE"] = str(ws)
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=600)
    at.query_params["db"] = list(ALL_SETS)
    t = time.perf_counter()
    at.run()
    cold = time.perf_counter() - t
    assert not at.exception, [e.value for e in at.exception]
    chart = next(c for c in at.get("plotly_chart") if c.proto.id.endswith("-map"))
    payload = len(chart.proto.spec.encode())
    n_points = sum(len(t.get("x", {}).get("bdata", "")) * 3 // 4 // 4 if isinstance(t.get("x"), dict)
                   else len(t.get("x") or []) for t in json.loads(chart.proto.spec)["data"]
                   if t.get("showlegend") is False)
    n_traces = len(json.loads(chart.proto.spec)["data"])

    def radio(label):
        return next(w for w in at.sidebar.radio if w.label == label)

    changes = [("Colour by", m) for m in ("true", "correct", "database", "pred")] + \
              [("Level", lv) for lv in ("frame", "video")]
    first, cached = [], []
    for round_ in range(1 + repeats):
        for label, value in changes:
            t = time.perf_counter()
            radio(label).set_value(value).run()
            dt = time.perf_counter() - t
            assert not at.exception, [e.value for e in at.exception]
            (first if round_ == 0 else cached).append(dt)
    t = time.perf_counter()
    at.run()
    plain = time.perf_counter() - t
    return {"cold_s": cold, "first_change_s": statistics.median(first), "cached_median_s": statistics.median(cached),
            "cached_max_s": max(cached), "plain_rerun_s": plain, "payload_bytes": payload, "n_traces": n_traces,
            "n_points": n_points}


def baseline_payload(ws: Path) -> dict:
    """The obvious plotly-express map of the same points, for the ratio."""
    import plotly.express as px

    from dashboard import queries
    from engine.store import Store

    path = str(ws / "atlas.duckdb")
    sig = queries.signature(path)
    ov = queries.overview(path, sig)
    run = ov["runs"].iloc[1]
    datasets = ALL_SETS
    pts = queries.map_points(path, sig, run["run_id"], "native", datasets, "video")
    t = time.perf_counter()
    fig = px.scatter(pts, x="x", y="y", color="pred", symbol="true_class", render_mode="webgl",
                     hover_data=["video_id", "true_class", "pred", "real_score"])
    spec = fig.to_json()
    build = time.perf_counter() - t
    from dashboard.figures import ClassStyle, map_figure

    t = time.perf_counter()
    ours, _rows = map_figure(pts, ClassStyle.for_run(run["classes"], run["taxonomy_json"]), "pred")
    ours_spec = ours.to_json()
    ours_build = time.perf_counter() - t
    del Store
    return {"points": len(pts), "px_bytes": len(spec.encode()), "px_build_s": build,
            "ours_bytes": len(ours_spec.encode()), "ours_build_s": ours_build}


def browser_first_plot(ws: Path) -> dict | None:
    from testkit.browser import browser_available, chromium_page, dashboard_server, wait_for_map

    why = browser_available()
    if why:
        print(f"browser: skipped ({why})")
        return None
    out = {}
    with dashboard_server(ws) as url, chromium_page() as page:
        for name in ("cold", "warm"):
            t = time.perf_counter()
            page.goto(url + "/?" + "&".join(f"db={d}" for d in ALL_SETS), timeout=120000)
            wait_for_map(page, timeout_ms=180000)
            out[f"{name}_first_plot_s"] = time.perf_counter() - t
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=50000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-browser", action="store_true")
    args = ap.parse_args()
    from testkit.dashboard_store import build_fixture_store

    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        t = time.perf_counter()
        build_fixture_store(ws, n_points=args.points)
        print(f"fixture store: {args.points:,} map points per run, 4 runs, built in {time.perf_counter() - t:.1f} s")
        base = baseline_payload(ws)
        print(f"map figure ({base['points']:,} points, all four sets): ours {base['ours_bytes'] / 1e6:.2f} MB "
              f"built+serialised in {base['ours_build_s']:.2f} s; plotly-express baseline "
              f"{base['px_bytes'] / 1e6:.2f} MB in {base['px_build_s']:.2f} s "
              f"(payload ratio baseline/ours {base['px_bytes'] / base['ours_bytes']:.1f}x)")
        r = apptest_figures(ws, args.repeats)
        print(f"AppTest: cold first run {r['cold_s']:.2f} s; first change of each widget (points cached, figure "
              f"built) median {r['first_change_s']:.2f} s; widget change with everything cached: median "
              f"{r['cached_median_s']:.3f} s, max {r['cached_max_s']:.3f} s (target <= 0.5 s); plain rerun "
              f"{r['plain_rerun_s']:.3f} s; cold/cached ratio {r['cold_s'] / r['cached_median_s']:.0f}x")
        print(f"payload sent for the map: {r['payload_bytes'] / 1e6:.2f} MB, {r['n_points']:,} points in "
              f"{r['n_traces']} traces "
              f"(target <= 6 MB)")
        if not args.no_browser:
            b = browser_first_plot(ws)
            if b:
                print(f"browser (headless Chromium): time to first plot cold {b['cold_first_plot_s']:.1f} s "
                      f"(includes the first queries), warm {b['warm_first_plot_s']:.1f} s")


if __name__ == "__main__":
    main()
