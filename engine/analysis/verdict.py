"""One verdict per video, from one definition: the classifier's class, unless the open-set score says "none".

- the **class** is the run's classifier's (`RunRecord.default_classifier` unless
  another is chosen): the majority of the video's frames (`engine.metrics.video_level`);
  the nearest known classes of a video are that classifier's class shares over its frames;
- the **open-set verdict** is `engine.openset` with the run's `[openset]` section
  (default: kNN plus Mahalanobis distance to the super-set's training faces), its threshold set on
  the run's θ population (super-set validation videos of the taxonomy's classes)
  so that `false_alarm` (5 %) of them are flagged;
- the **evidence** (`engine.analysis.evidence.video_evidence`) is the training and
  validation faces nearest to the video in the kNN score's geometry, one per
  identity, of the verdict's class.

So a video reads "Pyramid swap (classifier), 0.8 of its frames; open-set score
below threshold; nearest Pyramid-swap training faces …", or "resembles no known
class (score above the threshold that flags 5 % of known validation videos);
closest known class by the classifier: …".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..config import OpenSetSection
from ..openset import OpenSetModel, make_score
from ..runs import RunRecord
from ..store import Store, arrow_to_matrix
from ..store import analyses as set_table
from ..store import predictions as prediction_table
from .paths import AnalysisError

OPEN_SET_LABEL = "resembles no known class"


def open_set_section(run: RunRecord, cfg=None) -> OpenSetSection:
    """The `[openset]` settings: the given config's, else the run's stored ones, else the defaults."""
    section = getattr(cfg, "openset", None)
    return section if section is not None else run.section(OpenSetSection, "openset")


def class_index(run: RunRecord, true_class: pd.Series) -> np.ndarray:
    lookup = {c: i for i, c in enumerate(run.classes)}
    return np.asarray([lookup.get(c, -1) for c in pd.Series(true_class).fillna("")], dtype=np.int64)


def read_labelled_embeddings(store: Store, run: RunRecord, split: str) -> pd.DataFrame:
    """Faces of the super-set's `split` with a taxonomy class: face_id, video_id, identity, true_class, ...;
    `.attrs['embedding']`. For split 'val' this is the run's θ population."""
    tbl = set_table.labelled_embeddings(store, run.run_id, run.split_datasets(split))
    df = tbl.drop_columns(["embedding"]).to_pandas()
    emb = arrow_to_matrix(tbl.column("embedding")) if tbl.num_rows else np.zeros((0, run.embedding_dim or 0), np.float32)
    # the θ population's rule (`engine.scores.theta_population`) applied to `split`
    keep = (np.isin(df.database.to_numpy(dtype=object), list(run.superset))
            & (df.split.to_numpy(dtype=object) == split) & df.is_fake.notna().to_numpy()
            & np.isin(df.true_class.to_numpy(dtype=object), list(run.classes))) if len(df) else np.zeros(0, bool)
    df = df.loc[keep].reset_index(drop=True)
    df.attrs["embedding"] = emb[keep]
    return df


def read_val_embeddings(store: Store, run: RunRecord) -> pd.DataFrame:
    """The run's θ population as embeddings (the super-set validation split, taxonomy classes)."""
    return read_labelled_embeddings(store, run, "val")


def thin_per_video(video_ids: np.ndarray, limit: int) -> np.ndarray:
    """Mask keeping at most `limit` faces in all, the same number from every video (its first faces):
    frames of one video are near-duplicates, so fewer per video loses least."""
    video_ids = np.asarray(video_ids)
    if len(video_ids) <= limit:
        return np.ones(len(video_ids), bool)
    codes, uniques = pd.factorize(video_ids)
    per_video = max(1, limit // max(len(uniques), 1))
    rank = pd.Series(np.arange(len(codes))).groupby(codes).cumcount().to_numpy()
    return rank < per_video


def read_reference_embeddings(store: Store, run: RunRecord, section: OpenSetSection) -> pd.DataFrame:
    """The faces the open-set score is fitted on: the super-set's training split (taxonomy classes),
    at most `max_reference_faces` of them (the same number per video)."""
    ref = read_labelled_embeddings(store, run, "train")
    keep = thin_per_video(ref["video_id"].to_numpy(), section.max_reference_faces)
    emb = ref.attrs["embedding"][keep]
    ref = ref.loc[keep].reset_index(drop=True)
    ref.attrs["embedding"] = emb
    return ref


def face_probs(store: Store, run: RunRecord, classifier: str, face_ids, datasets) -> np.ndarray | None:
    """The classifier's class probabilities of `face_ids` (of `datasets`, in that order), or None when it
    stores none for them."""
    tbl = prediction_table.face_scores(store, run.run_id, classifier, list(datasets))
    if tbl.num_rows == 0 or tbl.column("probs").null_count:
        return None
    pos = pd.Index(tbl.column("face_id").to_pylist()).get_indexer(list(face_ids))
    if (pos < 0).any():
        return None
    return arrow_to_matrix(tbl.column("probs"))[pos]


def calibrate_open_set(store: Store, run: RunRecord, val: pd.DataFrame | None = None,
                       section: OpenSetSection | None = None, classifier: str | None = None,
                       reference: pd.DataFrame | None = None) -> OpenSetModel:
    """The run's open-set verdict: its `[openset]` score fitted on the reference faces (training split; the
    `centroid` score: the validation split itself) and thresholded on the validation videos."""
    section = section or open_set_section(run)
    val = read_val_embeddings(store, run) if val is None else val
    if val.empty:
        raise AnalysisError(f"run {run.run_id} has no validation embeddings to calibrate the open-set verdict "
                            f"(datasets {', '.join(run.validation_datasets) or 'none'}): run `dfatlas embed` first")
    scorer = make_score(section.score, run.kind.embedding_metric, k=section.knn_k, shrinkage=section.shrinkage,
                        false_alarm=section.false_alarm)
    if section.score == "centroid":
        reference = val
    elif reference is None:
        reference = read_reference_embeddings(store, run, section)
    if reference.empty:
        raise AnalysisError(f"run {run.run_id} has no embedded training faces to fit the open-set score on "
                            f"(datasets {', '.join(run.split_datasets('train'))}): run `dfatlas embed` first")
    probs = None
    if scorer.needs_probs:
        if not classifier:
            raise AnalysisError("the msp open-set score needs a classifier's probabilities")
        probs = face_probs(store, run, classifier, val["face_id"], run.validation_datasets)
        if probs is None:
            raise AnalysisError(f"the msp open-set score needs class probabilities, and classifier {classifier!r} "
                                f"of run {run.run_id} stores none: choose another [openset] score")
    osm = OpenSetModel.calibrate(scorer, reference.attrs["embedding"], class_index(run, reference["true_class"]),
                                 reference["video_id"].to_numpy(), val.attrs["embedding"],
                                 val["video_id"].to_numpy(), probs, section.false_alarm, run.kind.embedding_metric)
    osm.extra["classifier"] = classifier if scorer.needs_probs else None
    return osm


def known_test_rate(store: Store, run: RunRecord, osm: OpenSetModel, classifier: str | None = None) -> dict:
    """Share of the super-set's known TEST videos the verdict flags (what an analyst should expect by chance)."""
    test = read_labelled_embeddings(store, run, "test")
    if test.empty:
        return {"videos": 0, "rate": float("nan")}
    probs = face_probs(store, run, classifier, test["face_id"], run.split_datasets("test")) if osm.scorer.needs_probs and classifier else None
    if osm.scorer.needs_probs and probs is None:
        return {"videos": 0, "rate": float("nan")}
    _, _, flagged = osm.judge_videos(test.attrs["embedding"], test["video_id"].to_numpy(), probs)
    return {"videos": int(len(flagged)), "rate": float(flagged.mean())}
