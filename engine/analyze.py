"""Analyse an unknown set: attribute an unseen collection of videos with a trained run.

`analyze(workspace, cfg, run_id, input_path, ...)` records the set's videos,
extracts faces with the *run's* face settings, embeds them with the run's
model, applies the run's classifiers, places the faces into the run's t-SNE
map (openTSNE `transform`, the known sets keep their coordinates) and stores
all of it as one new dataset; `build_report(store, run_id, dataset)` reads it
back as an `AnalysisReport` (the CLI prints it, the dashboard shows it).

Identifiers (DESIGN.md "Identifiers"):
- database ``unknown``; split = the set's *name* (sanitised to lower-case
  letters, digits, ``.``, ``_``, ``-``); dataset ``unknown/<name>``;
- relpath ``<name>/<path relative to the input>`` — for a folder, relative to
  that folder; for a CSV manifest, as listed (relative to the manifest's
  folder); for a single video, its file name — so the video id
  ``unknown/<name>/<path>`` is unique across sets because names are;
- the `datasets` row (role ``unknown``, labelled when any label was given,
  source = the input path) is written in the *last* transaction, together with
  embeddings, predictions and map coordinates: a set without that row is an
  unfinished analysis. If any step fails, the set's videos, face rows and crop
  files are removed again (nothing half-written stays); a later run with the
  same name also clears leftovers of a killed one.

The same set (same name, same input) may be analysed by several runs: the
second run reuses the recorded videos (and faces, when the face settings
match). A name already used for another input, or already analysed by this
run, is refused unless ``replace=True`` (which removes the old set first, for
every run).

Report: per predicted class the share of videos and of faces; the set's
nearest known classes as a whole (centroid view and kNN-vote view, against the
*validation* split of the training super-set, where the classifiers and
thresholds are fitted); per video the predicted class by majority of frames,
the mean real-score, the frames' agreement and an open-set verdict
(`engine.openset`: farther from every known class than the 95th percentile of
validation distances to their own class centroid); with labels, AUC / FPR /
FNR / HTER at the run's validation threshold, at video level (as the
thresholds).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa

from data_catalog.databases.base import VIDEO_SUFFIXES
from data_catalog.errors import AtlasError
from data_catalog.records import VideoRecord, to_is_real
from data_catalog.taxonomy import Taxonomy

from .openset import METRIC_HEADS, OpenSetModel, knn_votes, metric_for, prepare
from .store import Store, arrow_to_matrix, matrix_to_arrow
from .workspace import Workspace

UNKNOWN_DB = "unknown"
ROLE = "unknown"
OPEN_SET_LABEL = "resembles no known class"
NO_FACE_LABEL = "no face found"
_NAME_BAD = re.compile(r"[^a-z0-9_.-]+")

# (stage, done, total) — called as work advances; stages in order:
STAGES = ("record", "faces", "embed", "classify", "project", "store")
STAGE_WEIGHTS = {"record": 0.02, "faces": 0.55, "embed": 0.2, "classify": 0.05, "project": 0.15, "store": 0.03}
ProgressFn = Callable[[str, int, int], None]


class AnalysisError(AtlasError):
    """An analysis that cannot run or finish; the message says why."""


def overall_fraction(stage: str, done: int, total: int) -> float:
    """A stage's progress as a fraction of the whole analysis (for job rows)."""
    before = sum(STAGE_WEIGHTS[s] for s in STAGES[:STAGES.index(stage)])
    return before + STAGE_WEIGHTS[stage] * (done / total if total else 1.0)


# --- names and inputs ---------------------------------------------------------

def sanitize_name(name: str) -> str:
    """A set name safe for identifiers: lower-case letters, digits, '.', '_', '-'."""
    clean = _NAME_BAD.sub("-", str(name).strip().lower()).strip("-.")
    if not clean:
        raise AnalysisError(f"set name {name!r}: give a name with letters or digits (--name NAME)")
    return clean[:80]


def dataset_of(name: str) -> str:
    return f"{UNKNOWN_DB}/{sanitize_name(name)}"


@dataclass
class InputSet:
    name: str
    records: list[VideoRecord]
    source: str
    labelled: bool
    problems: list = field(default_factory=list)

    @property
    def dataset(self) -> str:
        return f"{UNKNOWN_DB}/{self.name}"


def _is_video(path: Path) -> bool:
    return path.name.lower().endswith(VIDEO_SUFFIXES)


def collect_videos(input_path: str | Path, name: str | None, labels_csv: str | Path | None,
                   taxonomy: Taxonomy, roots=None) -> InputSet:
    """The input's videos as VideoRecords of the unknown set (see the module docstring).

    `roots` (the dashboard's `[dashboard] allowed_roots`): the input must resolve inside one of
    them, and a video whose real path leaves them (a symlink) is reported and never read.
    """
    from data_catalog.databases import ADAPTERS

    generic = ADAPTERS["generic"]
    path = Path(input_path).expanduser()
    if not path.exists():
        raise AnalysisError(f"input {path}: no such file or folder")
    if roots is not None:
        resolve_under_roots(path, roots)
    path = path.absolute()
    name = sanitize_name(name or (path.stem if path.is_file() else path.name))
    problems: list = []
    if path.is_dir():
        try:
            entries = next(os.walk(path))[1:]
        except StopIteration:
            entries = ([], [])
        if not any(entries):
            raise AnalysisError(f"input folder {path} is empty: nothing to analyse")
        try:
            scan = generic.scan(path, name=UNKNOWN_DB, options={}, taxonomy=taxonomy)
        except AtlasError as exc:
            if "no videos found" in str(exc):
                raise AnalysisError(f"input folder {path} holds no video files "
                                    f"(looked for {', '.join(VIDEO_SUFFIXES)})") from None
            raise
        records, problems = scan.records, list(scan.problems)
        if labels_csv:
            labels = generic.scan(path, name=UNKNOWN_DB, options={"manifest": str(Path(labels_csv).absolute())},
                                  taxonomy=taxonomy)
            problems += labels.problems
            by_rel = {r.relpath: r for r in labels.records}
            records = [dataclasses.replace(r, true_class=by_rel[r.relpath].true_class, is_fake=by_rel[r.relpath].is_fake,
                                           identity=by_rel[r.relpath].identity, method=by_rel[r.relpath].method)
                       if r.relpath in by_rel else r for r in records]
    elif path.suffix.lower() == ".csv":
        if labels_csv:
            raise AnalysisError("give labels either in the input manifest or with --labels, not both")
        scan = generic.scan(path.parent, name=UNKNOWN_DB, options={"manifest": str(path)}, taxonomy=taxonomy)
        records, problems = scan.records, list(scan.problems)
    elif _is_video(path):
        rec = VideoRecord(UNKNOWN_DB, name, path, path.name, None, None)
        if labels_csv:
            labels = generic.scan(path.parent, name=UNKNOWN_DB,
                                  options={"manifest": str(Path(labels_csv).absolute())}, taxonomy=taxonomy)
            match = [r for r in labels.records if r.relpath == path.name]
            if match:
                rec = dataclasses.replace(match[0], split=name)
        records = [rec]
    else:
        raise AnalysisError(f"input {path}: not a video ({', '.join(VIDEO_SUFFIXES)}), a folder of videos, "
                            "or a CSV manifest (.csv)")
    out = [VideoRecord(UNKNOWN_DB, name, Path(r.path), PurePosixPath(name, r.relpath).as_posix(),
                       r.true_class, r.is_fake, r.identity, r.method, tuple(r.source_ids)) for r in records]
    if roots is not None:
        from data_catalog.databases.base import Problem

        inside = []
        for r in out:
            try:
                resolve_under_roots(r.path, roots)
                inside.append(r)
            except AnalysisError:
                problems.append(Problem("outside_allowed_roots", str(r.path),
                                        "links outside [dashboard] allowed_roots; not read"))
        out = inside
    if not out:
        raise AnalysisError(f"input {path}: no videos to analyse")
    labelled = any(r.is_fake is not None for r in out)
    return InputSet(name, out, str(path), labelled, problems)


# --- the run ------------------------------------------------------------------

@dataclass
class RunInfo:
    run_id: str
    approach: str
    classes: list[str]
    embedding_dim: int | None
    settings_key: str | None
    status: str
    config: dict
    synthetic: bool = False

    @property
    def superset(self) -> list[str]:
        return list(self.config.get("sources", {}).get("superset", []))

    def split_datasets(self, split: str) -> list[str]:
        return [f"{db}/{split}" for db in self.superset]

    @property
    def knn_k(self) -> int:
        return int(self.config.get("classifiers", {}).get("knn_k", 14))

    def faces_section(self):
        from .config import FacesSection

        known = {f.name for f in dataclasses.fields(FacesSection)}
        values = {k: (tuple(v) if isinstance(v, list) else v)
                  for k, v in self.config.get("faces", {}).items() if k in known}
        return FacesSection(**values)

    def class_name(self, idx: int) -> str:
        return "fake" if idx < 0 else (self.classes[idx] if idx < len(self.classes) else f"class-{idx}")


def load_run(store: Store, run_id: str) -> RunInfo:
    df = store.df("SELECT run_id, approach, classes, embedding_dim, settings_key, status, config_json, synthetic "
                  "FROM runs WHERE run_id = ?", [run_id])
    if df.empty:
        known = store.df("SELECT run_id, status FROM runs ORDER BY run_id")
        listing = ", ".join(f"{r.run_id} ({r.status})" for r in known.itertuples()) or "none — train one first"
        raise AnalysisError(f"run {run_id!r} is not in the store (runs: {listing})")
    row = df.iloc[0]
    try:
        config = json.loads(row["config_json"] or "{}")
    except ValueError:
        config = {}
    return RunInfo(row["run_id"], row["approach"], list(row["classes"]),
                   None if pd.isna(row["embedding_dim"]) else int(row["embedding_dim"]),
                   None if pd.isna(row["settings_key"]) else row["settings_key"], row["status"], config,
                   bool(row["synthetic"]))


def available_classifiers(store: Store, run: RunInfo, dataset: str | None = None) -> list[str]:
    """Classifiers with stored predictions for the run (on `dataset` when given), in canonical order."""
    sql = "SELECT DISTINCT classifier FROM predictions WHERE run_id = ?"
    params = [run.run_id]
    if dataset:
        sql += " AND dataset = ?"
        params.append(dataset)
    have = set(store.df(sql, params)["classifier"])
    order = ["native", "knn", "lr", "svm"]
    return [c for c in order if c in have] + sorted(have - set(order))


def default_classifier(run: RunInfo, available: list[str]) -> str:
    """native for binary/attribution; kNN (the paper's TripletLoss-NN) first for the metric heads."""
    prefs = ["native"] if run.approach not in METRIC_HEADS else ["knn", "lr", "svm", "native"]
    for c in prefs:
        if c in available:
            return c
    if available:
        return available[0]
    raise AnalysisError(f"run {run.run_id} has no stored predictions: run `dfatlas embed` / `dfatlas classify` first")


# --- the report -----------------------------------------------------------------

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
    problems: list = field(default_factory=list)

    def summary_lines(self) -> list[str]:
        lines = [
            f"set {self.dataset} ({self.source}) analysed by run {self.run_id} [{self.approach}], classifier {self.classifier}",
            f"videos: {self.n_videos} ({self.n_videos_with_faces} with faces), faces: {self.n_faces}"
            + (f"; video statuses: {self.status_counts}" if self.status_counts else ""),
            f"open-set ({self.open_set.get('metric')} distance, {int(100 * self.open_set.get('quantile', 0.95))}th "
            f"percentile of validation): {100 * self.open_set.get('face_rate', float('nan')):.1f} % of faces and "
            f"{100 * self.open_set.get('video_rate', float('nan')):.1f} % of videos resemble no known class",
        ]
        top = self.nearest_centroid.head(2)["class"].tolist()
        knn = self.nearest_knn.head(2)
        if top:
            lines.append("nearest known classes (centroid): " + ", ".join(top)
                         + "; (kNN votes): " + ", ".join(f"{r['class']} {100 * r['share']:.1f} %" for _, r in knn.iterrows()))
        if self.metrics:
            m = self.metrics
            lines.append(f"with labels (video level, threshold {m['threshold']:.4g} from validation): AUC {m['auc']:.3f}, "
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
        }


def _video_level(video_ids, real_scores, pred_classes, probs):
    from .metrics import video_level

    return video_level(video_ids, real_scores, face_pred_classes=pred_classes, face_probs=probs)


def _probs_matrix(col) -> np.ndarray | None:
    if col is None:
        return None
    arr = pa.array(col) if not isinstance(col, (pa.Array, pa.ChunkedArray)) else col
    if arr.null_count == len(arr) or len(arr) == 0:
        return None
    if arr.null_count:
        return None
    return arrow_to_matrix(arr)


def read_val_embeddings(store: Store, run: RunInfo, split: str = "val") -> pd.DataFrame:
    """Embeddings of the run's super-set split faces with their true class index and video."""
    datasets = run.split_datasets(split)
    if not datasets:
        datasets = store.df("SELECT dataset FROM datasets WHERE role = 'superset' AND split = ?", [split])["dataset"].tolist()
    if not datasets:
        return pd.DataFrame(columns=["face_id", "video_id", "true_class", "dataset"])
    tbl = store.arrow(
        "SELECT e.face_id, f.video_id, v.true_class, e.dataset, e.embedding FROM embeddings e "
        "JOIN faces f ON f.face_id = e.face_id JOIN videos v ON v.video_id = f.video_id "
        "WHERE e.run_id = ? AND list_contains(?, e.dataset) ORDER BY e.face_id",
        [run.run_id, datasets])
    df = tbl.drop(["embedding"]).to_pandas()
    df.attrs["embedding"] = arrow_to_matrix(tbl.column("embedding"))
    return df


def class_index(run: RunInfo, true_class: pd.Series) -> np.ndarray:
    lookup = {c: i for i, c in enumerate(run.classes)}
    return np.asarray([lookup.get(c, -1) for c in true_class.fillna("")], dtype=np.int64)


def calibrate_open_set(store: Store, run: RunInfo, val: pd.DataFrame | None = None) -> OpenSetModel:
    val = read_val_embeddings(store, run) if val is None else val
    if val.empty:
        raise AnalysisError(f"run {run.run_id} has no validation embeddings to calibrate the open-set verdict "
                            f"(datasets {', '.join(run.split_datasets('val')) or 'none'}): run `dfatlas embed` first")
    return OpenSetModel.fit(val.attrs["embedding"], class_index(run, val["true_class"]), val["video_id"].to_numpy(),
                            metric_for(run.approach))


def _set_faces(store: Store, run: RunInfo, dataset: str, classifier: str) -> tuple[pd.DataFrame, np.ndarray, np.ndarray | None]:
    tbl = store.arrow(
        "SELECT e.face_id, f.video_id, f.frame_index, p.pred_class, p.real_score, p.probs, e.embedding "
        "FROM embeddings e JOIN faces f ON f.face_id = e.face_id "
        "LEFT JOIN predictions p ON p.run_id = e.run_id AND p.face_id = e.face_id AND p.classifier = ? "
        "WHERE e.run_id = ? AND e.dataset = ? ORDER BY f.video_id, f.frame_index",
        [classifier, run.run_id, dataset])
    df = tbl.drop(["embedding", "probs"]).to_pandas()
    return df, arrow_to_matrix(tbl.column("embedding")), _probs_matrix(tbl.column("probs"))


def video_table(run: RunInfo, faces: pd.DataFrame, emb: np.ndarray, probs: np.ndarray | None,
                osm: OpenSetModel, videos: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
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
    vl = _video_level(faces["video_id"].to_numpy(), faces["real_score"].to_numpy(dtype=float), pred, probs)
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


def _metrics_for(store: Store, run: RunInfo, classifier: str, videos: pd.DataFrame) -> dict | None:
    labelled = videos.dropna(subset=["is_fake", "real_score"])
    if labelled.empty:
        return None
    val = store.df(
        "SELECT f.video_id, p.real_score, v.is_fake FROM predictions p JOIN faces f ON f.face_id = p.face_id "
        "JOIN videos v ON v.video_id = f.video_id WHERE p.run_id = ? AND p.classifier = ? AND list_contains(?, p.dataset)",
        [run.run_id, classifier, run.split_datasets("val")])
    if val.empty:
        return {"error": f"no validation predictions of classifier {classifier} to set the threshold on"}
    from .metrics import evaluate

    vv = _video_level(val["video_id"].to_numpy(), val["real_score"].to_numpy(float), None, None)
    vv = vv.merge(val.drop_duplicates("video_id")[["video_id", "is_fake"]], on="video_id")
    m = evaluate(vv["real_score"].to_numpy(float), to_is_real(vv["is_fake"].to_numpy(bool)),
                 labelled["real_score"].to_numpy(float), to_is_real(labelled["is_fake"].to_numpy(bool)), target_fpr=0.10)
    d = m if isinstance(m, dict) else (dataclasses.asdict(m) if dataclasses.is_dataclass(m) else dict(vars(m)))
    out = {k: (float(v) if isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool) else v)
           for k, v in d.items()}
    out["n_videos"] = int(len(labelled))
    out["level"] = "video"
    return out


def build_report(store: Store, run_id: str, dataset: str, classifier: str | None = None,
                 osm: OpenSetModel | None = None, val: pd.DataFrame | None = None) -> AnalysisReport:
    """Read an analysed set back from the store as a report (read-only; the dashboard uses it too)."""
    run = load_run(store, run_id)
    ds = store.df("SELECT * FROM datasets WHERE dataset = ?", [dataset])
    if ds.empty:
        raise AnalysisError(f"no dataset {dataset!r} in the store")
    available = available_classifiers(store, run, dataset)
    classifier = classifier or default_classifier(run, available)
    if classifier not in available:
        raise AnalysisError(f"classifier {classifier!r} has no predictions for {dataset} in run {run_id} "
                            f"(available: {', '.join(available) or 'none'})")
    val = read_val_embeddings(store, run) if val is None else val
    osm = osm or calibrate_open_set(store, run, val)
    videos = store.df(
        "SELECT v.video_id, v.relpath, v.true_class, v.is_fake, fv.status, fv.reason FROM videos v "
        "LEFT JOIN face_videos fv ON fv.video_id = v.video_id AND fv.settings_key = ? "
        "WHERE v.dataset = ? ORDER BY v.video_id", [run.settings_key or "", dataset])
    faces, emb, probs = _set_faces(store, run, dataset, classifier)
    table, face_open = video_table(run, faces, emb, probs, osm, videos)
    n_faces = len(faces)
    with_faces = table[table["verdict"] != NO_FACE_LABEL]
    # shares per predicted class
    face_names = pd.Series([run.class_name(int(i)) for i in faces["pred_class"].fillna(-1).astype(int)], dtype=object)
    order = [c for c in run.classes] + ["fake"]
    fc = face_names.value_counts()
    vc = with_faces["pred_class"].value_counts()
    shares = pd.DataFrame({"class": [c for c in order if c in fc.index or c in vc.index]})
    shares["videos"] = shares["class"].map(vc).fillna(0).astype(int)
    shares["video_share"] = shares["videos"] / max(len(with_faces), 1)
    shares["faces"] = shares["class"].map(fc).fillna(0).astype(int)
    shares["face_share"] = shares["faces"] / max(n_faces, 1)
    shares = shares.sort_values(["videos", "faces"], ascending=False).reset_index(drop=True)
    # nearest known classes of the set as a whole
    if n_faces:
        mean = prepare(emb, osm.metric).mean(0, keepdims=True)
        d = osm.distances(mean)[0]
        centroid = pd.DataFrame({"class": [run.class_name(c) for c in osm.classes], "distance": d,
                                 "radius": osm.face_radius, "ratio": d / np.where(osm.face_radius > 0, osm.face_radius, np.nan)})
        centroid = centroid.sort_values("distance").reset_index(drop=True)
        vidx = class_index(run, val["true_class"])
        keep = vidx >= 0
        votes = knn_votes(prepare(emb, osm.metric), prepare(val.attrs["embedding"][keep], osm.metric), vidx[keep],
                          run.knn_k, osm.metric, len(run.classes))
        knn = pd.DataFrame({"class": run.classes, "share": votes})
        knn = knn[knn["share"] > 0].sort_values("share", ascending=False).reset_index(drop=True)
    else:
        centroid = pd.DataFrame(columns=["class", "distance", "radius", "ratio"])
        knn = pd.DataFrame(columns=["class", "share"])
    open_set = osm.to_dict(run.classes) | {
        "face_rate": float(face_open.mean()) if n_faces else float("nan"),
        "video_rate": float(with_faces["open_set"].astype(bool).mean()) if len(with_faces) else float("nan"),
    }
    metrics = _metrics_for(store, run, classifier, table) if "real_score" in table else None
    status_counts = videos["status"].fillna("not extracted").value_counts().to_dict()
    proj = store.df("SELECT DISTINCT projection_id FROM projection_points WHERE dataset = ? AND projection_id IN "
                    "(SELECT projection_id FROM projections WHERE run_id = ?)", [dataset, run_id])
    row = ds.iloc[0]
    return AnalysisReport(
        name=dataset.split("/", 1)[1], dataset=dataset, run_id=run_id, approach=run.approach,
        classifier=classifier, classes=run.classes, source=str(row.get("source") or ""),
        labelled=bool(row.get("labelled")), n_videos=len(videos), n_videos_with_faces=len(with_faces),
        n_faces=n_faces, class_shares=shares, nearest_centroid=centroid, nearest_knn=knn, videos=table,
        open_set=open_set, metrics=metrics, status_counts={str(k): int(v) for k, v in status_counts.items()},
        projection_id=None if proj.empty else proj["projection_id"].iloc[0],
    )


def nearest_known_faces(store: Store, run_id: str, video_id: str, k: int = 12,
                        splits: tuple[str, ...] = ("train", "val")) -> pd.DataFrame:
    """Evidence for one video: the training super-set faces nearest to its faces in EMBEDDING space.

    For every reference face (splits `splits` of the run's super-set) the distance
    is its smallest distance to any face of the video, in the geometry of
    `engine.openset` (cosine for the metric heads, euclidean otherwise); the `k`
    nearest are returned with their class, video, dataset and thumbnail.
    """
    run = load_run(store, run_id)
    metric = metric_for(run.approach)
    q = store.arrow("SELECT e.face_id, e.embedding FROM embeddings e JOIN faces f ON f.face_id = e.face_id "
                    "WHERE e.run_id = ? AND f.video_id = ?", [run_id, video_id])
    if q.num_rows == 0:
        return pd.DataFrame(columns=["face_id", "video_id", "dataset", "true_class", "distance", "thumbnail"])
    datasets = [d for s in splits for d in run.split_datasets(s)]
    ref = store.arrow("SELECT e.face_id, e.embedding, e.dataset FROM embeddings e "
                      "WHERE e.run_id = ? AND list_contains(?, e.dataset)", [run_id, datasets])
    if ref.num_rows == 0:
        return pd.DataFrame(columns=["face_id", "video_id", "dataset", "true_class", "distance", "thumbnail"])
    from .openset import pairwise_distance

    qx = prepare(arrow_to_matrix(q.column("embedding")), metric)
    rx = prepare(arrow_to_matrix(ref.column("embedding")), metric)
    best = np.full(len(rx), np.inf)
    for start in range(0, len(rx), 20000):  # bounded memory: [n_query, 20000] at a time
        best[start:start + 20000] = pairwise_distance(qx, rx[start:start + 20000], metric).min(0)
    top = np.argsort(best, kind="stable")[:k]
    ids = [ref.column("face_id")[int(i)].as_py() for i in top]
    meta = store.df("SELECT f.face_id, f.video_id, v.true_class, f.thumbnail FROM faces f "
                    "JOIN videos v ON v.video_id = f.video_id WHERE list_contains(?, f.face_id)", [ids])
    out = pd.DataFrame({"face_id": ids, "dataset": [ref.column("dataset")[int(i)].as_py() for i in top],
                        "distance": best[top]})
    return out.merge(meta, on="face_id", how="left")[["face_id", "video_id", "dataset", "true_class", "distance", "thumbnail"]]


def class_thumbnails(store: Store, run_id: str, dataset: str, classifier: str, per_class: int = 8) -> pd.DataFrame:
    """A few face thumbnails per predicted class of an analysed set (highest-probability faces first)."""
    return store.df(
        "SELECT pred_class, face_id, video_id, thumbnail FROM ("
        " SELECT p.pred_class, p.face_id, f.video_id, f.thumbnail, row_number() OVER ("
        "   PARTITION BY p.pred_class ORDER BY coalesce(list_max(p.probs), p.real_score) DESC, p.face_id) AS rk"
        " FROM predictions p JOIN faces f ON f.face_id = p.face_id"
        " WHERE p.run_id = ? AND p.classifier = ? AND p.dataset = ?) WHERE rk <= ? ORDER BY pred_class, rk",
        [run_id, classifier, dataset, per_class])


def list_analyses(store: Store, run_id: str | None = None) -> pd.DataFrame:
    """Analysed unknown sets (with the runs that analysed them)."""
    return store.df(
        "SELECT d.dataset, d.source, d.labelled, d.created_at, e.run_id, count(*) AS n_faces FROM datasets d "
        "JOIN embeddings e ON e.dataset = d.dataset WHERE d.role = ? AND (? IS NULL OR e.run_id = ?) "
        "GROUP BY ALL ORDER BY d.created_at DESC", [ROLE, run_id, run_id])


# --- writing and cleaning up ------------------------------------------------------

def _existing_state(store: Store, dataset: str, run_id: str) -> dict:
    ds = store.df("SELECT source FROM datasets WHERE dataset = ?", [dataset])
    n_videos = store.scalar("SELECT count(*) FROM videos WHERE dataset = ?", [dataset]) or 0
    n_run = store.scalar("SELECT count(*) FROM embeddings WHERE run_id = ? AND dataset = ?", [run_id, dataset]) or 0
    return {"complete": not ds.empty, "source": None if ds.empty else ds["source"].iloc[0],
            "n_videos": int(n_videos), "analysed_by_run": int(n_run) > 0}


def delete_set(workspace: Workspace, dataset: str, run_id: str | None = None) -> dict:
    """Remove an unknown set from the store (and its crop files).

    With `run_id`, only that run's embeddings, predictions and map points go;
    without, everything: every run's rows, the face rows, the videos, the
    `datasets` row and the crop files. One transaction; files after commit.
    """
    if not dataset.startswith(f"{UNKNOWN_DB}/"):
        raise AnalysisError(f"{dataset!r} is not an unknown set (unknown/<name>); refusing to delete it")
    store = workspace.store()
    counts: dict[str, int] = {}
    crop_paths: list[str] = []
    with store.transaction() as con:
        run_filter = "" if run_id is None else " AND run_id = ?"
        extra = [] if run_id is None else [run_id]
        for table in ("embeddings", "predictions"):
            counts[table] = con.execute(f"SELECT count(*) FROM {table} WHERE dataset = ?{run_filter}",
                                        [dataset, *extra]).fetchone()[0]
            con.execute(f"DELETE FROM {table} WHERE dataset = ?{run_filter}", [dataset, *extra])
        pp_filter = "" if run_id is None else " AND projection_id IN (SELECT projection_id FROM projections WHERE run_id = ?)"
        counts["projection_points"] = con.execute(
            f"SELECT count(*) FROM projection_points WHERE dataset = ?{pp_filter}", [dataset, *extra]).fetchone()[0]
        con.execute(f"DELETE FROM projection_points WHERE dataset = ?{pp_filter}", [dataset, *extra])
        if run_id is None:
            crop_paths = [r[0] for r in con.execute(
                "SELECT crop_path FROM faces WHERE video_id IN (SELECT video_id FROM videos WHERE dataset = ?)",
                [dataset]).fetchall()]
            counts["faces"] = len(crop_paths)
            con.execute("DELETE FROM faces WHERE video_id IN (SELECT video_id FROM videos WHERE dataset = ?)", [dataset])
            con.execute("DELETE FROM face_videos WHERE video_id IN (SELECT video_id FROM videos WHERE dataset = ?)", [dataset])
            counts["videos"] = con.execute("SELECT count(*) FROM videos WHERE dataset = ?", [dataset]).fetchone()[0]
            con.execute("DELETE FROM videos WHERE dataset = ?", [dataset])
            con.execute("DELETE FROM datasets WHERE dataset = ?", [dataset])
    if crop_paths:
        _remove_crops(workspace, crop_paths)
    return counts


def _remove_crops(workspace: Workspace, crop_paths: list[str]) -> None:
    root = workspace.root.resolve()
    faces_root = workspace.faces_dir.resolve()
    dirs = set()
    for rel in crop_paths:
        p = (root / rel).resolve()
        if faces_root not in p.parents:  # never delete outside the workspace's faces folder
            continue
        try:
            p.unlink()
        except FileNotFoundError:
            pass
        dirs.add(p.parent)
    # prune now-empty folders up to faces/<settings_key>
    for d in sorted(dirs, key=lambda x: len(x.parts), reverse=True):
        while d != faces_root and faces_root in d.parents and len(d.relative_to(faces_root).parts) > 1:
            try:
                d.rmdir()
            except OSError:
                break
            d = d.parent


def _record_videos(store: Store, inp: InputSet, synthetic: bool) -> None:
    recs = inp.records
    table = pa.table({
        "video_id": [r.video_id for r in recs],
        "database": [r.database for r in recs],
        "split": [r.split for r in recs],
        "dataset": [r.dataset for r in recs],
        "relpath": [r.relpath for r in recs],
        "path": [str(r.path) for r in recs],
        "true_class": pa.array([r.true_class for r in recs], pa.string()),
        "is_fake": pa.array([r.is_fake for r in recs], pa.bool_()),
        "identity": [r.identity for r in recs],
        "method": [r.method for r in recs],
        "source_ids": pa.array([list(r.source_ids) for r in recs], pa.list_(pa.string())),
        "synthetic": [synthetic] * len(recs),
    })
    with store.transaction() as con:
        store.insert("videos", table, replace=True, con=con)


# --- the pipeline -------------------------------------------------------------------

def _auto_device(device: str) -> str:
    if device != "auto":
        return device
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except Exception:  # noqa: BLE001 - torch missing or broken: CPU
        return "cpu"


def _embed(workspace: Workspace, run: RunInfo, faces: pd.DataFrame, device: str, report: ProgressFn,
           batch: int = 256) -> dict:
    """Embeddings and native head outputs for the set's faces (in memory; written at the end)."""
    from .faces import read_crops
    from .models import load_for_inference

    model = load_for_inference(workspace, run.run_id, device=_auto_device(device))
    n = len(faces)
    embs, probs, scores = [], [], []
    paths = faces["crop_path"].tolist()
    for start in range(0, n, batch):
        imgs = read_crops(workspace, paths[start:start + batch], size=model.input_size or None)
        out = model.predict(imgs)
        embs.append(out["embedding"])
        if out.get("probs") is not None:
            probs.append(out["probs"])
        if out.get("real_score") is not None:
            scores.append(out["real_score"])
        report("embed", min(start + batch, n), n)
    return {
        "embedding": np.concatenate(embs).astype(np.float32),
        "probs": np.concatenate(probs) if probs else None,
        "real_score": np.concatenate(scores) if scores else None,
    }


def _native_predictions(run: RunInfo, out: dict) -> dict | None:
    """The head's own predictions (binary / attribution), as `engine.embed` stores them."""
    if out["probs"] is None:
        return None
    from .embed import native_predictions

    return native_predictions(run.approach, out["probs"], out["real_score"])


def _classify(store: Store, run: RunInfo, emb: np.ndarray, report: ProgressFn) -> dict[str, dict]:
    """kNN / LR / SVM of the run refitted from its stored validation embeddings, applied to `emb`."""
    from .classify import apply_to_embeddings

    return apply_to_embeddings(store, run.run_id, emb, progress=lambda d, t: report("classify", d, t))


def _projection(store: Store, workspace: Workspace, cfg, run: RunInfo, report: ProgressFn) -> str:
    """The run's projection id; computed first when the run has none."""
    pid = store.scalar("SELECT projection_id FROM projections WHERE run_id = ? ORDER BY created_at DESC LIMIT 1",
                       [run.run_id])
    if pid:
        return pid
    return _project_run(store, run.run_id, _projection_section(cfg, run),
                        progress=lambda d, t: report("project", d, t))


def _projection_section(cfg, run: RunInfo):
    """The config's [projection] section, else (no config given) the run's stored one."""
    section = getattr(cfg, "projection", None)
    if section is None:
        from .config import ProjectionSection

        known = {f.name for f in dataclasses.fields(ProjectionSection)}
        section = ProjectionSection(**{k: (tuple(v) if isinstance(v, list) else v)
                                       for k, v in run.config.get("projection", {}).items() if k in known})
    return section


def _project_run(store: Store, run_id: str, cfg, progress=None) -> str:
    """Fit the run's t-SNE map (engine.projection) and return its projection id."""
    from .projection import project_run

    return project_run(store, run_id, cfg, progress=progress)


def _transform(store: Store, projection_id: str, emb: np.ndarray, progress=None, n_jobs: int = 0) -> np.ndarray:
    from .projection import transform_into

    return np.asarray(transform_into(store, projection_id, emb, n_jobs=n_jobs, progress=progress), dtype=np.float64)


def analyze(workspace: Workspace, cfg, run_id: str, input_path: str | Path, name: str | None = None,
            labels_csv: str | Path | None = None, replace: bool = False, progress: ProgressFn | None = None,
            workers: int | None = None, device: str = "auto", executor: str = "process",
            classifier: str | None = None, faces_progress_bar: bool = False, roots=None) -> AnalysisReport:
    """Analyse the videos at `input_path` with run `run_id` and store them as `unknown/<name>`.

    `cfg` is the experiment config (its taxonomy reads labels; the run's *own*
    stored config supplies face settings, super-set and classifier parameters).
    `progress(stage, done, total)` is called as each stage advances (stages:
    `STAGES`). All-or-nothing: on any failure the set's rows and crops are removed.
    The caller holds the workspace lock.
    """
    report = progress or (lambda stage, done, total: None)
    timings: dict[str, float] = {}
    store = workspace.store()
    run = load_run(store, run_id)
    if run.status != "finished":
        raise AnalysisError(f"run {run_id} is {run.status!r}, not finished: finish its training "
                            "(and `dfatlas embed`) before analysing with it")
    taxonomy = cfg.taxonomy if cfg is not None else Taxonomy.from_dict(run.config.get("taxonomy", {}), f"run {run_id}")
    inp = collect_videos(input_path, name, labels_csv, taxonomy, roots=roots)
    dataset = inp.dataset
    state = _existing_state(store, dataset, run_id)
    if state["complete"]:
        same_input = state["source"] == inp.source
        if replace:
            delete_set(workspace, dataset)
            state = _existing_state(store, dataset, run_id)
        elif not same_input:
            raise AnalysisError(f"a set named {inp.name!r} already exists (from {state['source']}); "
                                "choose another --name, or pass --replace to overwrite it")
        elif state["analysed_by_run"]:
            raise AnalysisError(f"set {inp.name!r} was already analysed by run {run_id}; "
                                "pass --replace to analyse it again")
    elif state["n_videos"]:
        delete_set(workspace, dataset)  # leftovers of an analysis that was killed half-way
        state = _existing_state(store, dataset, run_id)
    fresh = not state["complete"]
    val = read_val_embeddings(store, run)
    osm = calibrate_open_set(store, run, val)  # fails early (before any write) if the run has no embeddings
    try:
        t0 = time.perf_counter()
        if fresh:
            _record_videos(store, inp, bool(getattr(cfg, "synthetic", False) or run.synthetic))
        report("record", 1, 1)
        timings["record_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        from .faces import extract_faces

        faces_cfg = run.faces_section()
        if run.settings_key and faces_cfg.settings_key() != run.settings_key:
            raise AnalysisError(f"run {run_id}'s stored face settings do not reproduce its settings key "
                                f"{run.settings_key}; cannot extract faces the way it was trained")
        if getattr(cfg, "faces", None) is not None and cfg.faces.blazeface_model and not faces_cfg.blazeface_model:
            faces_cfg = dataclasses.replace(faces_cfg, blazeface_model=cfg.faces.blazeface_model)
        n_videos = len(inp.records)
        report("faces", 0, n_videos)
        extract_faces(workspace, inp.records, faces_cfg, workers=workers, executor=executor,
                      progress=faces_progress_bar, on_progress=lambda d, t: report("faces", d, t))
        report("faces", n_videos, n_videos)
        timings["faces_s"] = time.perf_counter() - t0
        key = faces_cfg.settings_key()
        faces = store.df(
            "SELECT f.face_id, f.video_id, f.crop_path FROM faces f JOIN videos v ON v.video_id = f.video_id "
            "WHERE v.dataset = ? AND f.settings_key = ? ORDER BY f.video_id, f.frame_index", [dataset, key])
        if faces.empty:
            st = store.df("SELECT status, count(*) AS n FROM face_videos fv JOIN videos v USING (video_id) "
                          "WHERE v.dataset = ? AND fv.settings_key = ? GROUP BY 1 ORDER BY 2 DESC", [dataset, key])
            what = ", ".join(f"{r.n} {r.status}" for r in st.itertuples()) or "no status recorded"
            raise AnalysisError(f"no face was found in any of the {n_videos} videos of {inp.source} ({what}); "
                                "nothing to analyse")

        t0 = time.perf_counter()
        out = _embed(workspace, run, faces, device, report)
        if run.embedding_dim and out["embedding"].shape[1] != run.embedding_dim:
            raise AnalysisError(f"the model gives {out['embedding'].shape[1]}-d embeddings but run {run_id} "
                                f"stored {run.embedding_dim}-d ones; its checkpoint and store disagree")
        timings["embed_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        preds: dict[str, dict] = {}
        native = _native_predictions(run, out)
        if native is not None:
            preds["native"] = native
        if run.approach in METRIC_HEADS:
            preds.update(_classify(store, run, out["embedding"], report))
        if not preds:
            raise AnalysisError(f"run {run_id} has no classifier to apply (run `dfatlas classify` first)")
        report("classify", 1, 1)
        timings["classify_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        pid = _projection(store, workspace, cfg, run, report)
        coords = _transform(store, pid, out["embedding"], progress=lambda d, t: report("project", d, t),
                            n_jobs=_projection_section(cfg, run).n_jobs)
        report("project", 1, 1)
        timings["project_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        _commit(store, run, inp, faces, out["embedding"], preds, pid, coords, fresh)
        report("store", 1, 1)
        timings["store_s"] = time.perf_counter() - t0
    except BaseException:
        if fresh:
            delete_set(workspace, dataset)
        else:
            delete_set(workspace, dataset, run_id=run_id)
        raise
    rep = build_report(store, run_id, dataset, classifier=classifier, osm=osm, val=val)
    rep.timings = timings
    rep.problems = [f"{p.kind}: {p.path}: {p.message}" for p in inp.problems]
    return rep


def _commit(store: Store, run: RunInfo, inp: InputSet, faces: pd.DataFrame, emb: np.ndarray,
            preds: dict[str, dict], projection_id: str, coords: np.ndarray, fresh: bool) -> None:
    """Everything the analysis computed, in one transaction (the datasets row marks it complete)."""
    n = len(faces)
    face_ids = pa.array(faces["face_id"].tolist(), pa.string())
    dataset = inp.dataset
    emb_table = pa.table({"run_id": [run.run_id] * n, "face_id": face_ids, "dataset": [dataset] * n,
                          "embedding": matrix_to_arrow(emb)})
    pred_tables = []
    for clf, p in preds.items():
        probs = p.get("probs")
        pred_tables.append(pa.table({
            "run_id": [run.run_id] * n, "classifier": [clf] * n, "face_id": face_ids, "dataset": [dataset] * n,
            "pred_class": pa.array(np.asarray(p["pred_class"], dtype=np.int32)),
            "real_score": pa.array(np.asarray(p["real_score"], dtype=np.float64)),
            "probs": matrix_to_arrow(probs) if probs is not None else pa.nulls(n, pa.list_(pa.float32())),
            "out_of_fold": [False] * n,
        }))
    pts = pa.table({"projection_id": [projection_id] * n, "dataset": [dataset] * n, "face_id": face_ids,
                    "x": coords[:, 0], "y": coords[:, 1], "is_reference": [False] * n})
    with store.transaction() as con:
        store.insert("embeddings", emb_table, replace=True, con=con)
        for t in pred_tables:
            store.insert("predictions", t, replace=True, con=con)
        store.insert("projection_points", pts, replace=True, con=con)
        if fresh:
            store.insert("datasets", pa.table({
                "dataset": [dataset], "database": [UNKNOWN_DB], "split": [inp.name], "role": [ROLE],
                "labelled": [inp.labelled], "synthetic": [run.synthetic], "source": [inp.source]}), con=con)


# --- input safety for the dashboard (allowed roots, uploads) --------------------------

# Leading bytes of the containers in VIDEO_SUFFIXES: an upload must start like a video.
_MAGIC = (
    (4, b"ftyp"),                 # mp4 / mov / m4v
    (0, b"RIFF"),                 # avi (RIFF....AVI )
    (0, b"\x1a\x45\xdf\xa3"),     # mkv / webm (EBML)
    (0, b"\x00\x00\x01\xba"),     # mpeg program stream
    (0, b"\x00\x00\x01\xb3"),     # mpeg video
    (0, b"\x30\x26\xb2\x75"),     # wmv / asf
    (0, b"FLV"),                  # flv
    (4, b"moov"), (4, b"mdat"), (4, b"free"), (4, b"wide"),  # old QuickTime
)


def looks_like_video(head: bytes, filename: str) -> bool:
    """True when `filename` has a video suffix and `head` (its first bytes) a video container's signature."""
    if not filename.lower().endswith(VIDEO_SUFFIXES):
        return False
    if head[:4] == b"RIFF" and head[8:12] != b"AVI ":
        return False
    return any(head[off:off + len(sig)] == sig for off, sig in _MAGIC)


def sanitize_filename(name: str) -> str:
    """A plain file name: no folders, no leading dots, only safe characters; the suffix kept."""
    base = Path(str(name).replace("\\", "/")).name
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._") or "video"
    suffix = re.sub(r"[^A-Za-z0-9]+", "", suffix).lower()
    return (stem[:100] + ("." + suffix if suffix else ""))


def resolve_under_roots(path: str | Path, roots) -> Path:
    """`path` with symlinks resolved, if it lies inside one of `roots` (also resolved); else AnalysisError.

    This is the only door through which the dashboard reads a user-chosen folder.
    """
    if not roots:
        raise AnalysisError("no folders are open to the dashboard: set [dashboard] allowed_roots in the config")
    real = os.path.realpath(os.path.expanduser(str(path)))
    for root in roots:
        root_real = os.path.realpath(os.path.expanduser(str(root)))
        try:
            if os.path.commonpath([real, root_real]) == root_real:
                return Path(real)
        except ValueError:  # different drives
            continue
    raise AnalysisError(f"{path} is outside the folders this dashboard may read ([dashboard] allowed_roots)")


@dataclass
class UploadResult:
    folder: Path
    saved: list[str]
    refused: list[str]


def save_uploads(workspace: Workspace, set_name: str, files, max_upload_mb: float) -> UploadResult:
    """Write uploaded videos under `<workspace>/uploads/<set>-<time>/` with sanitised names.

    `files`: objects with `.name` and `.getvalue()` (Streamlit's UploadedFile) or (name, bytes) pairs.
    A file over `max_upload_mb`, or one that is not a video (suffix and container signature), is refused
    with its reason; if nothing is left, AnalysisError and nothing is written.
    """
    limit = float(max_upload_mb) * 1024 * 1024
    accepted, refused = [], []
    total = 0
    for f in files:
        name, data = (f if isinstance(f, tuple) else (f.name, f.getvalue()))
        size = len(data)
        if size > limit:
            refused.append(f"{name}: {size / 2**20:.1f} MB is over the {max_upload_mb} MB limit")
            continue
        if not looks_like_video(bytes(data[:16]), name):
            refused.append(f"{name}: not a video ({', '.join(VIDEO_SUFFIXES)} with a video container)")
            continue
        total += size
        if total > limit:
            refused.append(f"{name}: the upload together is over the {max_upload_mb} MB limit")
            continue
        accepted.append((sanitize_filename(name), data))
    if not accepted:
        raise AnalysisError("no video to analyse in the upload" + (": " + "; ".join(refused) if refused else ""))
    stamp = f"{sanitize_name(set_name)}-{time.strftime('%Y%m%d-%H%M%S')}"
    workspace.uploads_dir.mkdir(parents=True, exist_ok=True)
    for i in range(1000):  # two uploads of one name in the same second (two sessions) get two folders
        folder = workspace.uploads_dir / (stamp if i == 0 else f"{stamp}-{i}")
        try:
            folder.mkdir(exist_ok=False)
            break
        except FileExistsError:
            continue
    saved, used = [], set()
    for name, data in accepted:
        stem, suffix = os.path.splitext(name)
        candidate, i = name, 1
        while candidate in used:
            candidate, i = f"{stem}_{i}{suffix}", i + 1
        used.add(candidate)
        (folder / candidate).write_bytes(bytes(data))
        saved.append(candidate)
    return UploadResult(folder, saved, refused)


def open_set_rates(store: Store, run_id: str, datasets: list[str], osm: OpenSetModel | None = None) -> pd.DataFrame:
    """Share of faces and of videos judged "resembles no known class" in already-embedded datasets
    (e.g. the super-set's test split, where it should stay near the calibrated 5 %)."""
    run = load_run(store, run_id)
    osm = osm or calibrate_open_set(store, run)
    rows = []
    for d in datasets:
        tbl = store.arrow("SELECT f.video_id, e.embedding FROM embeddings e JOIN faces f ON f.face_id = e.face_id "
                          "WHERE e.run_id = ? AND e.dataset = ? ORDER BY e.face_id", [run_id, d])
        if tbl.num_rows == 0:
            continue
        emb = arrow_to_matrix(tbl.column("embedding"))
        _, _, face_open = osm.judge_faces(emb)
        _, _, _, video_open = osm.judge_videos(emb, np.asarray(tbl.column("video_id").to_pylist(), dtype=object))
        rows.append({"dataset": d, "faces": int(len(emb)), "face_open_rate": float(face_open.mean()),
                     "videos": int(len(video_open)), "video_open_rate": float(video_open.mean())})
    return pd.DataFrame(rows, columns=["dataset", "faces", "face_open_rate", "videos", "video_open_rate"])
