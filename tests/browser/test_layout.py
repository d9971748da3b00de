"""Explore on laptop and projector screens, in real headless Chromium: at 1024×768 and 1280×720 the map is
at least half the window wide, the HTER column of the metrics table is in view, and after a lasso the
selection panel is visible without scrolling the page."""

from __future__ import annotations

import pytest

from testkit.browser import browser_available, chromium_page, dashboard_server, frame_box, lasso, map_frame
from testkit.dashboard_store import build_fixture_store

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]
why_not = browser_available()
if why_not:
    pytest.skip(why_not, allow_module_level=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    ws = tmp_path_factory.mktemp("layout") / "ws"
    build_fixture_store(ws, n_points=3000)
    with dashboard_server(ws) as url:
        yield url


def in_view(box, width: int, height: int) -> bool:
    return box is not None and box["width"] > 0 and 0 <= box["x"] and box["x"] + 40 <= width \
        and 0 <= box["y"] < height - 40


@pytest.mark.parametrize("size", [(1024, 768), (1280, 720)])
def test_map_takes_most_of_the_width_and_the_panel_stays_in_view(server, size):
    width, height = size
    with chromium_page(width=width, height=height) as page:
        page.goto(server + "/", timeout=60000)
        map_frame(page)
        box = frame_box(page)
        assert box["width"] >= width / 2, box
        # the metrics table's HTER column: the grid's header row sits in the panel beside the map
        table = page.locator(".st-key-explore_panel [data-testid='stDataFrame']").first
        table.wait_for(timeout=60000)
        grid = table.bounding_box()
        assert in_view(grid, width, height), grid
        # the grid's accessible header row holds the columns it draws: HTER must be among them
        page.wait_for_function("""() => { const t = document.querySelector(
            ".st-key-explore_panel [data-testid='stDataFrame']");
            return t && t.querySelectorAll('th[role=columnheader]').length > 1; }""", timeout=60000)
        drawn = page.evaluate("""() => [...document.querySelector(
            ".st-key-explore_panel [data-testid='stDataFrame']").querySelectorAll('th[role=columnheader]')]
            .map(e => e.textContent)""")
        assert "HTER (%)" in drawn, drawn
        lasso(page)
        panel = page.locator(".st-key-selection_panel").first
        panel.wait_for(timeout=60000)
        page.get_by_text("Selection:", exact=False).first.wait_for(timeout=60000)
        assert page.evaluate("() => window.scrollY || document.querySelector('[data-testid=stMain]')?.scrollTop || 0") == 0
        assert in_view(panel.bounding_box(), width, height), panel.bounding_box()
