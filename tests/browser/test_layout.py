"""Explore on laptop and projector screens, in real headless Chromium: at 1024×768 and 1280×720 the map is
at least half the window wide, the HTER column of the metrics table is in view, and after a lasso the
selection panel is visible without scrolling the page."""

from __future__ import annotations

import pytest

from testkit.browser import (browser_available, chromium_page, dashboard_server, error_count, frame_box, lasso,
                             map_frame, map_report, wait_idle, wait_until)
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


def test_tour_steps_set_run_colour_and_highlight(server):
    """Walk the guided tour with its Next button: each step's run, colour and highlight read back from the
    URL are the ones the step set, and a highlighted step's faces are selected on the map."""
    from urllib.parse import parse_qs, urlparse

    from dashboard import tour
    from testkit.dashboard_store import run_ids

    ids = run_ids()
    with chromium_page(width=1280, height=720) as page:
        page.goto(server + "/tour", timeout=60000)
        for i, step in enumerate(tour.STEPS):
            page.get_by_role("heading", name=step.title).first.wait_for(timeout=60000)
            expected = {"mistake": "cell:", "unseen": "search:unseen-fake"}.get(step.highlight, "none")
            # the step first clears the highlight (hl=none), then its map writes the one it sets
            qp = wait_until(page, lambda: (lambda q: q if q.get("step") == [str(i + 1)]
                                           and q.get("hl", [""])[0].startswith(expected) else None)(
                parse_qs(urlparse(page.url).query)), what=f"step {i + 1} and its highlight {expected} in the URL")
            if step.approach and not step.numbers:
                assert qp["run"] == [ids[step.approach]] and qp["colour"] == [step.colour], qp
            if step.highlight:
                def selected() -> int:  # the map's frame may be replaced by a rerun: look it up each time
                    try:
                        return map_frame(page, timeout_s=5).evaluate("() => window.__dfatlasMap.selected")
                    except Exception:  # noqa: BLE001  (detached or not drawn yet: not selected yet)
                        return 0

                try:
                    wait_until(page, lambda: selected() > 0, timeout_s=90, what=f"step {i + 1}'s highlight on the map")
                except AssertionError as e:
                    raise AssertionError(f"{e}; the page's maps: {map_report(page)}") from None
            if i < len(tour.STEPS) - 1:
                wait_idle(page)  # the step's own reruns (its map's highlight) are over
                page.get_by_role("button", name="Next →").click()
        assert error_count(page) == 0
