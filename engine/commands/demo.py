"""`dfatlas demo`: from nothing to an open dashboard on the SYNTHETIC benchmark."""

from __future__ import annotations

import os
import sys

from ..config import DashboardSection, ExperimentSection, FacesSection
from .common import add_parser, add_wait_arg, add_workspace_arg, option_arg, workspace_of


def register(sub) -> None:
    p = add_parser(
        sub, "demo", "run the whole pipeline on the synthetic benchmark and open the dashboard",
        "dfatlas demo --size small --no-serve",
        description=(
            "Generate the SYNTHETIC benchmark, extract faces, train the four approaches on the CPU,\n"
            "embed, fit the classifiers, evaluate, compute the maps, print the paper-style tables and\n"
            "start the dashboard on localhost. Finished stages are reused: an interrupted demo resumes\n"
            "where it stopped, and a second demo opens the dashboard in seconds."
        ),
    )
    add_workspace_arg(p)
    p.add_argument("--size", choices=("small", "default", "large"), default="default",
                   help="benchmark size: small ~2-3 min end to end on 2 cores, default ~8 min")
    p.add_argument("--seed", type=option_arg(ExperimentSection, "seed"), default=0, help="benchmark seed")
    p.add_argument("--workers", type=option_arg(FacesSection, "workers"), default=None, metavar="N", help="face-extraction processes (default: cores)")
    p.add_argument("--no-serve", action="store_true", help="stop after printing the tables")
    p.add_argument("--port", type=option_arg(DashboardSection, "port"), default=8501, help="dashboard port (the next free one if taken)")
    add_wait_arg(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..demo import run_demo
    from ..config import TOUR_URL_PATH
    from .serve import ENTRY, free_port, run_server, streamlit_command, url_of

    ws = workspace_of(args).ensure()
    print(f"dfatlas demo — SYNTHETIC benchmark (size {args.size}, seed {args.seed}) in workspace {ws.root}",
          file=sys.stderr, flush=True)
    with ws.lock("demo", wait=args.wait):
        result = run_demo(ws, size=args.size, seed=args.seed, workers=args.workers)
    print()
    print(result.tables)
    print("stage times:")
    for s in result.stages:
        print(f"  {s.name:<24} {s.seconds:7.1f} s  {s.note}")
    print(f"  {'total':<24} {result.total_seconds:7.1f} s   peak memory {result.peak_rss_mb:.0f} MiB")
    if args.no_serve:
        print(f"\nopen the dashboard with: dfatlas serve --workspace {ws.root}"
              f"  (its /{TOUR_URL_PATH} page is a guided tour for class)")
        return 0
    host = "127.0.0.1"
    port = free_port(host, args.port)
    if port != args.port:
        print(f"port {args.port} is taken; using {port}", file=sys.stderr)
    print(f"\ndashboard: {url_of(host, port)}  (Ctrl+C to stop)", flush=True)
    print(f"guided tour for class: {url_of(host, port)}/{TOUR_URL_PATH}", flush=True)
    env = dict(os.environ, DFATLAS_WORKSPACE=str(ws.root))
    return run_server(streamlit_command(ENTRY, host, port), env, str(ENTRY.parent))
