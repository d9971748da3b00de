"""One pipeline of stages: catalog → faces → train → embed → classify → project → evaluate.

Each stage is a function of (workspace, config, runs, progress) that returns
its summary; `dfatlas <stage>`, `dfatlas demo` and `dfatlas analyze` call
these and nothing else of the engine's computing parts, so every caller
walks the same way. Stages skip stored work, so re-running resumes. The
caller holds the workspace lock.

`progress` is an `engine.progress.Progress` (bars on stderr, a job's
callback, or silence).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from data_catalog.errors import AtlasError

from .approaches import approach_names
from .config import ExperimentConfig
from .progress import Progress, silent
from .runs import config_runs, read_run, read_runs
from .workspace import Workspace

STAGES = ("catalog", "faces", "train", "embed", "classify", "project", "evaluate")


@dataclass
class StageSummary:
    """What a stage did: `note` for people ('cache hit', '4 classifiers'), `rows` for tables."""
    stage: str
    note: str = ""
    rows: list[dict] = field(default_factory=list)
    value: object = None  # the stage's main result (a metrics table, projection ids, ...)


def databases_of(cfg: ExperimentConfig) -> list[str]:
    """The databases a config's stages work on: the super-set, then the cross-database sets."""
    return list(cfg.sources.superset) + list(cfg.sources.cross_db)


def catalog_stage(ws: Workspace, cfg: ExperimentConfig, runs=None, progress: Progress | None = None,
                  reuse: bool = False) -> StageSummary:
    """Scan the config's databases into the store (`reuse`: keep them when all are recorded already)."""
    from .catalog import record_catalog
    from .store.catalog import databases_recorded

    databases = databases_of(cfg)
    if reuse and ws.store_path.exists() and databases_recorded(ws.store(), databases) == len(databases):
        return StageSummary("catalog", "cache hit")
    report = record_catalog(cfg, ws)
    return StageSummary("catalog", f"{len(report.records)} videos recorded", value=report)


def faces_stage(ws: Workspace, cfg: ExperimentConfig, runs=None, progress: Progress | None = None,
                workers: int | None = None, **options) -> StageSummary:
    """Faces of every catalogued video of the config (skips finished videos)."""
    from .faces.stage import extract_for_config

    summary, videos = extract_for_config(cfg, ws, workers=workers, progress=progress is not None, **options)
    if summary.processed == 0:
        return StageSummary("faces", f"cache hit ({summary.skipped} videos)", value=(summary, videos))
    counts = ", ".join(f"{k} {v}" for k, v in summary.counts.items() if v)
    refused = (f"; {summary.refused} candidate faces refused by the confirmation check ({summary.refused_no_face} "
               "videos ended no_face)" if summary.refused else "")
    return StageSummary("faces", f"{summary.processed} videos, {summary.faces} faces, "
                                 f"{summary.videos_per_s:.1f} videos/s; {counts}{refused}", value=(summary, videos))


def train_stage(ws: Workspace, cfg: ExperimentConfig, approaches=None, progress: Progress | None = None,
                **options) -> StageSummary:
    """Train (or resume, or reuse) one run per approach; `approaches` default: every trainable one."""
    from .training import train

    rows, results, notes = [], [], []
    for approach in approaches or approach_names(trainable_only=True):
        res = train(cfg, approach, ws, **options)
        results.append(res)
        s = res.summary()
        rows.append(s)
        notes.append("cache hit" if res.status == "cached" else
                     f"{s['epochs']} epochs, best {s['best epoch']}, val acc {s['val_acc']}, {s['img/s']} img/s")
    note = notes[0] if len(notes) == 1 else ("cache hit" if all(n == "cache hit" for n in notes)
                                             else f"{len(results)} runs")
    return StageSummary("train", note, rows, results)


def embed_stage(ws: Workspace, cfg: ExperimentConfig, runs=None, progress: Progress | None = None,
                device: str = "cpu", batch_size: int = 256) -> StageSummary:
    """Embeddings (and native predictions) of every face of the config's databases, per run."""
    from .embed import embed_run

    progress = progress or silent
    rows = []
    for run_id in runs or config_runs(ws.store(), cfg):
        with progress.task(f"embed {run_id}", "face") as tick:
            res = embed_run(ws, run_id, databases_of(cfg), device=device, batch_size=batch_size, progress=tick)
        rows.append({"run": run_id, "embedded": res["embedded"], "already stored": res["already"],
                     "faces/s": f"{res['faces_per_s']:.1f}" if res.get("faces_per_s") else "-"})
    n = sum(r["embedded"] for r in rows)
    return StageSummary("embed", f"{n} faces embedded" if n else "cache hit", rows)


def classify_stage(ws: Workspace, cfg: ExperimentConfig | None, runs=None, progress: Progress | None = None,
                   force: bool = False, skip_others: bool = False) -> StageSummary:
    """kNN / LR / SVM of every run whose approach takes embedding classifiers.

    Runs named in `runs` must take them unless `skip_others` (the demo passes all four of its runs);
    without `runs`, the config's other runs are skipped. Without a config (`runs` named), each run's
    own stored [classifiers] section applies.
    """
    from .classify import classifiers_config, classify_run

    store = ws.store()
    records = read_runs(store, runs or config_runs(store, cfg))
    chosen = [r for r in records.values() if r.kind.embedding_classifiers]
    if runs and not skip_others and len(chosen) < len(records):
        other = next(r for r in records.values() if not r.kind.embedding_classifiers)
        raise AtlasError(f"run {other.run_id} is a {other.approach} run: it is evaluated with its own head "
                         "(classifier 'native'); kNN/LR/SVM apply to runs with embedding classifiers")
    if not chosen:
        raise AtlasError("no finished run with embedding classifiers (triplet, arcfacemod) for this config: "
                         "nothing to classify")
    rows = []
    for run in chosen:
        with (progress or silent).task(f"classify {run.run_id}", "dataset") as tick:
            section = cfg.classifiers if cfg is not None else classifiers_config(run)
            for s in classify_run(store, run.run_id, section, force=force,
                                  progress=lambda _name, done, total: tick(done, total)):
                rows.append({"run": run.run_id, **s})
    return StageSummary("classify", f"{len(rows)} classifiers", rows)


def project_stage(ws: Workspace, cfg: ExperimentConfig | None, runs=None, progress: Progress | None = None) -> StageSummary:
    """The t-SNE map of every run, with every embedded face placed in it (without a config, `runs` named:
    each run's own stored [projection] section)."""
    from .config import ProjectionSection
    from .projection import TSNEMap, project_run

    progress = progress or silent
    store = ws.store()
    rows = []
    for run_id in runs or config_runs(store, cfg):
        section = cfg if cfg is not None else read_run(store, run_id).section(ProjectionSection, "projection")
        with progress.task(f"project {run_id}", "face") as tick:
            pid = project_run(store, run_id, section, progress=tick, stage=lambda msg: progress.message(f"» {msg} ..."))
        rows.append({"run": run_id, "projection": pid, "points": TSNEMap.load(store, pid).n_points(store)})
    return StageSummary("project", "", rows, [r["projection"] for r in rows])


def evaluate_stage(ws: Workspace, cfg: ExperimentConfig | None, runs=None, progress: Progress | None = None,
                   classifiers=None, level: str = "video", target_fpr: float = 0.10,
                   bootstrap: int = 0) -> StageSummary:
    """Tables 1/2 (AUC / FPR / FNR / HTER per run, classifier and test set) from the stored predictions;
    videos scored by the config's `[classifiers] aggregation` (the paper's mean without a config)."""
    from .evaluation import metrics_table

    store = ws.store(read_only=True)
    if runs is None and cfg is not None:
        runs = config_runs(store, cfg)
    agg = {} if cfg is None else {"aggregation": cfg.classifiers.aggregation, "top_k": cfg.classifiers.top_k}
    df = metrics_table(store, runs, classifiers, level=level, target_fpr=target_fpr, bootstrap=bootstrap, **agg)
    return StageSummary("evaluate", f"{len(df)} rows", value=df)


def run_of(ws: Workspace, run_id: str):
    """The run record of `run_id` in the workspace's store (for callers that name one run)."""
    return read_run(ws.store(read_only=True), run_id)
