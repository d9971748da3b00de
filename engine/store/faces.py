"""Face extraction's tables (`face_settings`, `face_videos`, `faces`): one Arrow builder per table,
the batch writer `engine.faces` records through, and the readers of faces, thumbnails and statuses.

A face is `<video_id>#<frame_index>@<settings_key>` (`face_ids`); a video's
faces and its `face_videos` status row are written in one transaction, so a
video is in the store whole or not at all.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .connection import Store

def _ids(name: str, values) -> dict:
    return {"_ids": pa.table({name: pa.array(list(values), pa.string())})}


# --- builders ---------------------------------------------------------------------

def face_ids(video_id, frame_index, settings_key: str) -> pa.Array:
    """Face ids `<video_id>#<frame_index>@<settings_key>` for equal-length video / frame columns."""
    video_id = pa.array(video_id, pa.string()) if not isinstance(video_id, pa.Array) else video_id
    frames = pc.cast(pa.array(np.asarray(frame_index, dtype=np.int64)), pa.string())
    n = len(video_id)
    return pc.binary_join_element_wise(video_id, pa.array(["#"] * n, pa.string()), frames,
                                       pa.array([f"@{settings_key}"] * n, pa.string()), "")


def settings_table(settings_key: str, params: dict) -> pa.Table:
    """One `face_settings` row: the settings key and its parameters (as sorted JSON)."""
    return pa.table({"settings_key": pa.array([settings_key], pa.string()),
                     "params_json": pa.array([json.dumps(params, sort_keys=True)], pa.string())})


def faces_table(settings_key: str, video_id, frame_index, crop_path, thumbnail, box, score, detector) -> pa.Table:
    """`faces` rows: `box` is an [N, 4] array of x, y, w, h in frame pixels; face ids are made here."""
    video_id = pa.array(list(video_id), pa.string())
    frames = np.asarray(frame_index, dtype=np.int32)
    n = len(video_id)
    box = np.asarray(box, dtype=np.float64).reshape(n, 4)
    return pa.table({
        "face_id": face_ids(video_id, frames, settings_key), "video_id": video_id,
        "settings_key": pa.array([settings_key] * n, pa.string()), "frame_index": pa.array(frames, pa.int32()),
        "crop_path": pa.array(list(crop_path), pa.string()), "thumbnail": pa.array(list(thumbnail), pa.binary()),
        "box_x": pa.array(box[:, 0]), "box_y": pa.array(box[:, 1]), "box_w": pa.array(box[:, 2]),
        "box_h": pa.array(box[:, 3]), "score": pa.array(np.asarray(score, dtype=np.float64).reshape(n)),
        "detector": pa.array(list(detector), pa.string()),
    })


def face_videos_table(settings_key: str, video_id, status, reason, n_frames, n_sampled, n_faces, width, height,
                      fps, decode_s, detect_s) -> pa.Table:
    """`face_videos` status rows, one per video (an empty `reason` is stored as NULL)."""
    video_id = pa.array(list(video_id), pa.string())
    n = len(video_id)
    return pa.table({
        "video_id": video_id, "settings_key": pa.array([settings_key] * n, pa.string()),
        "status": pa.array(list(status), pa.string()), "reason": pa.array([r or None for r in reason], pa.string()),
        "n_frames": pa.array(list(n_frames), pa.int32()), "n_sampled": pa.array(list(n_sampled), pa.int32()),
        "n_faces": pa.array(list(n_faces), pa.int32()), "width": pa.array(list(width), pa.int32()),
        "height": pa.array(list(height), pa.int32()), "fps": pa.array(list(fps), pa.float64()),
        "decode_s": pa.array(list(decode_s), pa.float64()), "detect_s": pa.array(list(detect_s), pa.float64()),
    })


# --- writers ----------------------------------------------------------------------

def write_settings(store: Store, settings: pa.Table, con=None) -> None:
    """Record a settings key once: the first record of a key (its model files) is kept."""
    if con is None:
        with store.transaction() as own:
            return write_settings(store, settings, own)
    key = settings.column("settings_key")[0].as_py()
    if not con.execute("SELECT count(*) FROM face_settings WHERE settings_key = ?", [key]).fetchall()[0][0]:
        store.insert("face_settings", settings, con=con)


def write_video_faces(store: Store, faces: pa.Table, statuses: pa.Table) -> None:
    """A batch of whole videos in one transaction: their old rows of the same settings key (a forced
    re-run's) go, then every face row, then every status row."""
    if statuses.num_rows == 0:
        return
    key = statuses.column("settings_key")[0].as_py()
    with store.transaction() as con:
        con.register("_batch_ids", pa.table({"video_id": statuses.column("video_id")}))
        try:
            con.execute("DELETE FROM faces WHERE settings_key = ? AND video_id IN (SELECT video_id FROM _batch_ids)",
                        [key])
            con.execute("DELETE FROM face_videos WHERE settings_key = ? AND video_id IN "
                        "(SELECT video_id FROM _batch_ids)", [key])
        finally:
            con.unregister("_batch_ids")
        store.insert("faces", faces, con=con)
        store.insert("face_videos", statuses, con=con)


# --- readers ----------------------------------------------------------------------

def settings_record(store: Store, settings_key: str) -> dict | None:
    """The recorded parameters of a settings key (with its model files' hashes), or None."""
    text = store.scalar("SELECT params_json FROM face_settings WHERE settings_key = ?", [settings_key])
    return None if text is None else json.loads(text)


def finished_videos(store: Store, settings_key: str, statuses) -> set[str]:
    """Videos with a status row of this settings key in `statuses` (what a re-run skips:
    `engine.faces.extract.FINAL_STATUSES`)."""
    t = store.arrow("SELECT video_id FROM face_videos WHERE settings_key = ? AND status IN "
                    "(SELECT unnest(?::VARCHAR[]))", [settings_key, list(statuses)])
    return set(t.column("video_id").to_pylist())


def face_rows(store: Store, settings_key: str, video_ids=None) -> pa.Table:
    """face_id, video_id, frame_index, crop_path, score, detector of one settings key (thumbnails
    left out), of `video_ids` when given, by video and frame."""
    if video_ids is None:
        return store.arrow("SELECT face_id, video_id, frame_index, crop_path, score, detector FROM faces "
                           "WHERE settings_key = ? ORDER BY video_id, frame_index", [settings_key])
    return store.arrow("SELECT face_id, video_id, frame_index, crop_path, score, detector FROM faces "
                       "WHERE settings_key = ? AND video_id IN (SELECT video_id FROM _ids) "
                       "ORDER BY video_id, frame_index", [settings_key], tables=_ids("video_id", video_ids))


def labelled_faces(store: Store, settings_key: str, databases, splits=("train", "val")) -> pd.DataFrame:
    """face_id, video_id, crop_path, frame_index, split, true_class, is_fake of the labelled videos of
    `databases` in `splits` (the training super-set's faces), by face_id."""
    return store.df("""
        SELECT f.face_id, f.video_id, f.crop_path, f.frame_index, v.split, v.true_class, v.is_fake
        FROM faces f JOIN videos v ON f.video_id = v.video_id
        WHERE f.settings_key = ? AND v.database IN (SELECT unnest(?::VARCHAR[]))
          AND v.split IN (SELECT unnest(?::VARCHAR[])) AND v.true_class IS NOT NULL
        ORDER BY f.face_id""", [settings_key, list(databases), list(splits)])


def video_faces(store: Store, video_id: str, settings_key: str | None = None) -> pa.Table:
    """One video's faces (of every settings key, or one): face_id, settings_key, frame_index, crop_path,
    thumbnail, box_x, box_y, box_w, box_h, score, detector — by settings key and frame."""
    return store.arrow("""
        SELECT face_id, settings_key, frame_index, crop_path, thumbnail, box_x, box_y, box_w, box_h, score, detector
        FROM faces WHERE video_id = ? AND (?::VARCHAR IS NULL OR settings_key = ?)
        ORDER BY settings_key, frame_index""", [video_id, settings_key, settings_key])


def thumbnails(store: Store, face_ids) -> list[bytes]:
    """JPEG thumbnails in the order of `face_ids` (b'' for a face without one, or unknown)."""
    face_ids = list(face_ids)
    if not face_ids:
        return []
    t = store.arrow("SELECT face_id, thumbnail FROM faces WHERE face_id IN (SELECT face_id FROM _ids)",
                    tables=_ids("face_id", face_ids))
    by_id = dict(zip(t.column("face_id").to_pylist(), t.column("thumbnail").to_pylist()))
    return [bytes(by_id.get(f) or b"") for f in face_ids]


def face_video_rows(store: Store, settings_key: str | None = None, video_ids=None) -> pd.DataFrame:
    """Every column of `face_videos` (of one settings key, of `video_ids` when given), by video and key."""
    if video_ids is None:
        return store.df("SELECT * FROM face_videos WHERE ?::VARCHAR IS NULL OR settings_key = ? "
                        "ORDER BY video_id, settings_key", [settings_key, settings_key])
    return store.df("SELECT * FROM face_videos WHERE (?::VARCHAR IS NULL OR settings_key = ?) "
                    "AND video_id IN (SELECT video_id FROM _ids) ORDER BY video_id, settings_key",
                    [settings_key, settings_key], tables=_ids("video_id", video_ids))


def status_by_class(store: Store, settings_key: str, video_ids=None) -> pd.DataFrame:
    """class, status, videos, faces, frames for one settings key (of `video_ids` when given): videos
    without a face stay counted under their class; unlabelled videos under '(unlabelled)'."""
    if video_ids is None:
        return store.df("""
            SELECT coalesce(v.true_class, '(unlabelled)') AS class, fv.status,
                   count(*) AS videos, sum(fv.n_faces) AS faces, sum(fv.n_sampled) AS frames
            FROM face_videos fv LEFT JOIN videos v USING (video_id)
            WHERE fv.settings_key = ? GROUP BY ALL ORDER BY 1, 2""", [settings_key])
    return store.df("""
        SELECT coalesce(v.true_class, '(unlabelled)') AS class, fv.status,
               count(*) AS videos, sum(fv.n_faces) AS faces, sum(fv.n_sampled) AS frames
        FROM face_videos fv LEFT JOIN videos v USING (video_id)
        WHERE fv.settings_key = ? AND fv.video_id IN (SELECT video_id FROM _ids)
        GROUP BY ALL ORDER BY 1, 2""", [settings_key], tables=_ids("video_id", video_ids))
