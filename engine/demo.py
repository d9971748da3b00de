"""`dfatlas demo`: the whole pipeline on the SYNTHETIC benchmark, resumable stage by stage.

benchmark -> catalog -> faces -> train (four approaches) -> embed -> classify
-> project -> evaluate. Every stage reuses what a previous run finished (each
underlying step skips stored work), so an interrupted demo resumes and a
second demo reaches the dashboard in seconds. The caller holds the workspace
lock for the whole pipeline and starts the dashboard afterwards.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from data_catalog.errors import AtlasError

from .progress import progress_tick
from .config import APPROACHES, ExperimentConfig, load_config
from .workspace import Workspace

DEMO_DIR = "demo-data"
MARKER = ".dfatlas-demo-data.json"
SIZES = ("small", "default", "large")


@dataclass
class StageTime:
    name: str
    seconds: float
    note: str = ""


@dataclass
class DemoResult:
    config: ExperimentConfig
    run_ids: list[str]
    stages: list[StageTime] = field(default_factory=list)
    tables: str = ""
    peak_rss_mb: float = 0.0

    @property
    def total_seconds(self) -> float:
        return sum(s.seconds for s in self.stages)


def peak_rss_mb() -> float:
    """Peak resident memory of this process and of its finished children, MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024.0


def ensure_benchmark(ws: Workspace, size: str, seed: int) -> tuple[Path, str]:
    """Generate the benchmark under the workspace unless the same one is already complete."""
    from data_catalog.synthetic import generate

    out = ws.root / DEMO_DIR
    marker = out / MARKER
    want = {"size": size, "seed": seed}
    if marker.is_file():
        try:
            if json.loads(marker.read_text()) == want:
                return out / "demo.toml", "cache hit"
        except ValueError:
            pass
    marker.unlink(missing_ok=True)
    bar, tick = progress_tick("benchmark (SYNTHETIC)", "video")
    try:
        summary = generate(out, seed=seed, size=size, progress=tick, force=True)
    finally:
        bar.close()
    marker.write_text(json.dumps(want))
    return Path(summary.config), f"{summary.n_videos} videos, {summary.n_frames} frames written"


def run_demo(ws: Workspace, size: str = "default", seed: int = 0, workers: int | None = None,
             log: Callable[[str], None] | None = None) -> DemoResult:
    """Run every stage; returns per-stage wall times and the printed tables."""
    from .catalog import record_catalog
    from .classify import METRIC_HEADS, classify_run
    from .embed import embed_run
    from .evaluation import metrics_table, paper_rows, provenance, render
    from .faces.run import extract_for_config
    from .projection import project_run
    from .train import train

    if size not in SIZES:
        raise AtlasError(f"--size must be one of {', '.join(SIZES)}, got {size!r}")
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    stages: list[StageTime] = []

    def timed(name: str, fn):
        log(f"» {name} ...")
        t0 = time.perf_counter()
        note = fn() or ""
        secs = time.perf_counter() - t0
        stages.append(StageTime(name, secs, note))
        log(f"  {name}: {secs:.1f} s{f'  ({note})' if note else ''}")

    ws.ensure()
    holder: dict = {}

    def bench():
        path, note = ensure_benchmark(ws, size, seed)
        holder["cfg"] = load_config(path)
        return note

    timed("benchmark (synthetic)", bench)
    cfg: ExperimentConfig = holder["cfg"]
    store = ws.store()
    databases = list(cfg.sources.superset) + list(cfg.sources.cross_db)

    def catalog():
        have = store.scalar("SELECT count(DISTINCT database) FROM videos WHERE database IN (SELECT unnest(?))",
                            [databases])
        if have == len(databases):
            return "cache hit"
        report = record_catalog(cfg, ws)
        return f"{len(report.records)} videos recorded"

    timed("catalog", catalog)

    def faces():
        summary, _ = extract_for_config(cfg, ws, workers=workers, progress=True)
        if summary.processed == 0:
            return f"cache hit ({summary.skipped} videos)"
        c = summary.counts
        return (f"{summary.processed} videos, {summary.faces} faces, {summary.videos_per_s:.1f} videos/s; "
                + ", ".join(f"{k} {v}" for k, v in c.items() if v))

    timed("faces", faces)

    run_ids = [cfg.run_id(a) for a in APPROACHES]
    for approach in APPROACHES:
        def fit(approach=approach):
            res = train(cfg, approach, ws)
            s = res.summary()
            return ("cache hit" if res.status == "cached" else
                    f"{s['epochs']} epochs, best {s['best epoch']}, val acc {s['val_acc']}, {s['img/s']} img/s")

        timed(f"train {approach}", fit)

    def embed():
        notes = []
        for run_id in run_ids:
            bar, tick = progress_tick(f"embed {run_id}", "face")
            try:
                res = embed_run(ws, run_id, databases, progress=tick)
            finally:
                bar.close()
            notes.append(res["embedded"])
        return "cache hit" if not any(notes) else f"{sum(notes)} faces embedded"

    timed("embed", embed)

    def classify():
        n = 0
        for run_id in run_ids:
            approach = run_id.split("-", 1)[0]
            if approach in METRIC_HEADS:
                n += len(classify_run(store, run_id, cfg.classifiers))
        return f"{n} classifiers"

    timed("classify", classify)

    def project():
        for run_id in run_ids:
            bar, tick = progress_tick(f"project {run_id}", "face")
            try:
                project_run(store, run_id, cfg, progress=tick)
            finally:
                bar.close()
        return ""

    timed("project", project)

    def evaluate():
        df = metrics_table(store, run_ids, level="video")
        parts = []
        for role, title in (("same-db", "Table 1: same-database (SYNTHETIC benchmark test splits)"),
                            ("cross-db", "Table 2: cross-database (unseen SYNTHETIC sets)")):
            rows = paper_rows(df, role)
            if rows:
                parts.append(f"{title} — video level, θ at validation FPR 10 %\n\n{render(rows, 'table')}")
        parts.append("\n".join(provenance(store, run_ids)))
        holder["tables"] = "\n".join(parts)
        return ""

    timed("evaluate", evaluate)
    return DemoResult(cfg, run_ids, stages, holder.get("tables", ""), peak_rss_mb())
