"""One video, closely: its faces frame by frame, its verdict, the training faces it resembles, its place on the map.

`video_drilldown(store, run_id, video_id, classifier)` works for any video the run has embedded — a known
test video as well as a video of an analysed set — and reads everything from the store. The verdict, the
open-set score and the nearest training faces are `engine.analysis.video_evidence`'s (the one definition the
analysis report uses too, `engine.analysis.verdict`); this adds what a person looks at:

- `frames`: each sampled face with its thumbnail, predicted class and real-score (the strip and the
  real-score-over-time chart), and its face-level open-set ratio (score / the face threshold);
- the video's real-score by the chosen aggregation (`engine.metrics.video_level`) and the run's θ at the same
  aggregation (`engine.scores.theta_summary`), with the decision;
- `position`: the mean map position of its faces on the run's latest map (None without one).

The dashboard's drill-down panel and the case report show this object; neither depends on how a map is drawn.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..metrics import DEFAULT_AGGREGATION, DEFAULT_TOP_K, aggregation_label, check_aggregation, video_level
from ..openset import OpenSetModel
from ..runs import read_run
from ..scores import theta_summary
from ..store import Store
from ..store import analyses as set_table
from ..store.projections import latest_projection_id
from .evidence import video_evidence
from .paths import AnalysisError
from .report import NO_FACE_LABEL


@dataclass
class VideoDrilldown:
    video_id: str
    dataset: str
    role: str | None
    relpath: str
    original_name: str | None
    sha256: str | None
    true_class: str | None
    synthetic: bool
    status: str | None
    reason: str | None
    run_id: str
    classifier: str
    aggregation: str
    top_k: int
    frames: pd.DataFrame          # face_id, frame_index, thumbnail, pred_class, real_score, open_score, open_ratio
    verdict: str                  # the evidence's: a class, "resembles no known class", or NO_FACE_LABEL
    real_score: float | None      # the video's, by `aggregation`
    pred_class: str | None        # the classifier's class: the majority of frames
    agreement: float | None       # share of its frames voting for pred_class
    class_shares: dict            # the classifier's class -> share of its frames (its nearest known classes)
    open_score: float | None
    open_threshold: float | None  # open-set above it
    open_set: bool
    score_definition: str         # what the open-set score is
    distance: str                 # what `nearest`'s distance is
    theta: float | None           # the run's θ at this aggregation (None when undefined)
    nearest: pd.DataFrame         # face_id, video_id, identity, dataset, true_class, distance, thumbnail
    neighbour_agreement: float | None  # share of the nearest identities (any class) that are of pred_class
    position: tuple[float, float] | None
    projection_id: str | None
    class_names: dict = field(default_factory=dict)

    @property
    def open_ratio(self) -> float | None:
        """The open-set score over its threshold: above 1, the video resembles no known class."""
        if self.open_score is None or not self.open_threshold or not np.isfinite(self.open_score):
            return None
        return float(self.open_score / self.open_threshold)

    @property
    def accepted_as_real(self) -> bool | None:
        """The video's real-score at θ: True accepted as real, False rejected as fake, None when undefined."""
        if self.theta is None or self.real_score is None or not np.isfinite(self.real_score):
            return None
        return bool(self.real_score >= self.theta)

    @property
    def scoring(self) -> str:
        return aggregation_label(self.aggregation, self.top_k)

    def display(self, class_id) -> str:
        return self.class_names.get(class_id, class_id) if isinstance(class_id, str) else str(class_id)


def video_drilldown(store: Store, run_id: str, video_id: str, classifier: str | None = None,
                    aggregation: str = DEFAULT_AGGREGATION, top_k: int = DEFAULT_TOP_K, k: int = 12,
                    osm: OpenSetModel | None = None) -> VideoDrilldown:
    """Everything the drill-down shows of one video under one run (see the module docstring)."""
    from .report import available_classifiers, default_classifier

    check_aggregation(aggregation, top_k)
    run = read_run(store, run_id)
    key = run.settings_key or ""
    row = set_table.video_row(store, video_id, key)
    if row is None:
        raise AnalysisError(f"no video {video_id!r} in the store")
    classifier = classifier or default_classifier(run, available_classifiers(store, run, row["dataset"]))
    ev = video_evidence(store, run_id, video_id, classifier, k, osm)
    pid = latest_projection_id(store, run_id)
    tbl = set_table.video_frames(store, run_id, video_id, classifier, key, pid)
    frames = tbl.select(["face_id", "frame_index", "thumbnail", "pred_class", "real_score", "x", "y"]).to_pandas()
    scores = ev.frames[["face_id", "open_score"]] if len(ev.frames) else pd.DataFrame(
        {"face_id": pd.Series(dtype=object), "open_score": pd.Series(dtype=float)})
    frames = frames.merge(scores, on="face_id", how="left")
    with np.errstate(divide="ignore", invalid="ignore"):
        frames["open_ratio"] = frames["open_score"] / ev.face_threshold if ev.face_threshold else np.nan
    has_faces = bool(ev.verdict)
    scored = frames.loc[frames["real_score"].notna() & frames["pred_class"].notna()]
    real_score = agreement = None
    if has_faces and len(scored):
        vl = video_level(np.full(len(scored), video_id, dtype=object), scored["real_score"].to_numpy(float),
                         scored["pred_class"].to_numpy(np.int64), aggregation=aggregation, top_k=top_k)
        real_score, agreement = float(vl["real_score"].iloc[0]), float(vl["agreement"].iloc[0])
    theta = theta_summary(store, run, classifier, "video", aggregation, top_k)["theta"]
    xy = frames[["x", "y"]].dropna()
    position = (float(xy["x"].mean()), float(xy["y"].mean())) if len(xy) else None
    frames["pred_class"] = [run.class_name(int(c)) if pd.notna(c) else None for c in frames["pred_class"]]

    def opt(v, cast):
        return None if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA else cast(v)

    return VideoDrilldown(
        video_id=video_id, dataset=row["dataset"], role=opt(row.get("role"), str), relpath=row["relpath"],
        original_name=opt(row.get("original_name"), str), sha256=opt(row.get("sha256"), str),
        true_class=opt(row.get("true_class"), str), synthetic=bool(row.get("synthetic")),
        status=opt(row.get("status"), str), reason=opt(row.get("reason"), str), run_id=run_id,
        classifier=classifier, aggregation=aggregation, top_k=top_k,
        frames=frames.drop(columns=["x", "y"]), verdict=ev.verdict if has_faces else NO_FACE_LABEL,
        real_score=real_score, pred_class=ev.pred_class or None if has_faces else None, agreement=agreement,
        class_shares=dict(ev.class_shares), open_score=opt(ev.open_score, float) if has_faces else None,
        open_threshold=opt(ev.open_threshold, float), open_set=bool(ev.open_set), score_definition=ev.score_definition,
        distance=ev.distance, theta=theta, nearest=ev.faces, neighbour_agreement=opt(ev.agreement, float),
        position=position, projection_id=pid, class_names=run.display_names())


def find_videos(store: Store, run_id: str, text: str, limit: int = 50) -> list[str]:
    """Ids of videos the run has embedded whose id contains `text` (case-insensitive), for a video picker."""
    return set_table.embedded_videos_matching(store, run_id, text, limit)
