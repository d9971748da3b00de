"""HOW it is shown: the Streamlit dashboard (pages, plotly figures, tables).

Reads the store read-only, one unit of work per query; never trains.
Entry: `streamlit_app.py` (or `dfatlas serve --workspace DIR`).
"""
