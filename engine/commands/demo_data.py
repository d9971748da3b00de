"""`dfatlas demo-data`: write the SYNTHETIC benchmark and its experiment config."""

from __future__ import annotations

import sys
from pathlib import Path

from data_catalog.errors import AtlasError

from ..config import ExperimentSection, Range, option_range
from .common import add_parser, number_arg, progress


def register(sub) -> None:
    p = add_parser(
        sub, "demo-data",
        "write the SYNTHETIC demo benchmark (drawn faces + real manipulation methods) and demo.toml",
        "dfatlas demo-data --out dfatlas-workspace/demo-data --size default",
        description=(
            "Write the SYNTHETIC deepfake-attribution benchmark: procedurally drawn identities,\n"
            "six manipulation methods in three training databases and two unseen sets, as MJPG\n"
            "AVI videos with a CSV manifest per database, plus OUT/demo.toml pointing at them.\n"
            "No real person appears; figures measured on it say nothing about real detectors.\n"
            "Same seed and size give byte-identical files."
        ),
    )
    p.add_argument("--out", metavar="DIR", required=True, help="folder to write (must be empty unless --force)")
    p.add_argument("--seed", type=int, default=0, help="generator seed")
    p.add_argument("--size", choices=("small", "default", "large"), default="default",
                   help="small: ~100 short videos (CI smoke); default: ~700 videos x 16 frames; large: ~2000 x 32")
    p.add_argument("--force", action="store_true", help="write into a non-empty folder, replacing earlier benchmark files")
    p.add_argument("--workers", type=number_arg(int, Range(1, 1024)), default=None, help="processes (default: 1 for small, else up to 2)")
    p.set_defaults(func=run)


def run(args) -> int:
    from data_catalog.synthetic import generate, plan
    from data_catalog.synthetic.benchmark import check_out_dir

    problem = option_range(ExperimentSection, "seed").problem(args.seed)  # the config's seed range
    if problem:
        raise AtlasError(f"--seed: {problem}")
    out = Path(args.out).expanduser()
    check_out_dir(out, force=args.force)  # fail before the progress bar starts
    total = len(plan(args.seed, args.size))
    print(f"Writing the SYNTHETIC benchmark (seed {args.seed}, size {args.size}, {total} videos) to {out}",
          file=sys.stderr, flush=True)
    with progress(total=total, desc="synthetic videos", unit="video") as bar:
        def tick(done: int, _total: int) -> None:
            bar.update(done - bar.n)

        summary = generate(out, seed=args.seed, size=args.size, progress=tick, workers=args.workers, force=True)
    print(f"SYNTHETIC benchmark: {summary.n_videos} videos, {summary.n_frames} frames in {summary.seconds:.1f} s")
    for line in summary.lines():
        print(f"  {line}")
    print(f"Experiment config: {summary.config}")
    print(f"Next: dfatlas catalog show --config {summary.config}")
    return 0
