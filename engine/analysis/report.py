"""The analysis report of an analysed set, read back from the store (the CLI prints it, the dashboard shows it).

One definition per video (`engine.analysis.verdict`): the classifier's class
(majority of frames; the classifier is the run's default — ArcFaceMod LR,
TripletLoss kNN, the others their own head — when it has predictions for the
set, else the first available), unless the open-set score (`engine.openset`,
the run's `[openset]` section) is above the threshold that flags 5 % of the
known validation videos: then "resembles no known class". The predicted-class
table counts those verdicts (with an open-set row), the summary states the
score, its threshold and how many known TEST videos the same threshold flags.
With labels, AUC / FPR / FNR / HTER at the run's θ from `engine.scores`, at
video level.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from data_catalog.errors import AtlasError

from ..faces.extract import describe_statuses
from ..metrics import DEFAULT_AGGREGATION, DEFAULT_TOP_K, aggregation_label, video_level
from ..openset import OpenSetModel
from ..runs import RunRecord, read_run
from ..scores import select_scores
from ..store import Store, arrow_to_matrix
from ..store import analyses as set_table
from ..store.predictions import classifiers_with_predictions
from .verdict import OPEN_SET_LABEL, calibrate_open_set, known_test_rate, open_set_section, read_val_embeddings
from .paths import AnalysisError

NO_FACE_LABEL = "no face found"


@dataclass
class AnalysisReport:
    name: str
    dataset: str
    run_id: str
    approach: str
    classifier: str
    classes: list[str]
    source: str
    labelled: bool
    n_videos: int
    n_videos_with_faces: int
    n_faces: int
    class_shares: pd.DataFrame      # class (a known class or OPEN_SET_LABEL), videos, video_share, faces, face_share
    videos: pd.DataFrame            # per video verdicts (see `video_table`)
    open_set: dict                  # score, definition, thresholds, face_rate, video_rate, known_test_rate
    metrics: dict | None = None     # auc, fpr, fnr, hter, threshold (video level) when labelled
    status_counts: dict = field(default_factory=dict)
    projection_id: str | None = None
    timings: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)  # the input's files not used, with the reason (stored)
    attributes: bool = True         # the run's approach predicts a class per sample
    class_names: dict = field(default_factory=dict)  # class id -> display name (the run's taxonomy)
    synthetic: bool = False         # the set itself is SYNTHETIC data (not: the run was trained on it)
    aggregation: str = DEFAULT_AGGREGATION  # how a video's real-score comes from its frames'
    top_k: int = DEFAULT_TOP_K

    def display(self, class_id) -> str:
        """A class id as people read it (display name; the verdict labels stay as they are)."""
        return self.class_names.get(class_id, class_id) if isinstance(class_id, str) else str(class_id)

    def summary_lines(self) -> list[str]:
        o = self.open_set
        lines = [
            f"set {self.dataset} ({self.source}) analysed by run {self.run_id} [{self.approach}]"
            + (" — SYNTHETIC data" if self.synthetic else ""),
            f"videos: {self.n_videos} ({self.n_videos_with_faces} with faces), faces: {self.n_faces}"
            + (f"; face extraction: {describe_statuses(self.status_counts)}" if self.status_counts else ""),
            f"a video's real-score: the {aggregation_label(self.aggregation, self.top_k)}; its class: the majority "
            "of its frames",
            f"verdict per video: the {self.classifier} classifier's class (majority of frames), or "
            f"'{OPEN_SET_LABEL}' when the open-set score ({o.get('definition')}) is above "
            f"{o.get('video_threshold', float('nan')):.4g}, the threshold that flags "
            f"{100 * o.get('false_alarm', float('nan')):.0f} % of known validation videos",
        ]
        n_open = int(round(o.get("video_rate", 0.0) * self.n_videos_with_faces)) if self.n_videos_with_faces else 0
        test = o.get("known_test_rate", float("nan"))
        lines.append(
            f"{100 * o.get('video_rate', float('nan')):.1f} % of the {self.n_videos_with_faces} videos with faces "
            f"({n_open}) resemble no known class"
            + (f"; the same threshold flags {100 * test:.1f} % of the run's {o.get('known_test_videos')} known test "
               "videos, so about that share is expected by chance" if np.isfinite(test) else ""))
        top = self.class_shares[self.class_shares["class"] != OPEN_SET_LABEL].head(2)
        if len(top):
            lines.append("most videos attributed to: " + ", ".join(
                f"{self.display(r['class'])} {100 * r['video_share']:.1f} %" for _, r in top.iterrows()))
        m = self.metrics
        if m and "error" in m:
            lines.append(f"with labels: no metrics ({m['error']})")
        elif m:
            auc = "n/a" if m.get("auc") is None else f"{m['auc']:.3f}"
            lines.append(f"with labels (video level, threshold {m['threshold']:.4g} from validation): AUC {auc}, "
                         f"FPR {100 * m['fpr']:.2f} %, FNR {100 * m['fnr']:.2f} %, HTER {100 * m['hter']:.2f} %")
        return lines

    def to_dict(self) -> dict:
        def frame(df: pd.DataFrame):
            return json.loads(df.to_json(orient="records"))
        return {
            "name": self.name, "dataset": self.dataset, "run_id": self.run_id, "approach": self.approach,
            "classifier": self.classifier, "classes": self.classes, "source": self.source,
            "labelled": self.labelled, "n_videos": self.n_videos, "n_videos_with_faces": self.n_videos_with_faces,
            "n_faces": self.n_faces, "class_shares": frame(self.class_shares), "videos": frame(self.videos), "open_set": self.open_set, "metrics": self.metrics,
            "status_counts": self.status_counts, "projection_id": self.projection_id, "timings": self.timings,
            "problems": self.problems,
            "class_names": self.class_names, "synthetic": self.synthetic,
            "aggregation": self.aggregation, "top_k": self.top_k,
        }


# --- classifiers ------------------------------------------------------------------

def available_classifiers(store: Store, run: RunRecord, dataset: str | None = None) -> list[str]:
    """Classifiers with stored predictions for the run (on `dataset` when given), in menu order."""
    from ..classify import classifier_order

    return classifier_order(classifiers_with_predictions(store, run.run_id, dataset))


def default_classifier(run: RunRecord, available: list[str]) -> str:
    """The run's default classifier (`RunRecord.default_classifier`: ArcFaceMod LR, TripletLoss kNN, the others
    their own head) when it has predictions, else the first available — `engine.approaches.choose_classifier`,
    the choice `dfatlas evaluate` and the dashboard make too."""
    from ..approaches import choose_classifier

    if not available:
        raise AnalysisError(f"run {run.run_id} has no stored predictions: run `dfatlas embed` / `dfatlas classify` first")
    return choose_classifier(run.approach, available)


# --- the report ----------------------------------------------------------------------

def _probs_matrix(col) -> np.ndarray | None:
    if col is None:
        return None
    arr = pa.array(col) if not isinstance(col, (pa.Array, pa.ChunkedArray)) else col
    if len(arr) == 0 or arr.null_count:
        return None
    return arrow_to_matrix(arr)


def _set_faces(store: Store, run: RunRecord, dataset: str, classifier: str):
    tbl = set_table.set_face_predictions(store, run.run_id, dataset, classifier)
    df = tbl.drop_columns(["embedding", "probs"]).to_pandas()
    return df, arrow_to_matrix(tbl.column("embedding")), _probs_matrix(tbl.column("probs"))


def video_table(run: RunRecord, faces: pd.DataFrame, emb: np.ndarray, probs: np.ndarray | None,
                osm: OpenSetModel, videos: pd.DataFrame, aggregation: str = DEFAULT_AGGREGATION,
                top_k: int = DEFAULT_TOP_K) -> tuple[pd.DataFrame, np.ndarray]:
    """Per-video verdicts; returns (table, face open flags).

    Columns: video_id, relpath, status, reason, true_class, is_fake, pred_class (the classifier's majority of
    frames), agreement, n_frames, real_score, share_<class> (the classifier's class shares over the frames, the
    video's nearest known classes), open_score (the open-set score), open_ratio (open_score / its threshold:
    above 1 = open-set), open_set, open_faces (share of the video's faces above the face threshold), verdict
    (OPEN_SET_LABEL, NO_FACE_LABEL or pred_class).
    """
    if len(emb) and osm.scorer.needs_probs and probs is None:
        raise AnalysisError(f"the {osm.score} open-set score needs class probabilities for every face of the set")
    face_open = osm.judge_faces(emb, probs)[1] if len(emb) else np.zeros(0, bool)
    base = videos[["video_id", "relpath", "status", "reason", "true_class", "is_fake"]].copy()
    if faces.empty:
        base["verdict"] = NO_FACE_LABEL
        return base, face_open
    pred = faces["pred_class"].fillna(-1).astype(int).to_numpy()
    vl = video_level(faces["video_id"].to_numpy(), faces["real_score"].to_numpy(dtype=float),
                     face_pred_classes=pred, face_probs=probs, aggregation=aggregation, top_k=top_k)
    vl = vl.rename(columns={"pred_class": "pred_class_idx"})
    vl["pred_class"] = [run.class_name(int(i)) for i in vl["pred_class_idx"]]
    names = np.asarray([run.class_name(int(i)) for i in pred])
    shares = pd.crosstab(faces["video_id"].to_numpy(), names, normalize="index")
    shares.columns = [f"share_{c}" for c in shares.columns]
    shares.index.name = "video_id"
    vids, v_score, v_open = osm.judge_videos(emb, faces["video_id"].to_numpy(), probs)
    opens = pd.DataFrame({"video_id": faces["video_id"].to_numpy(), "o": face_open}).groupby("video_id")["o"].mean()
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = v_score / osm.video_threshold if osm.video_threshold > 0 else np.full(len(v_score), np.nan)
    os_df = pd.DataFrame({"video_id": vids, "open_score": v_score, "open_ratio": ratio, "open_set": v_open})
    out = base.merge(vl, on="video_id", how="left").merge(shares.reset_index(), on="video_id", how="left") \
        .merge(os_df, on="video_id", how="left")
    out["open_faces"] = out["video_id"].map(opens)
    has = out["n_frames"].fillna(0) > 0
    out["verdict"] = np.where(~has, NO_FACE_LABEL,
                              np.where(out["open_set"].fillna(False).astype(bool), OPEN_SET_LABEL, out["pred_class"]))
    return out, face_open


def _metrics_for(store: Store, run: RunRecord, classifier: str, dataset: str, aggregation: str = DEFAULT_AGGREGATION,
                 top_k: int = DEFAULT_TOP_K) -> dict | None:
    """AUC / FPR / FNR / HTER of the set's labelled videos at the run's θ (engine.scores, video level)."""
    try:
        sel = select_scores(store, run, classifier, [dataset], level="video", aggregation=aggregation, top_k=top_k)
    except AtlasError as exc:
        return {"error": str(exc)}
    labelled = sel.labelled()
    m = sel.metrics()
    if m is None:
        return None
    out = {k: (float(v) if isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool) else v)
           for k, v in dataclasses.asdict(m).items()}
    out["n_videos"] = int(len(labelled))
    out["level"] = "video"
    return out


def _class_shares(run: RunRecord, faces: pd.DataFrame, face_open: np.ndarray, with_faces: pd.DataFrame) -> pd.DataFrame:
    """The predicted-class table by verdict: videos by their verdict, faces by theirs (the face's class, or
    the open-set row when the face alone is above the face threshold); the open-set row last."""
    face_names = np.asarray([run.class_name(int(i)) for i in faces["pred_class"].fillna(-1).astype(int)], dtype=object)
    face_names = np.where(np.asarray(face_open, bool), OPEN_SET_LABEL, face_names) if len(face_names) else face_names
    fc = pd.Series(face_names, dtype=object).value_counts()
    vc = with_faces["verdict"].value_counts()
    known = [c for c in list(run.classes) + ["fake"] if c in fc.index or c in vc.index]
    shares = pd.DataFrame({"class": known})
    shares["videos"] = shares["class"].map(vc).fillna(0).astype(int)
    shares["faces"] = shares["class"].map(fc).fillna(0).astype(int)
    shares = shares.sort_values(["videos", "faces"], ascending=False)
    open_row = pd.DataFrame({"class": [OPEN_SET_LABEL], "videos": [int(vc.get(OPEN_SET_LABEL, 0))],
                             "faces": [int(fc.get(OPEN_SET_LABEL, 0))]})
    shares = pd.concat([shares, open_row], ignore_index=True)
    shares["video_share"] = shares["videos"] / max(len(with_faces), 1)
    shares["face_share"] = shares["faces"] / max(len(faces), 1)
    return shares[["class", "videos", "video_share", "faces", "face_share"]]


def build_report(store: Store, run_id: str, dataset: str, classifier: str | None = None,
                 osm: OpenSetModel | None = None, val: pd.DataFrame | None = None, cfg=None,
                 aggregation: str = DEFAULT_AGGREGATION, top_k: int = DEFAULT_TOP_K) -> AnalysisReport:
    """Read an analysed set back from the store as a report (read-only; the dashboard uses it too).
    The open-set settings are `cfg`'s `[openset]` when given, else the run's stored ones; `aggregation`
    scores each video from its frames (`engine.metrics.AGGREGATIONS`), θ included."""
    run = read_run(store, run_id)
    ds = set_table.dataset_row(store, dataset)
    if ds is None:
        raise AnalysisError(f"no dataset {dataset!r} in the store")
    available = available_classifiers(store, run, dataset)
    classifier = classifier or default_classifier(run, available)
    if classifier not in available:
        raise AnalysisError(f"classifier {classifier!r} has no predictions for {dataset} in run {run_id} "
                            f"(available: {', '.join(available) or 'none'})")
    val = read_val_embeddings(store, run) if val is None else val
    osm = osm or calibrate_open_set(store, run, val, open_set_section(run, cfg), classifier)
    videos = set_table.set_videos(store, dataset, run.settings_key or "")
    faces, emb, probs = _set_faces(store, run, dataset, classifier)
    table, face_open = video_table(run, faces, emb, probs, osm, videos, aggregation, top_k)
    n_faces = len(faces)
    with_faces = table[table["verdict"] != NO_FACE_LABEL]
    test = known_test_rate(store, run, osm, classifier)
    open_set = osm.to_dict() | {
        "face_rate": float(face_open.mean()) if n_faces else float("nan"),
        "video_rate": float(with_faces["open_set"].astype(bool).mean()) if len(with_faces) else float("nan"),
        "known_test_rate": test["rate"], "known_test_videos": test["videos"],
    }
    has_labels = "real_score" in table and table.dropna(subset=["is_fake", "real_score"]).shape[0] > 0
    metrics = _metrics_for(store, run, classifier, dataset, aggregation, top_k) if has_labels else None
    status_counts = videos["status"].fillna("not extracted").value_counts().to_dict()
    return AnalysisReport(
        name=dataset.split("/", 1)[1], dataset=dataset, run_id=run_id, approach=run.approach,
        classifier=classifier, classes=list(run.classes), source=str(ds.get("source") or ""),
        labelled=bool(ds.get("labelled")), n_videos=len(videos), n_videos_with_faces=len(with_faces),
        n_faces=n_faces, class_shares=_class_shares(run, faces, face_open, with_faces), videos=table,
        open_set=open_set, metrics=metrics, status_counts={str(k): int(v) for k, v in status_counts.items()},
        projection_id=set_table.set_projection_id(store, run_id, dataset), attributes=run.kind.attributes,
        problems=[f"{r.kind}: {r.path}: {r.message}"
                  for r in set_table.set_problems(store, dataset).itertuples()],
        class_names=run.display_names() | {OPEN_SET_LABEL: OPEN_SET_LABEL, NO_FACE_LABEL: NO_FACE_LABEL},
        synthetic=bool(ds.get("synthetic")), aggregation=aggregation, top_k=top_k,
    )
