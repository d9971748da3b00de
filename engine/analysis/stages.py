"""The analysis itself: an unknown set through the run's stages, stored all-or-nothing.

`analyze(workspace, cfg, run_id, input_path, ...)` records the set's videos
(`inputs.collect_videos`), extracts faces with the *run's* face settings
(`engine.faces.extract_faces`), embeds them with the run's model
(`engine.embed.load_model` / `embed_crops`, which also give the head's native
predictions), applies the run's embedding classifiers when its approach has
them (`engine.classify.apply_to_embeddings`), places the faces into the run's
latest map (`engine.store.projections.latest_projection_id`, else
`engine.projection.project_run` first; then `engine.projection.transform_into`:
the known sets keep their coordinates) and stores all of it as one new dataset;
`report.build_report` reads it back.

The `datasets` row (role ``unknown``, labelled when any label was given,
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
"""

from __future__ import annotations

import dataclasses
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from data_catalog.synthetic import is_synthetic_path
from data_catalog.taxonomy import Taxonomy

from ..classify import apply_to_embeddings
from ..config import FacesSection, ProjectionSection
from ..embed import embed_crops, load_model
from ..metrics import DEFAULT_AGGREGATION, DEFAULT_TOP_K, check_aggregation
from ..projection import project_run, transform_into
from ..runs import RunRecord, read_run
from ..store import Store
from ..store import analyses as set_table
from ..store.catalog import datasets_table
from ..store.embeddings import embeddings_table
from ..store.predictions import predictions_table
from ..store.projections import latest_projection_id, points_table
from .cleanup import delete_set, set_state
from .custody import custody_table
from .inputs import InputSet, collect_videos
from .paths import ROLE, UNKNOWN_DB, AnalysisError
from .report import AnalysisReport, build_report
from .verdict import calibrate_open_set, open_set_section, read_val_embeddings

# (stage, done, total) — called as work advances; stages in order:
STAGES = ("record", "faces", "embed", "classify", "project", "store")
STAGE_WEIGHTS = {"record": 0.02, "faces": 0.55, "embed": 0.2, "classify": 0.05, "project": 0.15, "store": 0.03}
ProgressFn = Callable[[str, int, int], None]
EMBED_CHUNK = 1024  # crops read and embedded per step (progress is reported per step)


def overall_fraction(stage: str, done: int, total: int) -> float:
    """A stage's progress as a fraction of the whole analysis (for job rows)."""
    before = sum(STAGE_WEIGHTS[s] for s in STAGES[:STAGES.index(stage)])
    return before + STAGE_WEIGHTS[stage] * (done / total if total else 1.0)


@contextmanager
def _timed(timings: dict, stage: str):
    t0 = time.perf_counter()
    yield
    timings[f"{stage}_s"] = time.perf_counter() - t0


# --- the stages ------------------------------------------------------------------------

def _prepare_set(workspace, store: Store, inp: InputSet, run_id: str, replace: bool) -> bool:
    """Refuse or clear an existing set of the same name; True when the set's videos must be recorded."""
    return prepare_set(workspace, store, inp.dataset, inp.name, inp.source, run_id, replace)


def prepare_set(workspace, store: Store, dataset: str, name: str, source: str, run_id: str, replace: bool) -> bool:
    """Refuse or clear an existing set `dataset` before run `run_id` adds it from `source` (an analysis, or
    an import of its embeddings); True when the set is new (its videos and `datasets` row must be written)."""
    state = set_state(store, dataset, run_id)
    if state["complete"]:
        if replace:
            delete_set(workspace, dataset)
            state = set_state(store, dataset, run_id)
        elif state["source"] != source:
            raise AnalysisError(f"a set named {name!r} already exists (from {state['source']}); "
                                "choose another --name, or pass --replace to overwrite it")
        elif state["analysed_by_run"]:
            raise AnalysisError(f"set {name!r} was already analysed by run {run_id}; "
                                "pass --replace to analyse it again")
    elif state["n_videos"]:
        delete_set(workspace, dataset)  # leftovers of an analysis that was killed half-way
        state = set_state(store, dataset, run_id)
    return not state["complete"]


def _record_videos(store: Store, inp: InputSet, synthetic: bool, uploads_dir, report: ProgressFn) -> None:
    """The set's videos with every file's original name and SHA-256 (`custody`), and its input problems
    (files not used, with the reason): kept with the set."""
    from ..store.catalog import problems_table, videos_table

    files = custody_table(inp.records, inp.source, uploads_dir, progress=lambda d, t: report("record", d, t))
    set_table.write_set_videos(store, videos_table(inp.records, synthetic),
                               problems_table([(UNKNOWN_DB, p) for p in inp.problems], inp.dataset), files)


def _faces_section(cfg, run: RunRecord) -> FacesSection:
    """The run's stored face settings (they must reproduce its settings key); a local BlazeFace model
    path from the config fills a gap."""
    faces_cfg = run.section(FacesSection, "faces")
    if run.settings_key and faces_cfg.settings_key() != run.settings_key:
        raise AnalysisError(f"run {run.run_id}'s stored face settings do not reproduce its settings key "
                            f"{run.settings_key}; cannot extract faces the way it was trained")
    if getattr(cfg, "faces", None) is not None and cfg.faces.blazeface_model and not faces_cfg.blazeface_model:
        faces_cfg = dataclasses.replace(faces_cfg, blazeface_model=cfg.faces.blazeface_model)
    return faces_cfg


def _extract(workspace, store: Store, inp: InputSet, faces_cfg: FacesSection, report: ProgressFn, workers,
             executor: str, progress_bar: bool) -> pd.DataFrame:
    """Faces of the set's videos (face_id, video_id, crop_path); AnalysisError when no video has one."""
    from ..faces import extract_faces

    n_videos = len(inp.records)
    report("faces", 0, n_videos)
    extract_faces(workspace, inp.records, faces_cfg, workers=workers, executor=executor,
                  progress=progress_bar, on_progress=lambda d, t: report("faces", d, t),
                  allowed_roots=inp.allowed_roots)
    report("faces", n_videos, n_videos)
    key = faces_cfg.settings_key()
    faces = set_table.set_faces(store, inp.dataset, key)
    if faces.empty:
        st = set_table.face_status_counts(store, inp.dataset, key)
        what = ", ".join(f"{r.n} {r.status}" for r in st.itertuples()) or "no status recorded"
        raise AnalysisError(f"no face was found in any of the {n_videos} videos of {inp.source} ({what}); "
                            "nothing to analyse")
    return faces


def _embed(workspace, run: RunRecord, crop_paths: list[str], device: str, report: ProgressFn) -> dict:
    """`embedding` [N, d] and the head's `native` predictions (or None) of the set's crops, in memory."""
    model = load_model(workspace, run, device)
    n = len(crop_paths)
    embs, natives = [], []
    for start in range(0, n, EMBED_CHUNK):
        out = embed_crops(workspace, run, crop_paths[start:start + EMBED_CHUNK], model)
        embs.append(out["embedding"])
        natives.append(out["native"])
        report("embed", min(start + EMBED_CHUNK, n), n)
    emb = np.concatenate(embs).astype(np.float32)
    if run.embedding_dim and emb.shape[1] != run.embedding_dim:
        raise AnalysisError(f"the model gives {emb.shape[1]}-d embeddings but run {run.run_id} "
                            f"stored {run.embedding_dim}-d ones; its checkpoint and store disagree")
    native = None
    if natives and all(x is not None for x in natives):
        native = {"pred_class": np.concatenate([x["pred_class"] for x in natives]),
                  "real_score": np.concatenate([x["real_score"] for x in natives]),
                  "probs": None if any(x["probs"] is None for x in natives)
                  else np.concatenate([x["probs"] for x in natives])}
    return {"embedding": emb, "native": native}


def _classify(store: Store, run: RunRecord, emb: np.ndarray, native: dict | None, report: ProgressFn) -> dict:
    """{classifier: {pred_class, real_score, probs}}: the head's own, and the run's embedding classifiers
    (refitted from its stored validation embeddings) when its approach has them."""
    preds: dict[str, dict] = {}
    if native is not None:
        preds["native"] = native
    if run.kind.embedding_classifiers:
        preds.update(apply_to_embeddings(store, run.run_id, emb, progress=lambda d, t: report("classify", d, t)))
    if not preds:
        raise AnalysisError(f"run {run.run_id} has no classifier to apply (run `dfatlas classify` first)")
    report("classify", 1, 1)
    return preds


def _projection_section(cfg, run: RunRecord) -> ProjectionSection:
    """The config's [projection] section, else (no config given) the run's stored one."""
    section = getattr(cfg, "projection", None)
    return section if section is not None else run.section(ProjectionSection, "projection")


def _place(store: Store, cfg, run: RunRecord, emb: np.ndarray, video_ids, report: ProgressFn) -> tuple[str, np.ndarray]:
    """(projection id, [N, 2] coordinates): the set placed into the run's latest map (fitted first if none);
    `video_ids` (one per face) place a video's faces together on a per-video map, as `dfatlas project` does."""
    section = _projection_section(cfg, run)
    pid = latest_projection_id(store, run.run_id)
    if not pid:
        pid = project_run(store, run.run_id, section, progress=lambda d, t: report("project", d, t))
    coords = transform_into(store, pid, emb, n_jobs=section.n_jobs, progress=lambda d, t: report("project", d, t),
                            video_ids=np.asarray(video_ids, dtype=object))
    report("project", 1, 1)
    return pid, np.asarray(coords, dtype=np.float64)


def _commit(store: Store, run: RunRecord, inp: InputSet, faces: pd.DataFrame, emb: np.ndarray,
            preds: dict[str, dict], projection_id: str, coords: np.ndarray, fresh: bool, synthetic: bool) -> None:
    """Everything the analysis computed, in one transaction (the datasets row marks it complete)."""
    face_ids = faces["face_id"].tolist()
    datasets = [inp.dataset] * len(face_ids)
    pred_tables = [predictions_table(run.run_id, clf, face_ids, datasets, p["pred_class"], p["real_score"],
                                     p.get("probs"), out_of_fold=False) for clf, p in preds.items()]
    dataset_row = datasets_table([inp.dataset], [UNKNOWN_DB], [inp.name], [ROLE], [inp.labelled], [synthetic],
                                 [inp.source]) if fresh else None
    set_table.write_analysis(store, embeddings_table(run.run_id, face_ids, datasets, emb), pred_tables,
                             points_table(projection_id, inp.dataset, face_ids, coords, False), dataset_row)


# --- the analysis -------------------------------------------------------------------------

def analyze(workspace, cfg, run_id: str, input_path: str | Path, name: str | None = None,
            labels_csv: str | Path | None = None, replace: bool = False, progress: ProgressFn | None = None,
            workers: int | None = None, device: str = "auto", executor: str = "process",
            classifier: str | None = None, faces_progress_bar: bool = False, roots=None,
            aggregation: str = DEFAULT_AGGREGATION, top_k: int = DEFAULT_TOP_K) -> AnalysisReport:
    """Analyse the videos at `input_path` with run `run_id` and store them as `unknown/<name>`.

    `cfg` is the experiment config (its taxonomy reads labels; the run's *own*
    stored config supplies face settings, super-set and classifier parameters).
    `progress(stage, done, total)` is called as each stage advances (stages:
    `STAGES`). All-or-nothing: on any failure the set's rows and crops are removed.
    The caller holds the workspace lock.
    """
    report = progress or (lambda stage, done, total: None)
    check_aggregation(aggregation, top_k)  # before any work
    timings: dict[str, float] = {}
    store = workspace.store()
    run = read_run(store, run_id)
    if run.status != "finished":
        raise AnalysisError(f"run {run_id} is {run.status!r}, not finished: finish its training "
                            "(and `dfatlas embed`) before analysing with it")
    if not run.kind.trains:
        raise AnalysisError(f"run {run_id} holds imported embeddings ({run.kind.label}): there is no model to embed "
                            f"new videos with; import the set's embeddings instead (`dfatlas import-embeddings FILE "
                            f"--run {run_id} --unknown NAME`)")
    taxonomy = cfg.taxonomy if cfg is not None else Taxonomy.from_dict(run.config.get("taxonomy", {}), f"run {run_id}")
    inp = collect_videos(input_path, name, labels_csv, taxonomy, roots=roots)
    fresh = _prepare_set(workspace, store, inp, run_id, replace)
    val = read_val_embeddings(store, run)
    # fails early (before any write) if the run has no embeddings
    osm = calibrate_open_set(store, run, val, open_set_section(run, cfg), classifier or run.default_classifier)
    # The set is SYNTHETIC only when its files lie in the benchmark's folders, whatever the run was trained
    # on: real footage analysed by a demo run is real footage.
    synthetic = is_synthetic_path(inp.source)
    try:
        with _timed(timings, "record"):
            if fresh:
                _record_videos(store, inp, synthetic, workspace.uploads_dir, report)
            report("record", 1, 1)
        with _timed(timings, "faces"):
            faces = _extract(workspace, store, inp, _faces_section(cfg, run), report, workers, executor,
                             faces_progress_bar)
        with _timed(timings, "embed"):
            out = _embed(workspace, run, faces["crop_path"].tolist(), device, report)
        with _timed(timings, "classify"):
            preds = _classify(store, run, out["embedding"], out["native"], report)
        with _timed(timings, "project"):
            pid, coords = _place(store, cfg, run, out["embedding"], faces["video_id"].tolist(), report)
        with _timed(timings, "store"):
            _commit(store, run, inp, faces, out["embedding"], preds, pid, coords, fresh, synthetic)
            report("store", 1, 1)
    except BaseException:
        delete_set(workspace, inp.dataset, run_id=None if fresh else run_id)
        raise
    rep = build_report(store, run_id, inp.dataset, classifier=classifier, val=val, cfg=cfg,
                       osm=None if osm.scorer.needs_probs else osm, aggregation=aggregation, top_k=top_k)
    rep.timings = timings
    return rep
