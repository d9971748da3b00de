"""One video, closely: its faces frame by frame, its verdict, the training faces it resembles, its place on the map.

`video_drilldown(store, run_id, video_id, classifier)` works for any video the run has embedded — a known
test video as well as a video of an analysed set — and reads everything from the store:

- `frames`: each sampled face with its thumbnail, predicted class and real-score (the strip and the
  real-score-over-time chart), and its face-level open-set ratio;
- the video's verdict, real-score (by the chosen aggregation, `engine.metrics.video_level`), majority
  class, agreement and open-set ratio — the same definition as the analysis report
  (`engine.analysis.report.video_table`), with the run's θ (`engine.scores`) at the same aggregation;
- `nearest`: the training faces nearest in embedding space (`engine.analysis.evidence.nearest_known_faces`),
  at most one per identity (a video's near-duplicate frames, and every video of one person, count once);
- `position`: the mean map position of its faces on the run's latest map (None without one).

The dashboard's drill-down panel and the case report show this object; neither depends on how a map is drawn.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..metrics import DEFAULT_AGGREGATION, DEFAULT_TOP_K, aggregation_label, check_aggregation
from ..openset import OpenSetModel
from ..runs import read_run
from ..scores import theta_summary
from ..store import Store, arrow_to_matrix
from ..store import analyses as set_table
from ..store.projections import latest_projection_id
from .evidence import nearest_known_faces
from .paths import AnalysisError
from .report import NO_FACE_LABEL, calibrate_open_set, video_table

NEAREST_POOL_PER_FACE = 3  # candidate faces read per wanted identity per frame (near-duplicates collapse)


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
    frames: pd.DataFrame          # face_id, frame_index, thumbnail, pred_class, real_score, open_ratio
    verdict: str
    real_score: float | None      # the video's, by `aggregation`
    pred_class: str | None        # majority of frames
    agreement: float | None
    open_ratio: float | None
    open_set: bool
    nearest_known: str | None     # nearest known class (open-set geometry)
    theta: float | None           # the run's θ at this aggregation (None when undefined)
    nearest: pd.DataFrame         # face_id, video_id, identity, dataset, true_class, distance, thumbnail
    position: tuple[float, float] | None
    projection_id: str | None
    class_names: dict = field(default_factory=dict)

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


def distinct_nearest(candidates: pd.DataFrame, sources: pd.DataFrame, k: int) -> pd.DataFrame:
    """The `k` nearest candidates (sorted by distance), at most one per identity (else per video)."""
    if candidates.empty:
        return candidates.assign(identity=pd.Series(dtype=object))
    df = candidates.merge(sources[["face_id", "identity"]], on="face_id", how="left")
    key = df["identity"].where(df["identity"].notna(), "video:" + df["video_id"].astype(str))
    df = df.assign(_key=key).sort_values("distance", kind="stable")
    return df.drop_duplicates("_key").head(k).drop(columns="_key").reset_index(drop=True)


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
    pid = latest_projection_id(store, run_id)
    tbl = set_table.video_frames(store, run_id, video_id, classifier, key, pid)
    frames = tbl.select(["face_id", "frame_index", "thumbnail", "pred_class", "real_score", "x", "y"]).to_pandas()
    embedded = tbl.column("embedding").is_valid().to_numpy(zero_copy_only=False) if tbl.num_rows else np.zeros(0, bool)
    scored = frames["real_score"].notna().to_numpy() & embedded
    osm = osm or calibrate_open_set(store, run)
    emb = arrow_to_matrix(tbl.column("embedding").filter(scored)) if scored.any() else np.zeros((0, 1), np.float32)
    probs_col = tbl.column("probs").filter(scored) if scored.any() else None
    probs = arrow_to_matrix(probs_col) if probs_col is not None and probs_col.null_count == 0 else None
    frames["open_ratio"] = np.nan
    if scored.any():
        frames.loc[scored, "open_ratio"] = osm.judge_faces(emb)[0]
    faces = frames.loc[scored, ["face_id", "real_score", "pred_class"]].assign(video_id=video_id)
    videos = pd.DataFrame([{"video_id": video_id, "relpath": row["relpath"], "status": row["status"],
                            "reason": row["reason"], "true_class": row["true_class"], "is_fake": row["is_fake"]}])
    verdict_row = video_table(run, faces, emb, probs, osm, videos, aggregation, top_k)[0].iloc[0]
    has_faces = verdict_row["verdict"] != NO_FACE_LABEL
    theta = theta_summary(store, run, classifier, "video", aggregation, top_k)["theta"]
    nearest = pd.DataFrame(columns=["face_id", "video_id", "identity", "dataset", "true_class", "distance",
                                    "thumbnail"])
    if has_faces:
        pool = max(k, k * NEAREST_POOL_PER_FACE * max(int(scored.sum()), 1))
        cand = nearest_known_faces(store, run_id, video_id, k=pool)
        if len(cand):
            nearest = distinct_nearest(cand, set_table.face_sources(store, cand["face_id"].tolist()), k)[
                list(nearest.columns)]
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
        frames=frames.drop(columns=["x", "y"]), verdict=str(verdict_row["verdict"]),
        real_score=opt(verdict_row.get("real_score"), float) if has_faces else None,
        pred_class=opt(verdict_row.get("pred_class"), str) if has_faces else None,
        agreement=opt(verdict_row.get("agreement"), float) if has_faces else None,
        open_ratio=opt(verdict_row.get("open_ratio"), float) if has_faces else None,
        open_set=bool(verdict_row.get("open_set")) if has_faces and pd.notna(verdict_row.get("open_set")) else False,
        nearest_known=opt(verdict_row.get("nearest_known"), str) if has_faces else None,
        theta=theta, nearest=nearest, position=position, projection_id=pid,
        class_names=run.display_names())


def find_videos(store: Store, run_id: str, text: str, limit: int = 50) -> list[str]:
    """Ids of videos the run has embedded whose id contains `text` (case-insensitive), for a video picker."""
    return set_table.embedded_videos_matching(store, run_id, text, limit)
