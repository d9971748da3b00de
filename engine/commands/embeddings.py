"""`dfatlas embed`, `classify`, `project`, `evaluate`: from trained runs to the paper's tables and maps."""

from __future__ import annotations

import sys

from data_catalog.errors import AtlasError

from ..classify import CLASSIFIERS
from ..progress import bars
from ..config import Range
from .common import (add_aggregation_args, add_config_arg, add_json_arg, add_parser, add_wait_arg, add_workspace_arg,
                     aggregation_of, config_of, number_arg, print_json, print_table, workspace_of)


def register(sub) -> None:
    p = add_parser(sub, "embed", "embed every face of the super-set and cross-db sets with a trained run",
                   "dfatlas embed --config configs/demo.toml",
                   description="Store each face's embedding and, for binary/attribution runs, the head's own\n"
                               "prediction (classifier 'native'). Faces already embedded are skipped.")
    add_config_arg(p)
    add_workspace_arg(p)
    p.add_argument("--run", metavar="RUN", help="one run id (default: the config's finished runs)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--batch-size", type=number_arg(int, Range(1, 1_000_000)), default=256, metavar="N", help="images per forward pass")
    add_wait_arg(p)
    p.set_defaults(func=run_embed)

    p = add_parser(sub, "classify", "fit kNN / LR / SVM on validation embeddings (triplet, arcfacemod runs)",
                   "dfatlas classify --config configs/demo.toml",
                   description="Fitted on the super-set's validation split only; validation predictions are\n"
                               "out-of-fold (grouped by video). [classifiers] model_selection = true picks\n"
                               "hyper-parameters by cross-validation on that split.")
    add_config_arg(p, required=False)
    add_workspace_arg(p)
    p.add_argument("--run", metavar="RUN", help="one run id (default: the config's triplet/arcfacemod runs); without "
                                                "--config its own stored [classifiers] apply")
    p.add_argument("--force", action="store_true", help="refit even when the stored fit matches the config")
    add_wait_arg(p)
    p.set_defaults(func=run_classify)

    p = add_parser(sub, "project", "compute the runs' t-SNE maps (openTSNE), cached in the store",
                   "dfatlas project --config configs/demo.toml   (or: dfatlas project --run RUN)",
                   description="Fit once per run on [projection] reference (default: the super-set test split),\n"
                               "then place every other embedded face into the same map.")
    add_config_arg(p, required=False)
    add_workspace_arg(p)
    p.add_argument("--run", metavar="RUN", help="one run id (default: the config's finished runs); without --config "
                                                "its own stored [projection] applies (imported runs)")
    add_wait_arg(p)
    p.set_defaults(func=run_project)

    p = add_parser(sub, "evaluate", "print the paper's Table 1 (same-db) and Table 2 (cross-db) for the stored runs",
                   "dfatlas evaluate --format markdown",
                   description="AUC, FNR, FPR and HTER at the threshold set on the pooled super-set validation\n"
                               "split (FPR <= 10 %), real as the positive class (DESIGN.md 'Metrics').")
    add_workspace_arg(p)
    add_config_arg(p, required=False)
    p.add_argument("--runs", nargs="+", metavar="RUN",
                   help="run ids (default: the config's runs with --config, else every run in the store; `dfatlas runs` "
                        "lists them)")
    p.add_argument("--classifier", nargs="+", metavar="NAME", choices=[*CLASSIFIERS, "all", "default"],
                   help="classifiers to show (default: native for binary/attribution, knn for triplet, lr for arcfacemod)")
    p.add_argument("--level", choices=("video", "frame"), default="video",
                   help="score videos (frames aggregated by --aggregation) or frames")
    add_aggregation_args(p)
    p.add_argument("--format", choices=("table", "csv", "markdown", "latex"), default="table")
    p.add_argument("--target-fpr", type=number_arg(float, Range(0.0, 1.0)), default=0.10, metavar="F", help="validation FPR that sets the threshold")
    p.add_argument("--bootstrap", type=number_arg(int, Range(0, 1_000_000)), default=0, metavar="N",
                   help="add 95%% confidence intervals from N resamplings of the test videos")
    p.add_argument("--details", action="store_true", help="also print per-fake-class FPR at the threshold")
    add_json_arg(p, '{"level", "target_fpr", "rows": [the tidy table\'s rows, fractions], "provenance": [lines]}')
    p.set_defaults(func=run_evaluate)


def _store(ws):
    if not ws.store_path.exists():
        raise AtlasError(f"no store in {ws.root}: run the pipeline first (`dfatlas demo`)")
    return ws.store()


def run_embed(args) -> int:
    from ..pipeline import embed_stage

    cfg = config_of(args)
    ws = workspace_of(args).ensure()
    with ws.lock("embed", wait=args.wait):
        _store(ws)
        summary = embed_stage(ws, cfg, [args.run] if args.run else None, bars, device=args.device,
                              batch_size=args.batch_size)
    print_table(summary.rows)
    return 0


def _config_or_run(args):
    """The config, or None when one run is named without one (its stored sections apply)."""
    if args.config:
        return config_of(args)
    if not args.run:
        raise AtlasError("give --config EXPERIMENT.toml (its runs), or --run RUN (one run, with its own stored settings)")
    return None


def run_classify(args) -> int:
    from ..pipeline import classify_stage

    cfg = _config_or_run(args)
    ws = workspace_of(args).ensure()
    with ws.lock("classify", wait=args.wait):
        _store(ws)
        summary = classify_stage(ws, cfg, [args.run] if args.run else None, bars, force=args.force)
    print_table(summary.rows)
    return 0


def run_project(args) -> int:
    from ..pipeline import project_stage

    cfg = _config_or_run(args)
    ws = workspace_of(args).ensure()
    with ws.lock("project", wait=args.wait):
        _store(ws)
        summary = project_stage(ws, cfg, [args.run] if args.run else None, bars)
    print_table(summary.rows)
    return 0


def run_evaluate(args) -> int:
    from ..evaluation import class_fpr, metrics_table
    from ..metrics import aggregation_key
    from ..provenance import provenance
    from ..rendering import TABLE_TITLES, latex_caption, latex_label, paper_rows, render, tidy_bytes

    ws = workspace_of(args)
    if not ws.store_path.exists():
        raise AtlasError(f"no store in {ws.root}: run the pipeline first (`dfatlas demo`)")
    store = ws.store(read_only=True)
    clfs = args.classifier
    if clfs and ("default" in clfs):
        clfs = None
    args.runs = _evaluated_runs(args, store)
    agg, k = aggregation_of(args, config_of(args).classifiers if args.config else None)
    df = metrics_table(store, args.runs, clfs, level=args.level, target_fpr=args.target_fpr, bootstrap=args.bootstrap,
                       aggregation=agg, top_k=k)
    if df.empty or df.auc.isna().all() and df.fpr.isna().all() and (df.dataset == "(all)").all():
        for note in dict.fromkeys(df.note.dropna()):
            print(f"  {note}", file=sys.stderr)
        raise AtlasError("no predictions for these runs/classifiers: run `dfatlas embed` (and `dfatlas classify` "
                         "for triplet/arcfacemod runs) first")
    if args.json:
        return _print_evaluation_json(args, store, df, agg, k)
    fmt = args.format
    out = sys.stdout
    if fmt == "csv":  # the tidy table (numbers as numbers); provenance goes to stderr so the file stays tidy
        out.write(tidy_bytes(df, "csv").decode())
        for line in provenance(store, args.runs, args.level, agg, k):
            print(f"# {line}", file=sys.stderr)
        return 0
    lvl = f"{args.level} level{f' (video score: {aggregation_key(agg, k)})' if args.level == 'video' else ''}, " \
          f"θ at validation FPR {100 * args.target_fpr:g} %"
    for role, title in TABLE_TITLES.items():
        rows = paper_rows(df, role, with_ci=args.bootstrap > 0)
        if not rows:
            continue
        heading = f"{title} — {lvl}"
        if fmt == "latex":
            out.write(render(rows, fmt, caption=latex_caption(title, args.level, args.target_fpr),
                             label=latex_label(role, args.level)) + "\n")
            continue
        out.write(("## " if fmt == "markdown" else "") + heading + "\n\n")
        out.write(render(rows, fmt) + "\n")
    if args.details:
        for (run_id, clf), _ in df.groupby(["run_id", "classifier"], sort=False):
            pc = class_fpr(store, run_id, clf, level=args.level, target_fpr=args.target_fpr, aggregation=agg, top_k=k)
            rows = [{"class": r.true_class, "n": r.n, "FPR (%)": f"{100 * r.fpr:.2f}"} for r in pc.itertuples()]
            out.write(f"per-class FPR at θ — {run_id} / {clf}\n")
            out.write(render(rows, fmt) + "\n")
    if args.details:
        from ..evaluation import detection_losses

        lost = detection_losses(store)
        lost = lost[lost.n_lost > 0]
        out.write("videos lost to face extraction (per dataset and class)\n")
        out.write(render([{"dataset": r.dataset, "class": r.true_class, "videos": r.n_videos, "lost": r.n_lost,
                           "lost (%)": f"{100 * r.lost_share:.1f}", "statuses": r.statuses}
                          for r in lost.itertuples()] or [{"dataset": "(none lost)"}], fmt) + "\n")
    prefix = {"latex": "% ", "markdown": "> "}.get(fmt, "")
    for line in provenance(store, args.runs, args.level, agg, k):
        out.write(f"{prefix}{line}\n")
    return 0


def _evaluated_runs(args, store):
    """--runs, else the runs of --config, else None (every run in the store)."""
    from ..runs import config_runs

    return args.runs or (config_runs(store, config_of(args), need=None) if args.config else None)


def _print_evaluation_json(args, store, df, aggregation: str, top_k: int) -> int:
    """`dfatlas evaluate --json`: the tidy table's rows (fractions) and the provenance lines."""
    from ..provenance import provenance
    from ..rendering import json_records, tidy_metrics

    print_json({"level": args.level, "target_fpr": args.target_fpr, "rows": json_records(tidy_metrics(df)),
                "provenance": provenance(store, args.runs, args.level, aggregation, top_k)})
    return 0
