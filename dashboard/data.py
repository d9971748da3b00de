"""Temporary alias while the analysis page moves to dashboard.queries."""
from dashboard.queries import *  # noqa: F401,F403
from dashboard.queries import workspace_root, store_path, signature, overview, map_points, scores, thumbnails, metrics_table, UNLABELLED, _store  # noqa: F401
