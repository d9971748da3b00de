"""Analysed unknown sets (`unknown/<name>`): the readers and writers `engine.analysis` uses.

A set is complete when its `datasets` row exists (`write_analysis` writes it
last, with the embeddings, predictions and map points); `delete_set_rows`
removes a set (or one run's part of it) in one transaction.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from .connection import Store


# --- the set's rows ---------------------------------------------------------------

def dataset_row(store: Store, dataset: str) -> dict | None:
    """The `datasets` row of a dataset (every column), or None."""
    df = store.df("SELECT * FROM datasets WHERE dataset = ?", [dataset])
    return None if df.empty else df.iloc[0].to_dict()


def set_state(store: Store, dataset: str, run_id: str) -> dict:
    """complete (a datasets row), source, n_videos recorded, analysed_by_run (the run has embeddings of it)."""
    row = dataset_row(store, dataset)
    n_videos = store.scalar("SELECT count(*) FROM videos WHERE dataset = ?", [dataset]) or 0
    n_run = store.scalar("SELECT count(*) FROM embeddings WHERE run_id = ? AND dataset = ?", [run_id, dataset]) or 0
    return {"complete": row is not None, "source": None if row is None else row.get("source"),
            "n_videos": int(n_videos), "analysed_by_run": int(n_run) > 0}


def set_faces(store: Store, dataset: str, settings_key: str) -> pd.DataFrame:
    """face_id, video_id, crop_path of a dataset's faces (one face setting), by video and frame."""
    return store.df(
        "SELECT f.face_id, f.video_id, f.crop_path FROM faces f JOIN videos v ON v.video_id = f.video_id "
        "WHERE v.dataset = ? AND f.settings_key = ? ORDER BY f.video_id, f.frame_index", [dataset, settings_key])


def face_status_counts(store: Store, dataset: str, settings_key: str) -> pd.DataFrame:
    """status, n: face-extraction statuses of a dataset's videos, most frequent first."""
    return store.df("SELECT status, count(*) AS n FROM face_videos fv JOIN videos v USING (video_id) "
                    "WHERE v.dataset = ? AND fv.settings_key = ? GROUP BY 1 ORDER BY 2 DESC, 1",
                    [dataset, settings_key])


def set_videos(store: Store, dataset: str, settings_key: str) -> pd.DataFrame:
    """video_id, relpath, true_class, is_fake, status, reason (face extraction) of a dataset, by video."""
    return store.df(
        "SELECT v.video_id, v.relpath, v.true_class, v.is_fake, fv.status, fv.reason FROM videos v "
        "LEFT JOIN face_videos fv ON fv.video_id = v.video_id AND fv.settings_key = ? "
        "WHERE v.dataset = ? ORDER BY v.video_id", [settings_key, dataset])


def set_problems(store: Store, dataset: str) -> pd.DataFrame:
    """kind, path, message of a set's input problems (files not used, with the reason), by path."""
    return store.df("SELECT kind, path, message FROM catalog_problems WHERE dataset = ? ORDER BY path, kind",
                    [dataset])


def set_files(store: Store, dataset: str) -> pd.DataFrame:
    """video_id, relpath (the name on disk), original_name, sha256, size_bytes, note (why no digest),
    hashed_at of a set's videos (NULLs for a video recorded before hashes were kept), by video."""
    return store.df(
        "SELECT v.video_id, v.relpath, vf.original_name, vf.sha256, vf.size_bytes, vf.note, vf.hashed_at FROM videos v "
        "LEFT JOIN video_files vf ON vf.video_id = v.video_id WHERE v.dataset = ? ORDER BY v.video_id", [dataset])


def video_row(store: Store, video_id: str, settings_key: str) -> dict | None:
    """The `videos` row of one video with its `datasets` role, its face-extraction status and reason under
    `settings_key`, and the `video_files` name and hash, or None."""
    df = store.df(
        "SELECT v.video_id, v.database, v.split, v.dataset, v.relpath, v.true_class, v.is_fake, v.identity, "
        "v.synthetic, d.role, fv.status, fv.reason, vf.original_name, vf.sha256 FROM videos v "
        "LEFT JOIN datasets d ON d.dataset = v.dataset LEFT JOIN video_files vf ON vf.video_id = v.video_id "
        "LEFT JOIN face_videos fv ON fv.video_id = v.video_id AND fv.settings_key = ? "
        "WHERE v.video_id = ?", [settings_key, video_id])
    return None if df.empty else df.iloc[0].to_dict()


def video_frames(store: Store, run_id: str, video_id: str, classifier: str, settings_key: str,
                 projection_id: str | None) -> pa.Table:
    """face_id, frame_index, thumbnail, pred_class, real_score, probs (NULL without a `classifier` prediction),
    embedding (NULL when the run has not embedded it), x, y (NULL when not on map `projection_id`) of one
    video's faces, by frame."""
    return store.arrow(
        "SELECT f.face_id, f.frame_index, f.thumbnail, p.pred_class, p.real_score, p.probs, e.embedding, pp.x, pp.y "
        "FROM faces f LEFT JOIN embeddings e ON e.face_id = f.face_id AND e.run_id = ? "
        "LEFT JOIN predictions p ON p.face_id = f.face_id AND p.run_id = ? AND p.classifier = ? "
        "LEFT JOIN projection_points pp ON pp.face_id = f.face_id AND pp.projection_id = ? "
        "WHERE f.video_id = ? AND f.settings_key = ? ORDER BY f.frame_index",
        [run_id, run_id, classifier, projection_id, video_id, settings_key])


def embedded_videos_matching(store: Store, run_id: str, text: str, limit: int = 50) -> list[str]:
    """Ids of videos with faces the run has embedded whose id contains `text` (case-insensitive), sorted."""
    pattern = "%" + str(text).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    df = store.df("SELECT DISTINCT f.video_id FROM embeddings e JOIN faces f ON f.face_id = e.face_id "
                  "WHERE e.run_id = ? AND f.video_id ILIKE ? ESCAPE '\\' ORDER BY 1 LIMIT ?",
                  [run_id, pattern, int(limit)])
    return df["video_id"].tolist()


def set_face_thumbnails(store: Store, dataset: str, settings_key: str) -> pd.DataFrame:
    """face_id, video_id, frame_index, thumbnail of a dataset's faces (one face setting), by video and frame."""
    return store.df(
        "SELECT f.face_id, f.video_id, f.frame_index, f.thumbnail FROM faces f JOIN videos v ON v.video_id = f.video_id "
        "WHERE v.dataset = ? AND f.settings_key = ? ORDER BY f.video_id, f.frame_index", [dataset, settings_key])


def set_face_predictions(store: Store, run_id: str, dataset: str, classifier: str) -> pa.Table:
    """face_id, video_id, frame_index, pred_class, real_score, probs (NULL without a `classifier`
    prediction), embedding of a dataset's embedded faces, by video and frame."""
    return store.arrow(
        "SELECT e.face_id, f.video_id, f.frame_index, p.pred_class, p.real_score, p.probs, e.embedding "
        "FROM embeddings e JOIN faces f ON f.face_id = e.face_id "
        "LEFT JOIN predictions p ON p.run_id = e.run_id AND p.face_id = e.face_id AND p.classifier = ? "
        "WHERE e.run_id = ? AND e.dataset = ? ORDER BY f.video_id, f.frame_index",
        [classifier, run_id, dataset])


def labelled_embeddings(store: Store, run_id: str, datasets) -> pa.Table:
    """face_id, video_id, database, split, true_class, is_fake, identity, embedding of `datasets`, by face_id
    (the population `engine.scores.theta_population` selects from)."""
    return store.arrow(
        "SELECT e.face_id, f.video_id, v.database, v.split, v.true_class, v.is_fake, v.identity, e.embedding "
        "FROM embeddings e "
        "JOIN faces f ON f.face_id = e.face_id JOIN videos v ON v.video_id = f.video_id "
        "WHERE e.run_id = ? AND e.dataset IN (SELECT unnest(?::VARCHAR[])) ORDER BY e.face_id",
        [run_id, list(datasets)])


def video_face_embeddings(store: Store, run_id: str, dataset: str) -> pa.Table:
    """video_id, embedding of every embedded face of one dataset, by face_id."""
    return store.arrow("SELECT f.video_id, e.embedding FROM embeddings e JOIN faces f ON f.face_id = e.face_id "
                       "WHERE e.run_id = ? AND e.dataset = ? ORDER BY e.face_id", [run_id, dataset])


def video_face_predictions(store: Store, run_id: str, video_id: str, classifier: str) -> pa.Table:
    """face_id, dataset, frame_index, pred_class, real_score, probs (NULL without a `classifier` prediction),
    embedding of one video's embedded faces, by frame."""
    return store.arrow(
        "SELECT e.face_id, e.dataset, f.frame_index, p.pred_class, p.real_score, p.probs, e.embedding "
        "FROM embeddings e JOIN faces f ON f.face_id = e.face_id "
        "LEFT JOIN predictions p ON p.run_id = e.run_id AND p.face_id = e.face_id AND p.classifier = ? "
        "WHERE e.run_id = ? AND f.video_id = ? ORDER BY f.frame_index, e.face_id", [classifier, run_id, video_id])


def one_video_embeddings(store: Store, run_id: str, video_id: str) -> pa.Table:
    """face_id, embedding of one video's embedded faces, by face_id."""
    return store.arrow("SELECT e.face_id, e.embedding FROM embeddings e JOIN faces f ON f.face_id = e.face_id "
                       "WHERE e.run_id = ? AND f.video_id = ? ORDER BY e.face_id", [run_id, video_id])


def face_details(store: Store, face_ids) -> pd.DataFrame:
    """face_id, video_id, true_class, thumbnail of the given faces."""
    return store.df("SELECT f.face_id, f.video_id, v.true_class, f.thumbnail FROM faces f "
                    "JOIN videos v ON v.video_id = f.video_id WHERE f.face_id IN (SELECT face_id FROM _ids)",
                    tables={"_ids": pa.table({"face_id": pa.array(list(face_ids), pa.string())})})


def class_thumbnails(store: Store, run_id: str, dataset: str, classifier: str, per_class: int = 8) -> pd.DataFrame:
    """pred_class, face_id, video_id, thumbnail: a few faces per predicted class (most confident first)."""
    return store.df(
        "SELECT pred_class, face_id, video_id, thumbnail FROM ("
        " SELECT p.pred_class, p.face_id, f.video_id, f.thumbnail, row_number() OVER ("
        "   PARTITION BY p.pred_class ORDER BY coalesce(list_max(p.probs), p.real_score) DESC, p.face_id) AS rk"
        " FROM predictions p JOIN faces f ON f.face_id = p.face_id"
        " WHERE p.run_id = ? AND p.classifier = ? AND p.dataset = ?) WHERE rk <= ? ORDER BY pred_class, rk",
        [run_id, classifier, dataset, per_class])


def set_projection_id(store: Store, run_id: str, dataset: str) -> str | None:
    """The run's map that holds the dataset's points (the most recent one), or None."""
    return store.scalar(
        "SELECT pp.projection_id FROM projection_points pp JOIN projections p USING (projection_id) "
        "WHERE pp.dataset = ? AND p.run_id = ? GROUP BY pp.projection_id, p.created_at "
        "ORDER BY p.created_at DESC, pp.projection_id LIMIT 1", [dataset, run_id])


def list_sets(store: Store, role: str, run_id: str | None = None) -> pd.DataFrame:
    """dataset, source, labelled, created_at, run_id, n_faces of the sets of `role` (with the runs that
    embedded them), newest first."""
    return store.df(
        "SELECT d.dataset, d.source, d.labelled, d.created_at, e.run_id, count(*) AS n_faces FROM datasets d "
        "JOIN embeddings e ON e.dataset = d.dataset WHERE d.role = ? AND (? IS NULL OR e.run_id = ?) "
        "GROUP BY ALL ORDER BY d.created_at DESC, d.dataset, e.run_id", [role, run_id, run_id])


# --- writing ------------------------------------------------------------------------

def write_set_videos(store: Store, videos: pa.Table, problems: pa.Table | None = None,
                     files: pa.Table | None = None) -> None:
    """A set's `videos` rows (engine.store.catalog.videos_table), replacing rows of the same ids, its input
    problems (engine.store.catalog.problems_table with the set's dataset) and its `video_files` rows
    (`files_table`: original names and hashes), in one transaction."""
    with store.transaction() as con:
        store.insert("videos", videos, replace=True, con=con)
        if problems is not None and problems.num_rows:
            con.execute("DELETE FROM catalog_problems WHERE dataset = ?", [problems.column("dataset")[0].as_py()])
            store.insert("catalog_problems", problems, con=con)
        if files is not None:
            store.insert("video_files", files, replace=True, con=con)


def write_files(store: Store, files: pa.Table) -> None:
    """`video_files` rows (`files_table`), replacing rows of the same videos."""
    store.insert("video_files", files, replace=True)


def files_table(video_id, original_name, sha256, size_bytes, note=None) -> pa.Table:
    """`video_files` rows, one per entry of the (equal-length) columns (`note`: why a file has no digest)."""
    video_id = list(video_id)
    return pa.table({"video_id": pa.array(video_id, pa.string()),
                     "original_name": pa.array(list(original_name), pa.string()),
                     "sha256": pa.array(list(sha256), pa.string()),
                     "size_bytes": pa.array(list(size_bytes), pa.int64()),
                     "note": pa.array(list(note) if note is not None else [None] * len(video_id), pa.string())})


def write_analysis(store: Store, embeddings: pa.Table, predictions: list[pa.Table], points: pa.Table,
                   dataset: pa.Table | None) -> None:
    """Everything an analysis computed, in one transaction; the `datasets` row (when given) marks it complete."""
    with store.transaction() as con:
        store.insert("embeddings", embeddings, replace=True, con=con)
        for t in predictions:
            store.insert("predictions", t, replace=True, con=con)
        store.insert("projection_points", points, replace=True, con=con)
        if dataset is not None:
            store.insert("datasets", dataset, con=con)


def _count_delete(con, count_sql: str, delete_sql: str, params: list) -> int:
    n = con.execute(count_sql, params).fetchone()[0]
    con.execute(delete_sql, params)
    return int(n)


def delete_set_rows(store: Store, dataset: str, run_id: str | None = None) -> tuple[dict[str, int], list[str]]:
    """Remove a dataset's rows in one transaction; returns (rows removed per table, crop paths of removed faces).

    With `run_id`: only that run's embeddings, predictions and map points.
    Without: every run's, and the face rows, face statuses, videos and the `datasets` row.
    """
    counts: dict[str, int] = {}
    crop_paths: list[str] = []
    with store.transaction() as con:
        if run_id is None:
            counts["embeddings"] = _count_delete(con, "SELECT count(*) FROM embeddings WHERE dataset = ?",
                                                 "DELETE FROM embeddings WHERE dataset = ?", [dataset])
            counts["predictions"] = _count_delete(con, "SELECT count(*) FROM predictions WHERE dataset = ?",
                                                  "DELETE FROM predictions WHERE dataset = ?", [dataset])
            counts["projection_points"] = _count_delete(
                con, "SELECT count(*) FROM projection_points WHERE dataset = ?",
                "DELETE FROM projection_points WHERE dataset = ?", [dataset])
            crop_paths = [r[0] for r in con.execute(
                "SELECT crop_path FROM faces WHERE video_id IN (SELECT video_id FROM videos WHERE dataset = ?)",
                [dataset]).fetchall()]
            counts["faces"] = len(crop_paths)
            con.execute("DELETE FROM faces WHERE video_id IN (SELECT video_id FROM videos WHERE dataset = ?)",
                        [dataset])
            con.execute("DELETE FROM face_videos WHERE video_id IN (SELECT video_id FROM videos WHERE dataset = ?)",
                        [dataset])
            con.execute("DELETE FROM video_files WHERE video_id IN (SELECT video_id FROM videos WHERE dataset = ?)",
                        [dataset])
            counts["videos"] = _count_delete(con, "SELECT count(*) FROM videos WHERE dataset = ?",
                                             "DELETE FROM videos WHERE dataset = ?", [dataset])
            con.execute("DELETE FROM catalog_problems WHERE dataset = ?", [dataset])
            con.execute("DELETE FROM datasets WHERE dataset = ?", [dataset])
        else:
            params = [dataset, run_id]
            counts["embeddings"] = _count_delete(
                con, "SELECT count(*) FROM embeddings WHERE dataset = ? AND run_id = ?",
                "DELETE FROM embeddings WHERE dataset = ? AND run_id = ?", params)
            counts["predictions"] = _count_delete(
                con, "SELECT count(*) FROM predictions WHERE dataset = ? AND run_id = ?",
                "DELETE FROM predictions WHERE dataset = ? AND run_id = ?", params)
            counts["projection_points"] = _count_delete(
                con, "SELECT count(*) FROM projection_points WHERE dataset = ? "
                     "AND projection_id IN (SELECT projection_id FROM projections WHERE run_id = ?)",
                "DELETE FROM projection_points WHERE dataset = ? "
                "AND projection_id IN (SELECT projection_id FROM projections WHERE run_id = ?)", params)
    return counts, crop_paths


def face_extraction_cost(store: Store, settings_key: str, exclude_database: str) -> dict:
    """videos, faces and decode + detect CPU seconds of one face setting's extraction, outside one database
    (the baseline an analysis's face stage is compared with)."""
    df = store.df("SELECT count(*) AS videos, coalesce(sum(n_faces), 0) AS faces, "
                  "coalesce(sum(decode_s + detect_s), 0) AS s FROM face_videos fv JOIN videos v USING (video_id) "
                  "WHERE fv.settings_key = ? AND v.database <> ?", [settings_key, exclude_database])
    r = df.iloc[0]
    return {"videos": int(r.videos), "faces": int(r.faces), "seconds": float(r.s)}
