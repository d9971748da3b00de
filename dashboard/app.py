"""The dashboard's frame: page list, header, shared sidebar controls.

To add a page (e.g. "Analyse", issue 9): add a module under
`dashboard/pages/` and one entry to `PAGES`.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from . import controls, queries, states
from .plain import literal

PAGES_DIR = Path(__file__).resolve().parent / "pages"
# (file under dashboard/pages, title, icon, url path)
PAGES = [
    ("explore.py", "Explore", ":material/scatter_plot:", "explore"),
    ("compare.py", "Compare", ":material/compare:", "compare"),
    ("curves.py", "Curves", ":material/show_chart:", "curves"),
    ("tables.py", "Tables & export", ":material/table_chart:", "tables"),
    ("analyse.py", "Analyse", ":material/travel_explore:", "analyse"),
    ("runs.py", "Runs & provenance", ":material/info:", "runs"),
]


def pages() -> list:
    return [st.Page(PAGES_DIR / f, title=t, icon=i, url_path=u, default=(n == 0))
            for n, (f, t, i, u) in enumerate(PAGES)]


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
        view = controls.sidebar(path, sig, ov)
        st.session_state["_view"] = view
        if view is None:
            states.no_runs(ws)
        else:
            ok = True
    if ok:
        with states.guard(ws):
            nav.run()
