"""A real browser: `streamlit run` on a free localhost port, headless Debian Chromium via playwright;
wait for the map, do one real box selection, take a screenshot, check there is no error element."""

from __future__ import annotations

import pytest

from testkit.browser import box_select, browser_available, chromium_page, dashboard_server, error_count, \
    wait_for_map
from testkit.dashboard_store import build_fixture_store

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

why_not = browser_available()


@pytest.mark.skipif(why_not is not None, reason=why_not or "")
def test_map_loads_and_box_selection_shows_faces(tmp_path, monkeypatch):
    monkeypatch.setenv("DFATLAS_MAP", "plotly")  # the plotly map (fallback); the component: test_map_component.py
    ws = tmp_path / "ws"
    build_fixture_store(ws, n_points=400)
    with dashboard_server(ws) as url, chromium_page() as page:
        page.goto(url, timeout=60000)
        wait_for_map(page)
        assert error_count(page) == 0
        box_select(page)
        page.get_by_text("Selection:", exact=False).first.wait_for(timeout=60000)
        page.locator('[data-testid="stImage"] img, [data-testid="stImage"]').first.wait_for(timeout=30000)
        page.wait_for_timeout(500)
        page.screenshot(path=str(tmp_path / "selection.png"), full_page=True)
        assert (tmp_path / "selection.png").stat().st_size > 10_000
        assert error_count(page) == 0
        assert page.locator(".stException, [data-testid='stException']").count() == 0
