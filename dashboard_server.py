"""What `dfatlas serve` runs: the dashboard page script behind `dashboard.http_guard.DashboardGuard`.

`streamlit run dashboard_server.py PAGE_SCRIPT` finds the `st.App` below and serves PAGE_SCRIPT
(`streamlit_app.py` when none is named) with the guard in front of every route.
"""

import sys
from pathlib import Path

import streamlit as st
from starlette.middleware import Middleware

from dashboard.http_guard import DashboardGuard

PAGE_SCRIPT = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else Path(__file__).resolve().with_name(
    "streamlit_app.py")

app = st.App(PAGE_SCRIPT, middleware=[Middleware(DashboardGuard)])
