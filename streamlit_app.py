"""`streamlit run streamlit_app.py` — the dashboard's thin entry (pages live in dashboard/).

The workspace comes from $DFATLAS_WORKSPACE (set by `dfatlas serve --workspace DIR`).
"""

from dashboard.app import main

main()
