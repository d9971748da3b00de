"""Bulk readers behind the metrics tables: one open connection per table, Arrow out."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from .connection import Store

_VIDEO_CODES = "SELECT video_id, row_number() OVER (ORDER BY video_id) - 1 AS vc FROM videos WHERE split <> 'train'"


def evaluation_data(store: Store, pairs: list[tuple[str, str]], with_probs: bool) -> dict[str, pa.Table]:
    """Everything `engine.evaluation.metrics_table` needs, read in one unit of work.

    - `videos`: video_id, database, split, dataset, is_fake, true_class of every
      non-training video; row i is video code i (ordered by video_id);
    - `scores`: combo (index into `pairs`), vc (video code), real_score,
      pred_class (and probs) of every face predicted by a wanted (run, classifier);
    - `also_in`: video_id, dataset of videos that belong to a dataset only
      through `videos.also_in` (a file two databases share is stored once).
    """
    combos = pa.table({"run_id": [r for r, _ in pairs], "classifier": [c for _, c in pairs],
                       "combo": pa.array(range(len(pairs)), pa.int32())})
    probs = ", p.probs" if with_probs else ""
    with store.connect() as con, store._registered(con, {"_combos": combos}):
        videos = con.sql("""
            SELECT video_id, database, split, dataset, is_fake, true_class FROM videos
            WHERE split <> 'train' ORDER BY video_id""").to_arrow_table()
        scores = con.sql(f"""
            WITH vv AS ({_VIDEO_CODES})
            SELECT c.combo, vv.vc, p.real_score, p.pred_class{probs}
            FROM predictions p
            JOIN _combos c ON c.run_id = p.run_id AND c.classifier = p.classifier
            JOIN faces f ON f.face_id = p.face_id
            JOIN vv ON vv.video_id = f.video_id""").to_arrow_table()
        also_in = con.sql("SELECT video_id, unnest(also_in) AS dataset FROM videos "
                              "WHERE also_in IS NOT NULL AND len(also_in) > 0").to_arrow_table()
    return {"videos": videos, "scores": scores, "also_in": also_in}


def detection_losses(store: Store, settings_key: str | None = None) -> pd.DataFrame:
    """Videos per (dataset, class) lost to face extraction, by status."""
    where = "WHERE fv.settings_key = ?" if settings_key else ""
    return store.df(f"""
        SELECT v.dataset, coalesce(v.true_class, 'unlabelled') AS true_class, count(*) AS n_videos,
               count(*) FILTER (WHERE fv.status <> 'ok') AS n_lost,
               count(*) FILTER (WHERE fv.status <> 'ok')::DOUBLE / count(*) AS lost_share,
               string_agg(DISTINCT fv.status, ',') FILTER (WHERE fv.status <> 'ok') AS statuses
        FROM face_videos fv JOIN videos v USING (video_id) {where}
        GROUP BY ALL ORDER BY 1, 2""", [settings_key] if settings_key else None)
