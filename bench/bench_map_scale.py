"""What the user waits for on the Explore map at scale, in headless Chromium (software WebGL), for the
browser map (dashboard.components.scatter_map) and the plotly map as the baseline, in one run.

Stores of N faces are built through the engine's writers (testkit.scale_store: ten classes in clusters,
15 frames per video, unseen and unlabelled sets, thumbnails for at most 20,000 faces). Per size and map:

- first plot: warm server, a fresh browser (cold cache), from navigation until the map reports every
  point drawn (the component: its frame rendered and finished by the GPU; plotly: its traces drawn);
- a colour change, a classifier change, a level change (sidebar widgets): click until the map is redrawn
  ("map"), and until the page has settled (the rerun finished and every element is drawn: "page");
- a lasso (the component only): mouse-up until the selection panel shows;
- bytes received over the websocket per step, the browser's memory (the tab's renderer plus the GPU
  process, RSS) and the server's RSS; the load average with every figure.

Times are taken in the page where it can (the component's own Date.now() marks, a MutationObserver for the
panel, the navigation's timeOrigin), not by polling from here: polling a loaded machine added seconds.
Websocket bytes are counted in the page too (playwright's websocket events copy every frame's payload
through the DevTools protocol, which slowed the first load itself).

"Warm server": before the measured session, one browser session makes the same first plot and changes,
so per-store caches (the run's points, θ, the metrics table of each level) are filled as they are for
every user after the first; a cold server additionally pays those once per store version.

    nice python bench/bench_map_scale.py --sizes 100000 300000 1000000 --plotly-up-to 300000 --before DIR

`--before DIR`: a copy of the code before (e.g. `git archive <commit> | tar -x -C DIR`): its plotly page is the
baseline and its map component is measured too (up to --plotly-up-to), in the same run as this one's.
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
STEPS = (("colour", "true class"), ("classifier", "logistic regression"), ("level", "video"))


COUNT_WS = """(() => { window.__wsBytes = 0; const Native = window.WebSocket;
  window.WebSocket = function (...a) { const ws = new Native(...a); ws.addEventListener('message',
    (e) => { window.__wsBytes += e.data.byteLength || e.data.size || e.data.length || 0; }); return ws; };
  window.WebSocket.prototype = Native.prototype; Object.assign(window.WebSocket, Native); })();"""
# The time (epoch ms) the first element holding `text` appears (page side, no polling).
WATCH = """(text) => { window.__seenAt = null; const seen = () => [...document.querySelectorAll('h3, h2')]
  .some((h) => h.textContent.includes(text)); if (seen()) { window.__seenAt = Date.now(); return; }
  const o = new MutationObserver(() => { if (seen()) { window.__seenAt = Date.now(); o.disconnect(); } });
  o.observe(document.body, { childList: true, subtree: true, characterData: true }); }"""


def _frame(page):
    return next((f for f in page.frames if FRAME in f.url), None)


def _wait(page, check, timeout=900):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            if check():
                return time.monotonic() - t0
        except Exception:  # a frame being replaced
            pass
        page.wait_for_timeout(20)
    raise TimeoutError


def _monitor(page) -> dict | None:
    f = _frame(page)
    return f.evaluate("() => { const m = window.__dfatlasMap; return m && {drawn: m.drawn, seq: m.drawSeq, "
                      "marks: m.marks, decodeMs: m.decodeMs, frames: m.frames, times: m.times}; }") if f else None


def _drawn(page, seq_after=None) -> bool:
    m = _monitor(page)
    return bool(m and m["drawn"] > 0 and (seq_after is None or m["seq"] > seq_after))


def _plot_ready(page) -> bool:
    return page.evaluate("() => { const g = document.querySelector('.js-plotly-plot'); "
                         "return !!(g && g._fullData && g._fullData.length); }")


def _settled(page) -> bool:
    """The rerun has finished: no running indicator, no stale (faded) element."""
    return page.evaluate("() => !document.querySelector('[data-testid=stStatusWidget]') && "
                         "!document.querySelector('[data-stale=true]')")


def _choose(page, label):
    """Click a sidebar radio option, or pick `label` in the sidebar's classifier select box."""
    if label == "logistic regression":
        page.get_by_role("combobox", name="Classifier").click()
        page.get_by_role("option", name=label).click()
    else:
        page.locator("[data-testid=stSidebar]").get_by_text(label, exact=True).first.click()


def _browser_rss(browser_pid: int) -> int:
    """RSS of the browser's renderer and GPU processes (the tab's memory; one tab per browser here)."""
    try:
        procs = psutil.Process(browser_pid).children(recursive=True)
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        try:
            cmd = " ".join(p.cmdline())
            if "--type=renderer" in cmd or "--type=gpu-process" in cmd:
                total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def _cpu(pids) -> float:
    """CPU seconds (user + system) used so far by these processes and their children."""
    total = 0.0
    for pid in pids:
        try:
            procs = [psutil.Process(pid)] + psutil.Process(pid).children(recursive=True)
        except psutil.Error:
            continue
        for p in procs:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
    return total


def _chromium_pid() -> int:
    """The newest chromium browser process started by this benchmark."""
    me = psutil.Process()
    kids = [p for p in me.children(recursive=True) if "chromium" in p.name() and "--type=" not in " ".join(p.cmdline())]
    return max(kids, key=lambda p: p.create_time()).pid if kids else 0


def session(url: str, kind: str, server_pid: int) -> dict:
    """One browser session: first plot, the widget changes, a lasso. Per step: wall seconds, and the CPU
    seconds the server and the browser used (`_cpu`: on a shared machine the wall time grows with the
    other jobs' load, the CPU time much less)."""
    out = {}
    load = lambda: round(os.getloadavg()[0], 1)  # noqa: E731
    with chromium_page(width=1500, height=1100) as page:
        browser = _chromium_pid()
        cpu = lambda: (_cpu([server_pid]), _cpu([browser]))  # noqa: E731
        received = lambda: page.evaluate("() => window.__wsBytes || 0")  # noqa: E731
        page.add_init_script(COUNT_WS)
        c0 = cpu()
        t0 = time.monotonic()
        page.goto(url + "/?level=frame", timeout=900000)
        if kind == "component":
            _wait(page, lambda: _drawn(page))
            m = _monitor(page)
            if m.get("times"):
                origin = page.evaluate("() => performance.timeOrigin")
                out["first_plot_s"] = round((m["times"]["drawn"] - origin) / 1000, 2)
                out["first_marks"] = {"payload_at_s": round((m["times"]["received"] - origin) / 1000, 2),
                                      "decode_ms": round(m["decodeMs"] or 0),
                                      **{k: round(v) for k, v in m["marks"].items()}}
            else:  # an earlier component without its own marks
                out["first_plot_s"] = round(time.monotonic() - t0, 2)
        else:
            _wait(page, lambda: _plot_ready(page))
            out["first_plot_s"] = round(time.monotonic() - t0, 2)
        _wait(page, lambda: _settled(page))
        out["first_page_s"] = round(time.monotonic() - t0, 2)
        c1 = cpu()
        out["first_cpu_s"] = {"server": round(c1[0] - c0[0], 2), "browser": round(c1[1] - c0[1], 2)}
        out["first_MB"] = round(received() / 1e6, 2)
        out["first_load"] = load()
        page.wait_for_timeout(2000)

        def step(name, action, map_done, map_time=None):
            before = received()
            c0 = cpu()
            t = time.monotonic()
            clicked_at = time.time()
            action()
            map_done()
            out[f"{name}_map_s"] = round(map_time() - clicked_at, 2) if map_time else round(time.monotonic() - t, 2)
            page.wait_for_timeout(150)
            _wait(page, lambda: _settled(page))
            out[f"{name}_page_s"] = round(time.monotonic() - t, 2)
            c1 = cpu()
            out[f"{name}_cpu_s"] = {"server": round(c1[0] - c0[0], 2), "browser": round(c1[1] - c0[1], 2)}
            out[f"{name}_load"] = load()
            page.wait_for_timeout(1500)
            out[f"{name}_MB"] = round((received() - before) / 1e6, 3)

        for name, label in STEPS:
            if kind == "component":
                s = _monitor(page)["seq"]
                marks = bool(_monitor(page).get("times"))
                step(name, lambda: _choose(page, label), lambda: _wait(page, lambda: _drawn(page, s)),
                     (lambda: _monitor(page)["times"]["lastDrawn"] / 1000) if marks else None)
                out[f"{name}_marks"] = {k: round(v) for k, v in (_monitor(page)["marks"] or {}).items()}
            else:
                def redrawn():
                    page.wait_for_timeout(300)
                    _wait(page, lambda: _settled(page) and _plot_ready(page))
                step(name, lambda: _choose(page, label), redrawn)
        if kind == "component":
            _choose(page, "frame")  # the lasso on faces: the most points
            _wait(page, lambda: _settled(page) and _drawn(page))
            page.wait_for_timeout(1000)
            box = page.locator(f'iframe[src*="{FRAME}"]').first.bounding_box()
            pts = [(box["x"] + fx * (box["width"] - 200), box["y"] + fy * box["height"])
                   for fx, fy in ((0.1, 0.1), (0.6, 0.1), (0.6, 0.9), (0.1, 0.9), (0.1, 0.1))]
            page.mouse.move(*pts[0])
            page.mouse.down()
            for p in pts[1:]:
                page.mouse.move(*p, steps=6)
            page.evaluate(WATCH, "Selection:")
            step("lasso", lambda: page.mouse.up(),
                 lambda: _wait(page, lambda: page.evaluate("() => window.__seenAt")),
                 lambda: page.evaluate("() => window.__seenAt") / 1000)
            out["lasso_selected"] = _frame(page).evaluate("() => window.__dfatlasMap.selected")
            heap = _frame(page).evaluate("() => performance.memory ? performance.memory.usedJSHeapSize : 0")
        else:
            heap = page.evaluate("() => performance.memory ? performance.memory.usedJSHeapSize : 0")
        out["browser_heap_MB"] = round(heap / 2**20)
        out["browser_rss_MB"] = round(_browser_rss(_chromium_pid()) / 2**20)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    ap.add_argument("--plotly-up-to", type=int, default=300_000)
    ap.add_argument("--root", default="/tmp/dfatlas-bench-map")
    ap.add_argument("--maps", nargs="+", default=["component", "plotly"])
    ap.add_argument("--before", type=Path, help="a copy of the code before: its plotly page and component")
    args = ap.parse_args()
    for n in args.sizes:
        ws = Path(args.root) / f"ws{n}"
        if not (ws / "atlas.duckdb").exists():
            t = time.monotonic()
            build_scale_store(ws, n)
            print(json.dumps({"faces": n, "store_built_s": round(time.monotonic() - t, 1),
                              "load": round(os.getloadavg()[0], 1)}), flush=True)
        runs = [(k, None) for k in args.maps if k == "component" or n <= args.plotly_up_to]
        if args.before and n <= args.plotly_up_to:
            runs = [(k, args.before) for k in ("plotly", "component")] + [r for r in runs if r[0] == "component"]
        for kind, code in runs:
            if kind == "plotly":
                os.environ["DFATLAS_MAP"] = "plotly"
            else:
                os.environ.pop("DFATLAS_MAP", None)
            with dashboard_server(ws, timeout=300, code=code) as url:
                server_pid = max((p for p in psutil.Process().children(recursive=True)
                                  if "streamlit" in " ".join(p.cmdline())), key=lambda p: p.memory_info().rss).pid
                t = time.monotonic()
                session(url, kind, server_pid)  # warm the server: the same views once
                warm_s = round(time.monotonic() - t, 1)
                row = session(url, kind, server_pid)
                server = psutil.Process(server_pid).memory_info().rss
                row = dict(faces=n, map=kind + (" (before)" if code else ""), warmup_session_s=warm_s, **row,
                           server_rss_MB=round(server / 2**20),
                           load=[round(v, 2) for v in os.getloadavg()])
                print(json.dumps(row), flush=True)
    os.environ.pop("DFATLAS_MAP", None)


if __name__ == "__main__":
    main()
