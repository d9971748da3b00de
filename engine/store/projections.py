"""Maps: the `projections` rows (parameters) and `projection_points` (coordinates), written and read here."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa

from .connection import Store


def points_table(projection_id: str, datasets, face_ids, xy: np.ndarray, is_reference: bool) -> pa.Table:
    n = len(face_ids)
    datasets = [datasets] * n if isinstance(datasets, str) else datasets
    return pa.table({"projection_id": pa.array([projection_id] * n, pa.string()),
                     "dataset": pa.array(datasets, pa.string()), "face_id": pa.array(face_ids, pa.string()),
                     "x": pa.array(np.asarray(xy)[:, 0], pa.float64()), "y": pa.array(np.asarray(xy)[:, 1], pa.float64()),
                     "is_reference": pa.array([is_reference] * n, pa.bool_())})


def write_map(store: Store, projection_id: str, run_id: str, reference: list[str], params: dict, seed: int,
              kl_divergence: float | None, points: pa.Table) -> None:
    """A fitted map's parameters and reference points, in one transaction."""
    with store.transaction() as con:
        con.execute("INSERT INTO projections (projection_id, run_id, reference, params_json, seed, kl_divergence) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [projection_id, run_id, ",".join(reference), json.dumps(params, sort_keys=True), seed,
                     kl_divergence])
        store.insert("projection_points", points, con=con)


def write_points(store: Store, points: pa.Table) -> None:
    store.insert("projection_points", points, replace=True)


def map_row(store: Store, projection_id: str) -> dict | None:
    """run_id, reference, params (dict), seed, kl_divergence of a map, or None."""
    df = store.df("SELECT run_id, reference, params_json, seed, kl_divergence, created_at FROM projections "
                  "WHERE projection_id = ?", [projection_id])
    if df.empty:
        return None
    r = df.iloc[0]
    return {"projection_id": projection_id, "run_id": r.run_id, "reference": r.reference.split(","),
            "params": json.loads(r.params_json), "seed": int(r.seed),
            "kl_divergence": None if pd.isna(r.kl_divergence) else float(r.kl_divergence)}


def latest_projection_id(store: Store, run_id: str) -> str | None:
    """The run's most recent map (the one the dashboard shows)."""
    return store.scalar("SELECT projection_id FROM projections WHERE run_id = ? ORDER BY created_at DESC, "
                        "projection_id LIMIT 1", [run_id])


def placed_counts(store: Store, projection_id: str) -> dict[str, int]:
    df = store.df("SELECT dataset, count(*) AS n FROM projection_points WHERE projection_id = ? GROUP BY 1",
                  [projection_id])
    return dict(zip(df.dataset, df.n.astype(int)))


def reference_points(store: Store, projection_id: str, run_id: str, limit: int | None = None) -> pa.Table:
    """face_id, video_id (the face id when the face has no `faces` row), x, y, embedding of a map's
    reference faces whose embedding is stored, by face_id (the first `limit` only, when given)."""
    return store.arrow("""
        SELECT pp.face_id, coalesce(f.video_id, pp.face_id) AS video_id, pp.x, pp.y, e.embedding
        FROM projection_points pp
        JOIN embeddings e ON e.face_id = pp.face_id AND e.run_id = ?
        LEFT JOIN faces f ON f.face_id = pp.face_id
        WHERE pp.projection_id = ? AND pp.is_reference ORDER BY pp.face_id
        LIMIT ?""", [run_id, projection_id, int(limit) if limit else None])


def reference_count(store: Store, projection_id: str) -> int:
    return int(store.scalar("SELECT count(*) FROM projection_points WHERE projection_id = ? AND is_reference",
                            [projection_id]) or 0)


def unplaced_counts(store: Store, projection_id: str, run_id: str) -> dict[str, int]:
    """Embedded faces of the run that have no point on the map, per dataset (datasets with none left out)."""
    df = store.df("""
        SELECT e.dataset, count(*) AS n FROM embeddings e WHERE e.run_id = ? AND NOT EXISTS
          (SELECT 1 FROM projection_points pp WHERE pp.projection_id = ? AND pp.face_id = e.face_id)
        GROUP BY 1 ORDER BY 1""", [run_id, projection_id])
    return dict(zip(df.dataset, df.n.astype(int)))


def orphaned_count(store: Store, projection_id: str, run_id: str) -> int:
    """Points of the map whose face has no embedding in the run any more."""
    return int(store.scalar("""
        SELECT count(*) FROM projection_points pp WHERE pp.projection_id = ? AND NOT EXISTS
          (SELECT 1 FROM embeddings e WHERE e.run_id = ? AND e.face_id = pp.face_id)""",
                            [projection_id, run_id]) or 0)


def delete_orphaned(store: Store, projection_id: str, run_id: str) -> None:
    """The map's points whose face has no embedding in the run any more."""
    store.execute("""
        DELETE FROM projection_points pp WHERE pp.projection_id = ? AND NOT EXISTS
          (SELECT 1 FROM embeddings e WHERE e.run_id = ? AND e.face_id = pp.face_id)""", [projection_id, run_id])


def delete_map(store: Store, projection_id: str) -> None:
    """A map and all its points, in one transaction (before it is fitted again under the same id)."""
    with store.transaction() as con:
        con.execute("DELETE FROM projection_points WHERE projection_id = ?", [projection_id])
        con.execute("DELETE FROM projections WHERE projection_id = ?", [projection_id])


def point_rows(store: Store, projection_id: str, datasets=None) -> pd.DataFrame:
    """face_id, dataset, x, y, is_reference of a map (of `datasets` only when given), by face_id."""
    if datasets:
        return store.df("SELECT face_id, dataset, x, y, is_reference FROM projection_points WHERE projection_id = ? "
                        "AND dataset IN (SELECT unnest(?)) ORDER BY face_id", [projection_id, list(datasets)])
    return store.df("SELECT face_id, dataset, x, y, is_reference FROM projection_points WHERE projection_id = ? "
                    "ORDER BY face_id", [projection_id])


def map_overview(store: Store) -> pd.DataFrame:
    return store.df("SELECT * FROM projections ORDER BY created_at DESC")


def run_map_points(store: Store, projection_id: str, run_id: str, classifiers) -> pa.Table:
    """Every point of a map with its face's video and labels and, per classifier `classifiers[i]`, its
    prediction as `pred_idx_<i>`, `real_score_<i>`, `probs_<i>` (NULL where it has none), in no set order (the
    caller orders: sorting a million text keys here cost more than the joins): one query for all of a run's
    classifiers (the dashboard's map holds them all at once).
    Columns: face_id, video_id, dataset, database, x, y, true_class, then the classifiers' columns."""
    joins, cols, params = [], [], []
    for i, clf in enumerate(classifiers):  # the aliases are numbered here; the names are parameters
        joins.append(f"LEFT JOIN predictions p{i} ON p{i}.run_id = ? AND p{i}.classifier = ? "
                     f"AND p{i}.face_id = pp.face_id")
        cols.append(f", p{i}.pred_class AS pred_idx_{i}, p{i}.real_score AS real_score_{i}, p{i}.probs AS probs_{i}")
        params += [run_id, clf]
    return store.arrow(f"""
        SELECT pp.face_id, f.video_id, pp.dataset, v.database, pp.x, pp.y, v.true_class{''.join(cols)}
        FROM projection_points pp
        JOIN faces f ON f.face_id = pp.face_id
        JOIN videos v ON v.video_id = f.video_id
        {' '.join(joins)}
        WHERE pp.projection_id = ?""", params + [projection_id])
