"""The browser map (dashboard.components.scatter_map) in real headless Chromium, one server and one store
for the module: the points load once, marker shapes of two classes differ in the drawn pixels, a lasso
fills the selection panel, the URL restores selection and zoom, marker-legend entries toggle, the search
box highlights."""

from __future__ import annotations

import re
import time

import pytest

from testkit.browser import (FRAME, browser_available, chromium_page, dashboard_server, drawn_map_frames,
                             error_count, frame_box, lasso, map_frame, wait_until)
from testkit.dashboard_store import build_fixture_store

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]
why_not = browser_available()
if why_not:
    pytest.skip(why_not, allow_module_level=True)

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    ws = tmp_path_factory.mktemp("mapb") / "ws"
    build_fixture_store(ws, n_points=3000)
    with dashboard_server(ws) as url:
        yield url


@pytest.fixture(scope="module")
def browser_page():
    with chromium_page(width=1500, height=1100) as page:
        yield page


def monitor(frame) -> dict:
    return frame.evaluate("() => { const m = window.__dfatlasMap; return {drawn: m.drawn, bytes: m.payloadBytes, "
                          "renders: m.renders, selected: m.selected, hash: m.loadedHash}; }")


def test_points_cross_the_wire_once(server, browser_page):
    page = browser_page
    received = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda data: received.append(len(data))))
    page.goto(server + "/", timeout=60000)
    frame = map_frame(page)
    first = monitor(frame)
    assert first["bytes"] > 50_000 and first["drawn"] > 100
    assert sum(received) >= first["bytes"]
    page.wait_for_timeout(1500)
    before, renders = sum(received), monitor(frame)["renders"]
    # Colour and level changes are sidebar widgets: a rerun, new arguments, no point data.
    page.get_by_text("true class", exact=True).first.click()
    wait_until(page, lambda: monitor(frame)["renders"] > renders, what="rerun after the colour change")
    page.get_by_text("frame", exact=True).first.click()
    wait_until(page, lambda: monitor(frame)["drawn"] > first["drawn"], what="faces drawn at frame level")
    page.wait_for_timeout(1500)
    after = monitor(frame)
    assert after["bytes"] == first["bytes"], "a widget change sent the points again"
    assert sum(received) - before < first["bytes"] / 2
    assert error_count(page) == 0


def test_marker_shapes_differ_in_pixels(server, browser_page):
    page = browser_page
    page.goto(server + "/?level=frame&colour=pred", timeout=60000)
    frame = map_frame(page)
    page.wait_for_timeout(1000)

    def isolated(label):
        pts = frame.evaluate(f"() => window.__dfatlasMap.screenPoints({label!r})")
        every = frame.evaluate("() => ['real','syn-swap','syn-reenact','syn-gan','syn-lowres','unseen-fake']"
                               ".flatMap((l) => window.__dfatlasMap.screenPoints(l))")
        out = []
        for x, y in pts:
            near = sum(1 for u, v in every if abs(u - x) < 12 and abs(v - y) < 12)
            if near == 1 and 20 < x < 600 and 40 < y < 560:
                out.append((x, y))
        return out[:12]

    def plus_vs_centre(points):
        """Ink at (±2, 0) and (0, ±2) px relative to the centre's (1 = as dark as the centre)."""
        return frame.evaluate("""(pts) => {
            const gl = document.getElementById('canvas');  // WebGL, drawing buffer kept: copy it to read it
            const c = document.createElement('canvas'); c.width = gl.width; c.height = gl.height;
            const ctx = c.getContext('2d'); ctx.drawImage(gl, 0, 0);
            const s = c.width / gl.clientWidth; const ink = (x, y) => {
              const d = ctx.getImageData(Math.round(x * s), Math.round(y * s), 1, 1).data;
              return d[3] * (765 - d[0] - d[1] - d[2]) / 255; };  // transparent where nothing is drawn
            const r = pts.map(([x, y]) => { const m = ink(x, y);
              const p = (ink(x + 2, y) + ink(x - 2, y) + ink(x, y + 2) + ink(x, y - 2)) / 4;
              return m > 0 ? p / m : 0; });
            return r.reduce((a, b) => a + b, 0) / Math.max(r.length, 1); }""", [list(p) for p in points])

    circles, crosses = isolated("real"), isolated("syn-swap")  # marker: circle for real, x for the first fake
    assert circles and crosses, "no isolated points to read"
    disc, x = plus_vs_centre(circles), plus_vs_centre(crosses)
    assert disc > 0.6 and x < disc - 0.3, (disc, x)


def test_lasso_fills_the_panel_and_the_url_restores_selection_and_zoom(server, browser_page):
    page = browser_page
    page.goto(server + "/", timeout=60000)
    frame = map_frame(page)
    lasso(page)
    page.get_by_text("Selection:", exact=False).first.wait_for(timeout=60000)
    assert monitor(frame)["selected"] > 0
    box = frame_box(page)
    page.mouse.move(box["x"] + 200, box["y"] + 250)
    page.mouse.wheel(0, -300)
    wait_until(page, lambda: "zoom=" in page.url and "sel=" in page.url, what="selection and zoom in the URL")
    url = page.url
    zoom = re.search(r"zoom=([^&]+)", url).group(1)
    selected = monitor(frame)["selected"]
    page.goto("about:blank")
    page.goto(url, timeout=60000)
    frame = map_frame(page)
    page.get_by_text("Selection:", exact=False).first.wait_for(timeout=60000)
    wait_until(page, lambda: monitor(frame)["selected"] == selected, what="the selection restored in the map")
    got = frame.evaluate("() => window.__dfatlasMap && true")
    assert got and zoom in page.url
    assert error_count(page) == 0


def test_marker_legend_toggles_and_search_highlights(server, browser_page):
    page = browser_page
    page.goto(server + "/", timeout=60000)
    frame = map_frame(page)
    n = monitor(frame)["drawn"]
    frame.locator('[data-legend="marker:real"]').click()
    wait_until(page, lambda: 0 < monitor(frame)["drawn"] < n, what="the real faces hidden")
    wait_until(page, lambda: "hm=real" in page.url, what="the hidden marker in the URL")
    frame.locator('[data-legend="marker:real"]').click()
    wait_until(page, lambda: monitor(frame)["drawn"] == n, what="the real faces back")
    # the density layer: contour lines drawn over the points
    frame.locator("#density").click()
    wait_until(page, lambda: frame.evaluate("""() => { const c = document.getElementById('contours');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let ink = 0;
        for (let i = 3; i < d.length; i += 4) ink += d[i] > 0; return ink > 500; }"""), what="density contours drawn")
    frame.locator("#density").click()
    frame.locator("#search").fill("syn-gan")
    frame.locator("#search").press("Enter")
    wait_until(page, lambda: monitor(frame)["selected"] > 0, what="search matches highlighted")
    page.get_by_text("Selection:", exact=False).first.wait_for(timeout=60000)
    frame.locator("#search").fill("no-such-video-anywhere")
    frame.locator("#search").press("Enter")
    wait_until(page, lambda: monitor(frame)["selected"] == 0, what="an empty search")
    page.get_by_text("matches no shown point", exact=False).first.wait_for(timeout=60000)
    assert error_count(page) == 0


def frames_of(page, n: int, timeout_s: float = 90) -> list:
    """The n map frames of the page once each reports its points drawn."""
    return wait_until(page, lambda: (lambda out: out if len(out) >= n else None)(drawn_map_frames(page)),
                      timeout_s=timeout_s, what=f"{n} maps drawn")


def test_compare_maps_share_selection_and_hover(server, browser_page):
    page = browser_page
    page.goto(server + "/compare", timeout=60000)
    left, right = frames_of(page, 2)
    boxes = page.locator(f'iframe[src*="{FRAME}"]')
    lasso(page, frac=((0.05, 0.2), (0.55, 0.2), (0.55, 0.9), (0.05, 0.9)))  # on the first map, below its toolbar
    wait_until(page, lambda: monitor(left)["selected"] > 0, what="the lasso selects on the left map")
    wait_until(page, lambda: monitor(right)["selected"] > 0, what="the same faces selected on the right map")
    # the toolbar stays inside the plot (it wraps on a narrow map), never over the legend
    for f in (left, right):
        assert f.evaluate("""() => { const t = document.getElementById('toolbar').getBoundingClientRect();
            const l = document.getElementById('legend').getBoundingClientRect();
            return t.right <= l.left || t.left >= l.right || t.bottom <= l.top || t.top >= l.bottom; }""")
    # hover: the right map rings the point of the video under the mouse on the left
    x, y = left.evaluate("() => window.__dfatlasMap.screenPoints('real', 1)[0]")
    box = boxes.first.bounding_box()
    page.mouse.move(box["x"] + x, box["y"] + y)
    wait_until(page, lambda: right.evaluate("() => window.__dfatlasMap.hovered >= 0"), what="linked hover")
    assert error_count(page) == 0


def test_confusion_cell_selects_its_points(server, browser_page):
    page = browser_page
    page.goto(server + "/?level=frame", timeout=60000)
    frame = map_frame(page)
    table = page.locator(".st-key-map_confusion [data-testid=stDataFrame]").first
    table.wait_for(timeout=60000)
    table.scroll_into_view_if_needed()
    box = table.bounding_box()
    # the second row (under the header row), a column right of the row names
    page.mouse.click(box["x"] + box["width"] * 0.75, box["y"] + 35 + 35 * 1.5)
    page.get_by_text("Selection:", exact=False).first.wait_for(timeout=60000)
    wait_until(page, lambda: monitor(frame)["selected"] > 0, what="the cell's points selected on the map")
    heading = page.get_by_text("Selection:", exact=False).first.inner_text()
    assert f"{monitor(frame)['selected']:,} faces" in heading, heading  # the map and the panel agree
    assert error_count(page) == 0


def test_search_zooms_to_its_matches_and_a_click_selects_a_video(server, browser_page):
    page = browser_page
    page.goto(server + "/?level=frame", timeout=60000)
    frame = map_frame(page)
    frame.locator("#search").fill("syn-gan")
    frame.locator("#search").press("Enter")
    wait_until(page, lambda: monitor(frame)["selected"] > 0, what="search matches highlighted")
    wait_until(page, lambda: "zoom=" in page.url, what="the map zoomed to the matches")
    frame.locator("#search").fill("")
    frame.locator("#search").press("Enter")
    wait_until(page, lambda: monitor(frame)["selected"] == 0, what="the search cleared")
    x, y = frame.evaluate("() => window.__dfatlasMap.screenPoints('real', 200).find(([x, y]) => x > 20 && y > 40)")
    box = frame_box(page)
    page.mouse.click(box["x"] + x, box["y"] + y)
    page.get_by_text("from 1 videos", exact=False).first.wait_for(timeout=60000)  # the clicked point's video
    assert error_count(page) == 0


def test_unknown_sets_can_be_highlighted_above_the_others(server, browser_page):
    page = browser_page
    page.goto(server + "/?level=frame&db=synth-a%2Ftest&db=unknown%2Fmystery", timeout=60000)
    frame = map_frame(page)
    button = frame.locator("#highlight")
    button.wait_for(state="visible", timeout=30000)
    assert "unknown sets" in button.inner_text()
    button.click()
    wait_until(page, lambda: frame.evaluate("() => window.__dfatlasMap.highlighted") > 0, what="the set highlighted")
    wait_until(page, lambda: "hu=1" in page.url, what="the highlight in the URL")
    # drawn last and larger, the others dimmed: more ink at the highlighted points' centres than at the others'
    ink = """(pts) => { const gl = document.getElementById('canvas');
        const c = document.createElement('canvas'); c.width = gl.width; c.height = gl.height;
        const ctx = c.getContext('2d'); ctx.drawImage(gl, 0, 0); const s = c.width / gl.clientWidth;
        const v = pts.filter(([x, y]) => x > 5 && y > 5 && x < gl.clientWidth - 5 && y < gl.clientHeight - 5)
          .map(([x, y]) => { const d = ctx.getImageData(Math.round(x * s), Math.round(y * s), 1, 1).data;
            return d[3] * (765 - d[0] - d[1] - d[2]) / 255; });
        return v.reduce((a, b) => a + b, 0) / Math.max(v.length, 1); }"""
    page.wait_for_timeout(500)
    on = frame.evaluate(ink, frame.evaluate("() => window.__dfatlasMap.highlightPoints(true, 300)"))
    off = frame.evaluate(ink, frame.evaluate("() => window.__dfatlasMap.highlightPoints(false, 300)"))
    assert on > 2 * off, (on, off)
    button.click()
    wait_until(page, lambda: frame.evaluate("() => window.__dfatlasMap.highlighted") == 0, what="the highlight off")
    wait_until(page, lambda: "hu=1" not in page.url, what="the highlight out of the URL")
    assert error_count(page) == 0


def test_a_narrow_map_puts_its_legend_under_the_plot(server, browser_page):
    """A narrow frame (a phone, a split screen) keeps the plot wide: the legend goes under it, colour beside
    marker, and every point stays in view."""
    inside = """() => { const c = document.getElementById('canvas');
        const labels = [...document.querySelectorAll('[data-legend^="marker:"]')].map((e) => e.dataset.legend.slice(7));
        const pts = labels.flatMap((l) => window.__dfatlasMap.screenPoints(l, 100000));
        return pts.length > 0 && pts.every(([x, y]) => x >= 0 && y >= 0 && x <= c.clientWidth && y <= c.clientHeight); }"""
    page = browser_page  # the module's browser (a second playwright in one thread is refused), made narrow
    size = page.viewport_size
    page.set_viewport_size({"width": 600, "height": 1000})
    try:
        page.goto(server + "/", timeout=60000)
        frame = map_frame(page)
        assert frame_box(page)["width"] < 620
        wait_until(page, lambda: frame.evaluate(inside), what="every point in view")
        layout = frame.evaluate("""() => { const r = (id) => document.getElementById(id).getBoundingClientRect();
            const parts = [...document.querySelectorAll('#legend .section')].map((e) => e.getBoundingClientRect());
            return {below: r('legend').top >= r('plot').bottom - 1, plot: r('plot').width, frame: window.innerWidth,
                    side_by_side: parts.length === 2 && parts[1].left >= parts[0].right - 1}; }""")
        assert layout["below"] and layout["side_by_side"] and layout["plot"] >= 0.9 * layout["frame"], layout
        assert error_count(page) == 0
    finally:
        page.set_viewport_size(size)
