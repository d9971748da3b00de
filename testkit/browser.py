"""Start the dashboard with `streamlit run` on a free localhost port and drive it in headless Chromium.

Debian's `chromium` package via the Python `playwright` package; never lets
playwright download a browser of its own. Used by the browser test, the
dashboard benchmark and the screenshot script.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
MAP = ".js-plotly-plot .scatterlayer, .js-plotly-plot canvas.gl-canvas"


def browser_available() -> str | None:
    """None when the browser test can run, else why not."""
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    return None


@contextmanager
def dashboard_server(workspace: Path, start_port: int = 8650, timeout: float = 60.0, code: Path | None = None):
    """Yield the URL of a dashboard serving `workspace`; stops it afterwards. `code`: serve the dashboard of
    another copy of this repository (a benchmark's "before"), else this one."""
    sys.path.insert(0, str(ROOT))
    from engine.commands.serve import ENTRY, free_port, streamlit_command

    port = free_port("127.0.0.1", start_port)
    env = dict(os.environ, DFATLAS_WORKSPACE=str(workspace), PYTHONUNBUFFERED="1")
    cmd = streamlit_command(ENTRY, "127.0.0.1", port)
    if code is not None:
        cmd = cmd[:1] + [a.replace(str(ROOT), str(code)) for a in cmd[1:]]  # this interpreter, that code
        env["PYTHONPATH"] = str(code)
    log = open(Path(workspace) / "streamlit.log", "w")
    proc = subprocess.Popen(cmd, env=env, cwd=str(code or ROOT), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dashboard did not start: {(Path(workspace) / 'streamlit.log').read_text()}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@contextmanager
def chromium_page(width: int = 1500, height: int = 1000):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            yield page
        finally:
            browser.close()


def wait_for_map(page, timeout_ms: int = 90000) -> None:
    page.wait_for_selector(MAP, timeout=timeout_ms)
    page.wait_for_function(
        "() => { const g = document.querySelector('.js-plotly-plot'); return g && g._fullData && "
        "g._fullData.length > 0; }", timeout=timeout_ms)


def box_select(page, frac=(0.05, 0.05, 0.6, 0.6)) -> None:
    """Switch the first plot to box select and drag a box over part of it."""
    plot = page.locator(".js-plotly-plot").first
    plot.hover()
    page.locator('.js-plotly-plot .modebar-btn[data-val="select"]').first.click()
    box = plot.locator(".nsewdrag").first.bounding_box()
    x0, y0 = box["x"] + frac[0] * box["width"], box["y"] + frac[1] * box["height"]
    x1, y1 = box["x"] + frac[2] * box["width"], box["y"] + frac[3] * box["height"]
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=5)
    page.mouse.move(x1, y1, steps=5)
    page.mouse.up()


def error_count(page) -> int:
    return page.locator('[data-testid="stException"]').count()


# --- the map component (dashboard.components.scatter_map) -----------------------------------------

FRAME = "dfatlas_scatter_map"


def drawn_map_frames(page) -> list:
    """The page's map frames that report their points drawn (a frame being (re)loaded is not one yet)."""
    out = []
    for f in page.frames:
        if FRAME in f.url:
            try:
                if f.evaluate("() => window.__dfatlasMap && window.__dfatlasMap.drawn > 0"):
                    out.append(f)
            except Exception:  # noqa: BLE001  (the frame is (re)loading)
                pass
    return out


def map_frame(page, timeout_s: float = 90):
    """The map's frame once it reports every point drawn."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        frames = drawn_map_frames(page)
        if frames:
            return frames[0]
        page.wait_for_timeout(300)
    raise AssertionError("the map never reported its points drawn")


def map_report(page) -> list[dict]:
    """What each map frame on the page is doing (for a failure message): points held and drawn, renders,
    payload bytes received, the selection's size and the status line."""
    out = []
    for f in page.frames:
        if FRAME in f.url:
            try:
                out.append(f.evaluate("""() => { const m = window.__dfatlasMap || {};
                    const s = document.getElementById('status');
                    return {loaded: m.loadedHash, drawn: m.drawn, renders: m.renders, bytes: m.payloadBytes,
                            selected: m.selected, status: s ? s.textContent : null}; }"""))
            except Exception as e:  # noqa: BLE001  (a frame being replaced)
                out.append({"error": str(e)[:80]})
    return out


def wait_until(page, check, timeout_s: float = 60, what: str = ""):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        v = check()
        if v:
            return v
        page.wait_for_timeout(250)
    raise AssertionError(f"timed out: {what}")


def wait_idle(page, timeout_s: float = 60, settle_ms: int = 400) -> None:
    """Until the page's script run is over (Streamlit's running indicator gone for `settle_ms`): a click
    made while a rerun is still drawing can land on an element that is about to be replaced."""
    deadline = time.monotonic() + timeout_s
    quiet_since = None
    while time.monotonic() < deadline:
        running = page.locator('[data-testid="stStatusWidget"]').count() > 0
        now = time.monotonic()
        if running:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now
        elif (now - quiet_since) * 1000 >= settle_ms:
            return
        page.wait_for_timeout(100)
    raise AssertionError("timed out: the page kept running")


def frame_box(page):
    return page.locator(f'iframe[src*="{FRAME}"]').first.bounding_box()


def lasso(page, frac=((0.05, 0.08), (0.55, 0.08), (0.55, 0.9), (0.05, 0.9))):
    box = frame_box(page)
    pts = [(box["x"] + fx * (box["width"] - 200), box["y"] + fy * box["height"]) for fx, fy in frac]
    page.mouse.move(*pts[0])
    page.mouse.down()
    for p in pts[1:] + [pts[0]]:
        page.mouse.move(*p, steps=8)
    page.mouse.up()
