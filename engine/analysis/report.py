"""The analysis report of an analysed set, read back from the store (the CLI prints it, the dashboard shows it).

Per predicted class the share of videos and of faces; the set's nearest known
classes as a whole (centroid view and kNN-vote view, against the run's θ
population: the super-set validation split restricted to the taxonomy's
classes, `engine.scores.theta_population`); per video the predicted class by
majority of frames, the mean real-score, the frames' agreement and an
open-set verdict (`engine.openset`, calibrated on that same population); with
labels, AUC / FPR / FNR / HTER at the run's θ from `engine.scores`, at video
level. The classifier is the run's default (`RunRecord.default_classifier`:
ArcFaceMod LR, TripletLoss kNN, the others their own head) when it has
predictions for the set, else the first available.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from data_catalog.errors import AtlasError

from ..config import ClassifiersSection
from ..faces.extract import describe_statuses
from ..metrics import DEFAULT_AGGREGATION, DEFAULT_TOP_K, aggregation_label, video_level
from ..openset import OpenSetModel, knn_votes, prepare
from ..runs import RunRecord, read_run
from ..scores import select_scores, theta_population
from ..store import Store, arrow_to_matrix
from ..store import analyses as set_table
from ..store.predictions import classifiers_with_predictions
from .paths import AnalysisError

OPEN_SET_LABEL = "resembles no known class"
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
    class_shares: pd.DataFrame      # class, videos, video_share, faces, face_share
    nearest_centroid: pd.DataFrame  # class, distance, radius, ratio
    nearest_knn: pd.DataFrame       # class, share
    videos: pd.DataFrame            # per video verdicts (see `video_table`)
    open_set: dict                  # metric, radii, face_rate, video_rate
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
        lines = [
            f"set {self.dataset} ({self.source}) analysed by run {self.run_id} [{self.approach}], classifier {self.classifier}"
            + (" — SYNTHETIC data" if self.synthetic else ""),
            f"videos: {self.n_videos} ({self.n_videos_with_faces} with faces), faces: {self.n_faces}"
            + (f"; face extraction: {describe_statuses(self.status_counts)}" if self.status_counts else ""),
            f"a video's real-score: the {aggregation_label(self.aggregation, self.top_k)}; its class: the majority "
            "of its frames",
            f"open-set ({self.open_set.get('metric')} distance, {int(100 * self.open_set.get('quantile', 0.95))}th "
            f"percentile of validation): {100 * self.open_set.get('face_rate', float('nan')):.1f} % of faces and "
            f"{100 * self.open_set.get('video_rate', float('nan')):.1f} % of videos resemble no known class",
        ]
        top = self.nearest_centroid.head(2)["class"].tolist()
        knn = self.nearest_knn.head(2)
        if top:
            lines.append("nearest known classes (centroid): " + ", ".join(self.display(c) for c in top)
                         + "; (kNN votes): " + ", ".join(f"{self.display(r['class'])} {100 * r['share']:.1f} %"
                                                         for _, r in knn.iterrows()))
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
            "n_faces": self.n_faces, "class_shares": frame(self.class_shares),
            "nearest_centroid": frame(self.nearest_centroid), "nearest_knn": frame(self.nearest_knn),
            "videos": frame(self.videos), "open_set": self.open_set, "metrics": self.metrics,
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


# --- calibration (the θ population's embeddings) ---------------------------------------

def read_val_embeddings(store: Store, run: RunRecord) -> pd.DataFrame:
    """The run's θ population as embeddings: face_id, video_id, true_class, ...; `.attrs['embedding']`."""
    tbl = set_table.labelled_embeddings(store, run.run_id, run.validation_datasets)
    df = tbl.drop_columns(["embedding"]).to_pandas()
    emb = arrow_to_matrix(tbl.column("embedding")) if tbl.num_rows else np.zeros((0, run.embedding_dim or 0), np.float32)
    keep = theta_population(run, df.database, df.split, df.true_class, df.is_fake.notna()) if len(df) else \
        np.zeros(0, bool)
    df = df.loc[keep].reset_index(drop=True)
    df.attrs["embedding"] = emb[keep]
    return df


def class_index(run: RunRecord, true_class: pd.Series) -> np.ndarray:
    lookup = {c: i for i, c in enumerate(run.classes)}
    return np.asarray([lookup.get(c, -1) for c in true_class.fillna("")], dtype=np.int64)


def calibrate_open_set(store: Store, run: RunRecord, val: pd.DataFrame | None = None) -> OpenSetModel:
    val = read_val_embeddings(store, run) if val is None else val
    if val.empty:
        raise AnalysisError(f"run {run.run_id} has no validation embeddings to calibrate the open-set verdict "
                            f"(datasets {', '.join(run.validation_datasets) or 'none'}): run `dfatlas embed` first")
    return OpenSetModel.fit(val.attrs["embedding"], class_index(run, val["true_class"]), val["video_id"].to_numpy(),
                            run.kind.embedding_metric)


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

    Columns: video_id, relpath, status, true_class, pred_class, agreement, n_frames, real_score,
    share_<class> for every predicted class seen, open_ratio, nearest_known, open_faces (share of
    the video's faces judged open-set), verdict.
    """
    face_ratio, _, face_open = osm.judge_faces(emb) if len(emb) else (np.zeros(0), np.zeros(0, int), np.zeros(0, bool))
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
    vids, v_ratio, v_near, v_open = osm.judge_videos(emb, faces["video_id"].to_numpy())
    opens = pd.DataFrame({"video_id": faces["video_id"].to_numpy(), "o": face_open}).groupby("video_id")["o"].mean()
    os_df = pd.DataFrame({"video_id": vids, "open_ratio": v_ratio,
                          "nearest_known": [run.class_name(int(c)) for c in v_near], "open_set": v_open})
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


def _class_shares(run: RunRecord, faces: pd.DataFrame, with_faces: pd.DataFrame,
                  face_open: np.ndarray | None = None) -> pd.DataFrame:
    """Videos and faces per predicted class, and a last row OPEN_SET_LABEL: the videos (faces) the open-set
    verdict flags — also counted under their predicted class above it."""
    face_names = pd.Series([run.class_name(int(i)) for i in faces["pred_class"].fillna(-1).astype(int)], dtype=object)
    order = list(run.classes) + ["fake"]
    fc = face_names.value_counts()
    vc = with_faces["pred_class"].value_counts()
    shares = pd.DataFrame({"class": [c for c in order if c in fc.index or c in vc.index]})
    shares["videos"] = shares["class"].map(vc).fillna(0).astype(int)
    shares["video_share"] = shares["videos"] / max(len(with_faces), 1)
    shares["faces"] = shares["class"].map(fc).fillna(0).astype(int)
    shares["face_share"] = shares["faces"] / max(len(faces), 1)
    shares = shares.sort_values(["videos", "faces"], ascending=False).reset_index(drop=True)
    if len(with_faces) and "open_set" in with_faces:
        n_open = int(with_faces["open_set"].fillna(False).astype(bool).sum())
        f_open = int(np.asarray(face_open, bool).sum()) if face_open is not None else 0
        shares.loc[len(shares)] = {"class": OPEN_SET_LABEL, "videos": n_open, "video_share": n_open / len(with_faces),
                                   "faces": f_open, "face_share": f_open / max(len(faces), 1)}
    return shares


def _nearest_known(run: RunRecord, emb: np.ndarray, osm: OpenSetModel, val: pd.DataFrame):
    """(centroid view, kNN-vote view) of the set as a whole."""
    if not len(emb):
        return pd.DataFrame(columns=["class", "distance", "radius", "ratio"]), pd.DataFrame(columns=["class", "share"])
    mean = prepare(emb, osm.metric).mean(0, keepdims=True)
    d = osm.distances(mean)[0]
    centroid = pd.DataFrame({"class": [run.class_name(c) for c in osm.classes], "distance": d,
                             "radius": osm.face_radius,
                             "ratio": d / np.where(osm.face_radius > 0, osm.face_radius, np.nan)})
    centroid = centroid.sort_values("distance").reset_index(drop=True)
    vidx = class_index(run, val["true_class"])
    keep = vidx >= 0
    k = run.section(ClassifiersSection, "classifiers").knn_k
    votes = knn_votes(prepare(emb, osm.metric), prepare(val.attrs["embedding"][keep], osm.metric), vidx[keep],
                      k, osm.metric, len(run.classes))
    knn = pd.DataFrame({"class": list(run.classes), "share": votes})
    knn = knn[knn["share"] > 0].sort_values("share", ascending=False).reset_index(drop=True)
    return centroid, knn


def build_report(store: Store, run_id: str, dataset: str, classifier: str | None = None,
                 osm: OpenSetModel | None = None, val: pd.DataFrame | None = None,
                 aggregation: str = DEFAULT_AGGREGATION, top_k: int = DEFAULT_TOP_K) -> AnalysisReport:
    """Read an analysed set back from the store as a report (read-only; the dashboard uses it too).
    `aggregation` scores each video from its frames (`engine.metrics.AGGREGATIONS`), θ included."""
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
    osm = osm or calibrate_open_set(store, run, val)
    videos = set_table.set_videos(store, dataset, run.settings_key or "")
    faces, emb, probs = _set_faces(store, run, dataset, classifier)
    table, face_open = video_table(run, faces, emb, probs, osm, videos, aggregation, top_k)
    n_faces = len(faces)
    with_faces = table[table["verdict"] != NO_FACE_LABEL]
    centroid, knn = _nearest_known(run, emb, osm, val)
    open_set = osm.to_dict(list(run.classes)) | {
        "face_rate": float(face_open.mean()) if n_faces else float("nan"),
        "video_rate": float(with_faces["open_set"].astype(bool).mean()) if len(with_faces) else float("nan"),
    }
    has_labels = "real_score" in table and table.dropna(subset=["is_fake", "real_score"]).shape[0] > 0
    metrics = _metrics_for(store, run, classifier, dataset, aggregation, top_k) if has_labels else None
    status_counts = videos["status"].fillna("not extracted").value_counts().to_dict()
    return AnalysisReport(
        name=dataset.split("/", 1)[1], dataset=dataset, run_id=run_id, approach=run.approach,
        classifier=classifier, classes=list(run.classes), source=str(ds.get("source") or ""),
        labelled=bool(ds.get("labelled")), n_videos=len(videos), n_videos_with_faces=len(with_faces),
        n_faces=n_faces, class_shares=_class_shares(run, faces, with_faces, face_open), nearest_centroid=centroid,
        nearest_knn=knn, videos=table, open_set=open_set, metrics=metrics,
        status_counts={str(k): int(v) for k, v in status_counts.items()},
        projection_id=set_table.set_projection_id(store, run_id, dataset), attributes=run.kind.attributes,
        problems=[f"{r.kind}: {r.path}: {r.message}"
                  for r in set_table.set_problems(store, dataset).itertuples()],
        class_names=run.display_names() | {OPEN_SET_LABEL: OPEN_SET_LABEL, NO_FACE_LABEL: NO_FACE_LABEL},
        synthetic=bool(ds.get("synthetic")), aggregation=aggregation, top_k=top_k,
    )
