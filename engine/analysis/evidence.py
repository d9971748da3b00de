"""Evidence for a verdict: a video's verdict with its nearest training faces, thumbnails per class, open-set rates.

The evidence comes from the same definition as the verdict (`engine.analysis.verdict`):
the classifier's class, the open-set score and its threshold, and the training /
validation faces nearest to the video in the `knn` score's geometry (cosine
distance of L2-normalised embeddings: a reference face's distance is its smallest
distance to any of the video's faces), **one face per identity** (near-duplicate
frames of a video, and the videos of one person, collapse to the nearest face), of
the verdict's class. For an open-set verdict the nearest faces of any class are
shown (with distances larger than known videos of their class usually have).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..metrics import video_level
from ..openset import OpenSetModel, normalise
from ..runs import read_run
from ..store import Store, arrow_to_matrix
from ..store import analyses as set_table
from .report import _probs_matrix, available_classifiers, default_classifier
from .verdict import OPEN_SET_LABEL, calibrate_open_set, open_set_section, read_labelled_embeddings

_EVIDENCE_COLUMNS = ["face_id", "video_id", "identity", "dataset", "true_class", "distance", "thumbnail"]
DISTANCE = "cosine distance of L2-normalised embeddings (the knn open-set score's geometry)"


def _reference(store: Store, run, splits) -> pd.DataFrame:
    parts = [read_labelled_embeddings(store, run, s) for s in splits]
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=["face_id", "video_id", "identity", "database", "split", "true_class"])
    embedding = np.concatenate([p.attrs["embedding"] for p in parts])
    for p in parts:
        p.attrs = {}
    ref = pd.concat(parts, ignore_index=True)
    ref.attrs["embedding"] = embedding
    return ref


def _ranked_identities(query: np.ndarray, ref: pd.DataFrame) -> pd.DataFrame:
    """Reference faces ranked by their distance to the nearest query face, one (the nearest) per identity."""
    q = normalise(query)
    r = normalise(ref.attrs["embedding"])
    best = np.empty(len(r))
    for start in range(0, len(r), 20000):  # bounded memory: [n_query, 20000] at a time
        best[start:start + 20000] = np.clip(1.0 - q @ r[start:start + 20000].T, 0.0, 2.0).min(0)
    identity = ref["identity"].fillna(ref["video_id"]).astype(str).to_numpy()
    out = pd.DataFrame({"face_id": ref["face_id"].to_numpy(), "video_id": ref["video_id"].to_numpy(),
                        "identity": identity, "dataset": (ref["database"] + "/" + ref["split"]).to_numpy(),
                        "true_class": ref["true_class"].to_numpy(), "distance": best})
    out = out.sort_values("distance", kind="stable").drop_duplicates("identity", keep="first")
    return out.reset_index(drop=True)


def nearest_known_faces(store: Store, run_id: str, video_id: str, k: int = 12,
                        splits: tuple[str, ...] = ("train", "val"), of_class: str | None = None) -> pd.DataFrame:
    """The `k` training / validation faces nearest to a video, one per identity (see the module doc), of
    class `of_class` when given: face_id, video_id, identity, dataset, true_class, distance, thumbnail."""
    run = read_run(store, run_id)
    q = set_table.one_video_embeddings(store, run_id, video_id)
    ref = _reference(store, run, splits)
    if q.num_rows == 0 or ref.empty:
        return pd.DataFrame(columns=_EVIDENCE_COLUMNS)
    ranked = _ranked_identities(arrow_to_matrix(q.column("embedding")), ref)
    if of_class is not None:
        ranked = ranked[ranked["true_class"] == of_class]
    return _details(store, ranked.head(k))


def _details(store: Store, ranked: pd.DataFrame) -> pd.DataFrame:
    if ranked.empty:
        return pd.DataFrame(columns=_EVIDENCE_COLUMNS)
    meta = set_table.face_details(store, ranked["face_id"].tolist())[["face_id", "thumbnail"]]
    return ranked.merge(meta, on="face_id", how="left")[_EVIDENCE_COLUMNS]


@dataclass
class Evidence:
    """One video's verdict and the faces behind it, from one definition (see the module doc)."""

    video_id: str
    run_id: str
    classifier: str
    verdict: str                  # a class id, OPEN_SET_LABEL, or "" when the video has no embedded face
    pred_class: str               # the classifier's class (majority of frames), also when the verdict is open-set
    class_shares: dict            # the classifier's class -> share of the video's frames (its nearest known classes)
    open_score: float
    open_threshold: float         # a video is open-set above it (set on known validation videos)
    open_set: bool
    score_definition: str
    distance: str                 # what the faces' `distance` is
    faces: pd.DataFrame           # the nearest faces (of the verdict's class; any class when open-set)
    agreement: float              # share of the k nearest identities of ANY class that are of pred_class
    frames: pd.DataFrame = field(default_factory=pd.DataFrame)  # the video's faces: face_id, frame_index,
    #                               pred_class, real_score, open_score
    face_threshold: float = float("nan")  # a face alone is open-set above it (set on known validation faces)


def video_evidence(store: Store, run_id: str, video_id: str, classifier: str | None = None, k: int = 12,
                   osm: OpenSetModel | None = None, cfg=None) -> Evidence:
    """The verdict of one video (of an analysed set or of a known database) and its evidence."""
    run = read_run(store, run_id)
    tbl = set_table.video_face_predictions(store, run_id, video_id, classifier or run.default_classifier)
    if classifier is None:
        ds = tbl.column("dataset")[0].as_py() if tbl.num_rows else None
        classifier = default_classifier(run, available_classifiers(store, run, ds))
        tbl = set_table.video_face_predictions(store, run_id, video_id, classifier)
    osm = osm or calibrate_open_set(store, run, None, open_set_section(run, cfg), classifier)
    empty = pd.DataFrame(columns=_EVIDENCE_COLUMNS)
    if tbl.num_rows == 0:
        return Evidence(video_id, run_id, classifier, "", "", {}, float("nan"), osm.video_threshold, False,
                        osm.describe, DISTANCE, empty, float("nan"), face_threshold=osm.face_threshold)
    frames = tbl.drop_columns(["embedding", "probs"]).to_pandas()
    emb = arrow_to_matrix(tbl.column("embedding"))
    probs = _probs_matrix(tbl.column("probs"))
    pred = frames["pred_class"].fillna(-1).astype(int).to_numpy()
    vl = video_level(np.full(len(frames), video_id, dtype=object), frames["real_score"].to_numpy(float), pred, probs)
    pred_class = run.class_name(int(vl["pred_class"].iloc[0]))
    names = pd.Series([run.class_name(int(i)) for i in pred])
    shares = names.value_counts(normalize=True).to_dict()
    _, score, flagged = osm.judge_videos(emb, np.full(len(emb), video_id, dtype=object), probs)
    frames["pred_class"] = names.to_numpy()
    frames["open_score"] = osm.judge_faces(emb, probs)[0]
    is_open = bool(flagged[0])
    ranked = _ranked_identities(emb, _reference(store, run, ("train", "val")))
    nearest = ranked.head(k)
    agreement = float((nearest["true_class"] == pred_class).mean()) if len(nearest) else float("nan")
    shown = nearest if is_open else ranked[ranked["true_class"] == pred_class].head(k)
    return Evidence(video_id, run_id, classifier, OPEN_SET_LABEL if is_open else pred_class, pred_class, shares,
                    float(score[0]), osm.video_threshold, is_open, osm.describe, DISTANCE,
                    _details(store, shown), agreement, frames, osm.face_threshold)


def class_thumbnails(store: Store, run_id: str, dataset: str, classifier: str, per_class: int = 8) -> pd.DataFrame:
    """A few face thumbnails per predicted class of an analysed set (highest-probability faces first)."""
    return set_table.class_thumbnails(store, run_id, dataset, classifier, per_class)


def open_set_rates(store: Store, run_id: str, datasets: list[str], osm: OpenSetModel | None = None) -> pd.DataFrame:
    """Share of faces and of videos judged "resembles no known class" in already-embedded datasets
    (e.g. the super-set's test split, where it should stay near the calibrated 5 %), by the run's verdict
    (`engine.analysis.verdict`; scores that need a classifier's probabilities are not supported here)."""
    run = read_run(store, run_id)
    osm = osm or calibrate_open_set(store, run, None, open_set_section(run), run.default_classifier)
    rows = []
    for d in datasets:
        tbl = set_table.video_face_embeddings(store, run_id, d)
        if tbl.num_rows == 0:
            continue
        emb = arrow_to_matrix(tbl.column("embedding"))
        _, face_open = osm.judge_faces(emb)
        _, _, video_open = osm.judge_videos(emb, np.asarray(tbl.column("video_id").to_pylist(), dtype=object))
        rows.append({"dataset": d, "faces": int(len(emb)), "face_open_rate": float(face_open.mean()),
                     "videos": int(len(video_open)), "video_open_rate": float(video_open.mean())})
    return pd.DataFrame(rows, columns=["dataset", "faces", "face_open_rate", "videos", "video_open_rate"])
