"""Streamlit custom components of the dashboard (built JavaScript committed inside the package)."""
