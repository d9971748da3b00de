"""Predictions per (run, classifier, face): the one Arrow builder and the readers of scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from .connection import Store, matrix_to_arrow


def predictions_table(run_id: str, classifier: str, face_ids, datasets, pred_class, real_score, probs,
                      out_of_fold: bool) -> pa.Table:
    """Rows of `predictions`: `probs` is an [N, C] array or None (a head without class probabilities)."""
    n = len(face_ids)
    return pa.table({
        "run_id": pa.array([run_id] * n, pa.string()), "classifier": pa.array([classifier] * n, pa.string()),
        "face_id": pa.array(face_ids, pa.string()), "dataset": pa.array(datasets, pa.string()),
        "pred_class": pa.array(np.asarray(pred_class), pa.int32()),
        "real_score": pa.array(np.asarray(real_score), pa.float64()),
        "probs": matrix_to_arrow(probs) if probs is not None else pa.nulls(n, pa.list_(pa.float32())),
        "out_of_fold": pa.array([out_of_fold] * n, pa.bool_()),
    })


def face_scores(store: Store, run_id: str, classifier: str, datasets=None) -> pa.Table:
    """One row per predicted face: face_id, video_id, dataset, database, split, true_class, is_fake,
    real_score, pred_class, probs, out_of_fold — ordered by face_id.

    Dataset membership goes through `video_datasets`: a video kept once for
    several databases (videos.also_in) counts for every dataset claiming it.
    """
    params: list = [run_id, classifier]
    where = "p.run_id = ? AND p.classifier = ?"
    if datasets is not None:
        where += " AND f.video_id IN (SELECT video_id FROM video_datasets WHERE dataset IN (SELECT unnest(?)))"
        params.append(list(datasets))
    return store.arrow(f"""
        SELECT p.face_id, f.video_id, p.dataset, v.database, v.split, v.true_class, v.is_fake,
               p.real_score, p.pred_class, p.probs, p.out_of_fold
        FROM predictions p JOIN faces f ON f.face_id = p.face_id JOIN videos v ON v.video_id = f.video_id
        WHERE {where} ORDER BY p.face_id""", params)


def predicted_pairs(store: Store, run_ids) -> set[tuple[str, str]]:
    """(run, classifier) pairs with stored predictions."""
    df = store.df("SELECT DISTINCT run_id, classifier FROM predictions WHERE run_id IN (SELECT unnest(?))",
                  [list(run_ids)])
    return set(zip(df.run_id, df.classifier))


def classifiers_with_predictions(store: Store, run_id: str, dataset: str | None = None) -> set[str]:
    """Classifiers with stored predictions for a run (on `dataset` when given)."""
    if dataset:
        df = store.df("SELECT DISTINCT classifier FROM predictions WHERE run_id = ? AND dataset = ?", [run_id, dataset])
    else:
        df = store.df("SELECT DISTINCT classifier FROM predictions WHERE run_id = ?", [run_id])
    return set(df.classifier)


def prediction_counts(store: Store, run_id: str, classifier: str) -> dict[str, int]:
    """Predicted faces per dataset of one (run, classifier)."""
    df = store.df("SELECT dataset, count(*) AS n FROM predictions WHERE run_id = ? AND classifier = ? GROUP BY 1",
                  [run_id, classifier])
    return dict(zip(df.dataset, df.n.astype(int)))


def prediction_overview(store: Store) -> pd.DataFrame:
    """run_id, classifier, dataset, n_faces of every stored prediction set."""
    return store.df("SELECT run_id, classifier, dataset, count(*) AS n_faces FROM predictions "
                    "GROUP BY ALL ORDER BY ALL")


def write_predictions(store: Store, tables: list[pa.Table], replace_classifier: tuple[str, str] | None = None,
                      fit_record: dict | None = None) -> None:
    """Prediction chunks in one transaction; `replace_classifier=(run, classifier)` first drops that
    classifier's old predictions, `fit_record` (a `classifiers` row) is written with them."""
    with store.transaction() as con:
        if replace_classifier is not None:
            con.execute("DELETE FROM predictions WHERE run_id = ? AND classifier = ?", list(replace_classifier))
        for t in tables:
            store.insert("predictions", t, replace=True, con=con)
        if fit_record is not None:
            con.execute("INSERT OR REPLACE INTO classifiers (run_id, classifier, params_json, fitted_on, n_fit, "
                        "selection_json) VALUES (?, ?, ?, ?, ?, ?)",
                        [fit_record["run_id"], fit_record["classifier"], fit_record["params_json"],
                         fit_record["fitted_on"], fit_record["n_fit"], fit_record.get("selection_json")])


def classifier_record(store: Store, run_id: str, classifier: str) -> dict | None:
    """The stored fit of a classifier: params_json parsed (request + params), or None."""
    import json

    row = store.df("SELECT params_json FROM classifiers WHERE run_id = ? AND classifier = ?", [run_id, classifier])
    return None if row.empty else json.loads(row.params_json.iloc[0])


def fitted_classifiers(store: Store, run_id: str) -> list[str]:
    """The embedding classifiers recorded for a run, by name."""
    df = store.df("SELECT classifier FROM classifiers WHERE run_id = ? AND classifier <> 'native' ORDER BY 1",
                  [run_id])
    return df.classifier.tolist()


def classifier_overview(store: Store) -> pd.DataFrame:
    return store.df("SELECT run_id, classifier, params_json, fitted_on, n_fit FROM classifiers")
