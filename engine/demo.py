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

from .approaches import approach_names
from .config import ExperimentConfig, load_config
from .progress import bars, progress_tick
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
    from data_catalog.synthetic import GENERATOR_VERSION, generate

    out = ws.root / DEMO_DIR
    marker = out / MARKER
    want = {"size": size, "seed": seed, "generator": GENERATOR_VERSION}
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
    """Run every stage of `engine.pipeline`; returns per-stage wall times and the printed tables."""
    from . import pipeline
    from .provenance import provenance
    from .rendering import paper_rows, render

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
    timed("catalog", lambda: pipeline.catalog_stage(ws, cfg, reuse=True).note)
    timed("faces", lambda: pipeline.faces_stage(ws, cfg, progress=bars, workers=workers).note)
    approaches = approach_names(trainable_only=True)
    for approach in approaches:
        timed(f"train {approach}", lambda a=approach: pipeline.train_stage(ws, cfg, [a]).note)
    run_ids = [cfg.run_id(a) for a in approaches]
    timed("embed", lambda: pipeline.embed_stage(ws, cfg, run_ids, bars).note)
    timed("classify", lambda: pipeline.classify_stage(ws, cfg, run_ids, skip_others=True).note)
    timed("project", lambda: pipeline.project_stage(ws, cfg, run_ids, bars) and "")

    def evaluate():
        df = pipeline.evaluate_stage(ws, cfg, run_ids, level="video").value
        parts = []
        for role, title in (("same-db", "Table 1: same-database (SYNTHETIC benchmark test splits)"),
                            ("cross-db", "Table 2: cross-database (unseen SYNTHETIC sets)")):
            rows = paper_rows(df, role)
            if rows:
                parts.append(f"{title} — video level, θ at validation FPR 10 %\n\n{render(rows, 'table')}")
        parts.append("\n".join(provenance(ws.store(read_only=True), run_ids, "video", cfg.classifiers.aggregation,
                                          cfg.classifiers.top_k)))
        holder["tables"] = "\n".join(parts)
        return ""

    timed("evaluate", evaluate)
    return DemoResult(cfg, run_ids, stages, holder.get("tables", ""), peak_rss_mb())
