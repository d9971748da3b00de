"""What the user waits for on the Explore map at scale, in headless Chromium (software WebGL), for the
browser map (dashboard.components.scatter_map) and the plotly map as baseline.

Stores of N faces are built through the engine's writers (testkit.scale_store). Per size and map:
first plot (warm server, fresh browser context, until the map reports its points drawn), a colour
change, a level change, a lasso (mouse-up to the selection panel), bytes over the websocket per step,
browser JS heap and server RSS, and the load average.

    nice python bench/bench_map_scale.py --sizes 100000 300000 --plotly-up-to 300000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from testkit.browser import chromium_page, dashboard_server  # noqa: E402
from testkit.scale_store import build_scale_store  # noqa: E402

FRAME = "dfatlas_scatter_map"


def _frame(page):
    return next((f for f in page.frames if FRAME in f.url), None)


def _wait(page, check, timeout=600):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            if check():
                return time.monotonic() - t0
        except Exception:
            pass
        page.wait_for_timeout(50)
    raise TimeoutError


def _drawn(page, seq_after=None):
    f = _frame(page)
    if f is None:
        return False
    m = f.evaluate("() => window.__dfatlasMap && [window.__dfatlasMap.drawn, window.__dfatlasMap.drawSeq]")
    return m and m[0] > 0 and (seq_after is None or m[1] > seq_after)


def _seq(page):
    return _frame(page).evaluate("() => window.__dfatlasMap.drawSeq")


def _plot_ready(page):
    return page.evaluate("() => { const g = document.querySelector('.js-plotly-plot'); "
                         "return !!(g && g._fullData && g._fullData.length); }")


def measure(url: str, kind: str) -> dict:
    out = {}
    with chromium_page(width=1500, height=1100) as page:
        received = []
        page.on("websocket", lambda ws: ws.on("framereceived", lambda d: received.append(len(d))))
        t0 = time.monotonic()
        page.goto(url + "/?level=frame", timeout=600000)
        if kind == "component":
            _wait(page, lambda: _drawn(page))
        else:
            _wait(page, lambda: _plot_ready(page))
            page.wait_for_timeout(500)
        out["first_plot_s"] = round(time.monotonic() - t0, 2)
        out["first_MB"] = round(sum(received) / 1e6, 2)
        page.wait_for_timeout(2000)

        def step(name, action, done):
            before = sum(received)
            t = time.monotonic()
            action()
            done()
            out[f"{name}_s"] = round(time.monotonic() - t, 2)
            page.wait_for_timeout(1500)
            out[f"{name}_MB"] = round((sum(received) - before) / 1e6, 3)

        for name, label in (("colour", "true class"), ("level", "video")):
            if kind == "component":
                s = _seq(page)
                step(name, lambda: page.get_by_text(label, exact=True).first.click(),
                     lambda: _wait(page, lambda: _drawn(page, s)))
            else:
                def changed():
                    page.wait_for_timeout(300)
                    _wait(page, lambda: page.locator("[data-testid=stStatusWidget]").count() == 0 and _plot_ready(page))
                step(name, lambda: page.get_by_text(label, exact=True).first.click(), changed)
        if kind == "component":
            box = page.locator(f'iframe[src*="{FRAME}"]').first.bounding_box()
            pts = [(box["x"] + fx * (box["width"] - 200), box["y"] + fy * box["height"])
                   for fx, fy in ((0.1, 0.1), (0.6, 0.1), (0.6, 0.9), (0.1, 0.9), (0.1, 0.1))]
            page.mouse.move(*pts[0])
            page.mouse.down()
            for p in pts[1:]:
                page.mouse.move(*p, steps=6)
            step("lasso", lambda: page.mouse.up(),
                 lambda: page.get_by_text("Selection:", exact=False).first.wait_for(timeout=600000))
            heap = _frame(page).evaluate("() => performance.memory ? performance.memory.usedJSHeapSize : 0")
        else:
            heap = page.evaluate("() => performance.memory ? performance.memory.usedJSHeapSize : 0")
        out["browser_heap_MB"] = round(heap / 2**20)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000])
    ap.add_argument("--plotly-up-to", type=int, default=300_000)
    ap.add_argument("--root", default="/tmp/dfatlas-bench-map")
    args = ap.parse_args()
    for n in args.sizes:
        ws = Path(args.root) / f"ws{n}"
        if not (ws / "atlas.duckdb").exists():
            t = time.monotonic()
            build_scale_store(ws, n)
            print(f"# built {n:,} faces in {time.monotonic() - t:.0f}s", flush=True)
        kinds = ["component"] + (["plotly"] if n <= args.plotly_up_to else [])
        for kind in kinds:
            if kind == "plotly":
                os.environ["DFATLAS_MAP"] = "plotly"
            else:
                os.environ.pop("DFATLAS_MAP", None)
            with dashboard_server(ws, timeout=300) as url:
                with chromium_page() as warm:  # warm the server's caches (the benchmark is a warm server)
                    warm.goto(url + "/?level=frame", timeout=600000)
                    warm.wait_for_timeout(3000)
                    try:
                        _wait(warm, lambda: _drawn(warm) or _plot_ready(warm))
                    except TimeoutError:
                        pass
                row = measure(url, kind)
                server = max((p.memory_info().rss for p in psutil.Process().children(recursive=True)
                              if "streamlit" in " ".join(p.cmdline())), default=0)
                row.update(faces=n, map=kind, server_rss_MB=round(server / 2**20),
                           load=[round(v, 2) for v in os.getloadavg()])
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
