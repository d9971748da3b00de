"""What the store holds, in one unit of work: the dashboard's overview of runs, datasets and results."""

from __future__ import annotations

import pandas as pd

from .connection import Store

_QUERIES = {
    "runs": "SELECT * EXCLUDE (config_json), config_json FROM runs ORDER BY created_at, run_id",
    "datasets": "SELECT * FROM datasets ORDER BY role DESC, dataset",
    "classifiers": "SELECT run_id, classifier, params_json, fitted_on, n_fit FROM classifiers",
    "predicted": "SELECT run_id, classifier, dataset, count(*) AS n_faces FROM predictions GROUP BY ALL ORDER BY ALL",
    "projections": "SELECT * FROM projections ORDER BY created_at DESC",
    "jobs": "SELECT * FROM jobs ORDER BY started_at DESC LIMIT 20",
    "epochs": "SELECT * FROM epochs ORDER BY run_id, epoch",
}


def overview(store: Store) -> dict[str, pd.DataFrame]:
    """runs, datasets, classifiers, predicted (run, classifier, dataset, n_faces), projections, jobs, epochs."""
    with store.connect() as con:
        return {name: con.execute(sql).df() for name, sql in _QUERIES.items()}
