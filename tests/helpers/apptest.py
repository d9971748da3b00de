"""Driving the dashboard with Streamlit's AppTest: one way to open it on a workspace, check a run for
exception elements and read the page's text, shared by the integration tests."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "streamlit_app.py")
TEXT_ELEMENTS = ("markdown", "caption", "info", "warning", "error", "subheader", "header", "success")


def open_app(ws: Path, monkeypatch, query: dict | None = None, plotly_map: bool = True,
             timeout: float = 90) -> AppTest:
    """The dashboard on workspace `ws`, run once with `query` as its URL parameters. `plotly_map`: draw the
    plotly map, whose figure AppTest can read (it renders no custom component); else the map component,
    whose arguments and value the test reads instead."""
    monkeypatch.setenv("DFATLAS_WORKSPACE", str(ws))
    if plotly_map:
        monkeypatch.setenv("DFATLAS_MAP", "plotly")
    else:
        monkeypatch.delenv("DFATLAS_MAP", raising=False)
    at = AppTest.from_file(APP, default_timeout=timeout)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return at.run()


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def texts(at: AppTest) -> str:
    """Every text element of the page (markdown, captions, messages, headers), one per line."""
    return "\n".join(str(e.value) for kind in TEXT_ELEMENTS for e in getattr(at, kind))
