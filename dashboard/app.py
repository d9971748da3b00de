"""The dashboard's frame: page list, header, shared sidebar controls.

To add a page (e.g. "Analyse", issue 9): add a module under
`dashboard/pages/` and one entry to `PAGES`.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from . import controls, queries, states
from .plain import literal
from engine.config import TOUR_URL_PATH

PAGES_DIR = Path(__file__).resolve().parent / "pages"
# (file under dashboard/pages, title, icon, url path, the sidebar controls that act on the page)
PAGES = [
    ("explore.py", "Explore", ":material/scatter_plot:", "explore", controls.ALL),
    ("compare.py", "Compare", ":material/compare:", "compare", {"datasets", "level", "colour", "aggregation"}),
    ("curves.py", "Curves", ":material/show_chart:", "curves", {"level", "aggregation"}),
    ("tables.py", "Tables & export", ":material/table_chart:", "tables", {"level", "aggregation"}),
    ("analyse.py", "Analyse", ":material/travel_explore:", "analyse", {"run", "classifier", "level", "aggregation"}),
    ("runs.py", "Runs & provenance", ":material/info:", "runs", set()),
    ("tour.py", "Guided tour", ":material/school:", TOUR_URL_PATH, set()),
]


def pages() -> list:
    return [st.Page(PAGES_DIR / f, title=t, icon=i, url_path=u, default=(n == 0))
            for n, (f, t, i, u, _c) in enumerate(PAGES)]


def page_controls(page) -> set[str]:
    """The sidebar controls `page` (the navigation's current page) uses; the others keep their value."""
    by_path = {u: c for _f, _t, _i, u, c in PAGES}
    return by_path.get(getattr(page, "url_path", ""), controls.ALL) or set()


def _badge(ov: dict) -> None:
    runs, ds = ov["runs"], ov["datasets"]
    synthetic = bool(runs["synthetic"].any()) if len(runs) else False
    synthetic = synthetic or (bool(ds["synthetic"].any()) if len(ds) else False)
    if synthetic:
        st.sidebar.markdown(":orange-badge[:material/science: SYNTHETIC benchmark]")


def main() -> None:
    st.set_page_config(page_title="Deepfake Attribution Atlas", page_icon=":material/scatter_plot:",
                       layout="wide")
    nav = st.navigation(pages())
    ws = str(queries.workspace_root())
    path = queries.store_path()
    st.sidebar.caption("Workspace (fixed at launch): " + literal(ws))
    st.session_state["_view"] = None
    ok = False
    with states.guard(ws):
        sig = queries.signature(path)
        ov = queries.overview(path, sig)
        _badge(ov)
        view = controls.sidebar(path, sig, ov, shown=page_controls(nav))
        st.session_state["_view"] = view
        if view is None:
            states.no_runs(ws)
        else:
            ok = True
    if ok:
        with states.guard(ws):
            nav.run()
