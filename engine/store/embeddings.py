"""Embeddings per (run, face): the Arrow builder, the writer and the readers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from .connection import Store, matrix_to_arrow


def embeddings_table(run_id: str, face_ids, datasets, embedding: np.ndarray) -> pa.Table:
    n = len(face_ids)
    return pa.table({"run_id": pa.array([run_id] * n, pa.string()), "face_id": pa.array(face_ids, pa.string()),
                     "dataset": pa.array(datasets, pa.string()), "embedding": matrix_to_arrow(embedding)})


def write_embeddings(store: Store, embeddings: pa.Table, predictions: pa.Table | None = None) -> None:
    """One chunk of embeddings (and the head's own predictions) in one transaction."""
    with store.transaction() as con:
        store.insert("embeddings", embeddings, replace=True, con=con)
        if predictions is not None:
            store.insert("predictions", predictions, replace=True, con=con)


def pending_faces(store: Store, run_id: str, settings_key: str, databases) -> pa.Table:
    """face_id, crop_path, dataset of faces of `databases` (settings `settings_key`) the run has not embedded."""
    return store.arrow("""
        SELECT f.face_id, f.crop_path, v.dataset
        FROM faces f JOIN videos v ON v.video_id = f.video_id
        WHERE f.settings_key = ? AND v.database IN (SELECT unnest(?))
          AND NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.run_id = ? AND e.face_id = f.face_id)
        ORDER BY v.dataset, f.face_id""", [settings_key, list(databases), run_id])


def embedded_count(store: Store, run_id: str) -> int:
    return int(store.scalar("SELECT count(*) FROM embeddings WHERE run_id = ?", [run_id]) or 0)


def embedding_counts(store: Store, run_id: str) -> dict[str, int]:
    """Embedded faces per dataset of a run, in dataset order."""
    df = store.df("SELECT dataset, count(*) AS n FROM embeddings WHERE run_id = ? GROUP BY 1 ORDER BY 1", [run_id])
    return dict(zip(df.dataset, df.n.astype(int)))


def dataset_embeddings(store: Store, run_id: str, datasets, labelled: bool = False) -> pa.Table:
    """face_id, dataset, embedding (and video_id, true_class, identity, source_ids with `labelled`) of
    `datasets`, by face_id."""
    if labelled:
        return store.arrow("""
            SELECT e.face_id, e.dataset, e.embedding, f.video_id, v.true_class, v.identity, v.source_ids
            FROM embeddings e JOIN faces f ON f.face_id = e.face_id JOIN videos v ON v.video_id = f.video_id
            WHERE e.run_id = ? AND e.dataset IN (SELECT unnest(?)) ORDER BY e.face_id""", [run_id, list(datasets)])
    return store.arrow("SELECT face_id, dataset, embedding FROM embeddings WHERE run_id = ? AND dataset IN "
                       "(SELECT unnest(?)) ORDER BY face_id", [run_id, list(datasets)])


def unpredicted_embeddings(store: Store, run_id: str, classifier: str, dataset: str) -> pa.Table:
    """face_id, embedding of a dataset's faces that have no `classifier` prediction yet."""
    return store.arrow("""
        SELECT e.face_id, e.embedding FROM embeddings e WHERE e.run_id = ? AND e.dataset = ?
          AND NOT EXISTS (SELECT 1 FROM predictions p WHERE p.run_id = e.run_id AND p.classifier = ?
                          AND p.face_id = e.face_id)
        ORDER BY e.face_id""", [run_id, dataset, classifier])


def unplaced_embeddings(store: Store, run_id: str, projection_id: str, dataset: str) -> pa.Table:
    """face_id, video_id (the face id when the face has no `faces` row), embedding of a dataset's
    faces that a map does not hold yet, by face_id."""
    return store.arrow("""
        SELECT e.face_id, coalesce(f.video_id, e.face_id) AS video_id, e.embedding FROM embeddings e
        LEFT JOIN faces f ON f.face_id = e.face_id
        WHERE e.run_id = ? AND e.dataset = ?
          AND NOT EXISTS (SELECT 1 FROM projection_points pp WHERE pp.projection_id = ? AND pp.face_id = e.face_id)
        ORDER BY e.face_id""", [run_id, dataset, projection_id])


def embedded_faces(store: Store, run_id: str, datasets) -> pa.Table:
    """face_id, dataset, video_id (the face id when the face has no `faces` row), true_class (NULL
    when unlabelled) of the run's embedded faces of `datasets`, by face_id: what a map's reference
    sample is drawn from, without the embeddings themselves."""
    return store.arrow("""
        SELECT e.face_id, e.dataset, coalesce(f.video_id, e.face_id) AS video_id, v.true_class
        FROM embeddings e LEFT JOIN faces f ON f.face_id = e.face_id LEFT JOIN videos v ON v.video_id = f.video_id
        WHERE e.run_id = ? AND e.dataset IN (SELECT unnest(?)) ORDER BY e.face_id""", [run_id, list(datasets)])


def face_embeddings(store: Store, run_id: str, face_ids) -> pa.Table:
    """face_id, embedding of the given faces (any order in, face_id order out)."""
    return store.arrow("SELECT face_id, embedding FROM embeddings WHERE run_id = ? AND face_id IN "
                       "(SELECT face_id FROM _ids) ORDER BY face_id", [run_id],
                       tables={"_ids": pa.table({"face_id": pa.array(list(face_ids), pa.string())})})


def embedding_overview(store: Store) -> pd.DataFrame:
    return store.df("SELECT run_id, dataset, count(*) AS n_faces FROM embeddings GROUP BY ALL ORDER BY ALL")
