"""`dfatlas analyze`: attribute an unknown set of videos with a trained run.

Foreground: progress bars on stderr, the report's tables on stdout.
Background (`--job-id ID`, what the dashboard starts): the same work, with the
`jobs` row kept current through the store (status, progress, message).
"""

from __future__ import annotations

import json
import sys

from data_catalog.names import printable

from ..config import FacesSection
from .common import (add_aggregation_args, add_config_arg, add_parser, add_wait_arg, add_workspace_arg,
                     aggregation_of, config_of, option_arg, print_table, progress, set_name_arg, workspace_of)


def register(sub) -> None:
    p = add_parser(
        sub, "analyze", help="analyse an unknown set of videos with a trained run (attribution, map, open-set)",
        example="dfatlas analyze --config configs/demo.toml --run triplet-0123abcd45 --input ~/suspicious/ --name case-42",
        description=(
            "Analyse an unknown set: extract faces with the run's face settings, embed them, apply the run's\n"
            "classifiers, place them into the run's t-SNE map and store them as dataset unknown/<NAME>.\n"
            "INPUT is a folder of videos (searched recursively; real/ and fake/ sub-folders count as labels),\n"
            "a single video, or a CSV manifest path,label[,class,method]. Labels are optional.\n"
            "Frames: a folder of images (.png .jpg .jpeg .bmp .webp) without videos is ONE video, its images\n"
            "in natural name order; one image given as INPUT is a one-frame video. GIFs and other files are\n"
            "not used and are listed with the reason (the report's input problems)."),
    )
    add_config_arg(p, required=False)
    add_workspace_arg(p)
    p.add_argument("--run", required=True, metavar="RUN", help="run id (`dfatlas runs` lists them)")
    p.add_argument("--input", required=True, metavar="PATH",
                   help="folder of videos or frame folders, one video or image, or a CSV manifest")
    p.add_argument("--name", metavar="NAME", type=set_name_arg, help="the set's name (default: the folder's or file's name)")
    p.add_argument("--labels", metavar="CSV", help="optional labels: CSV path,label[,class,method] relative to INPUT")
    p.add_argument("--replace", action="store_true", help="replace an existing set of the same name")
    p.add_argument("--workers", type=option_arg(FacesSection, "workers"), metavar="N", help="face-extraction workers (default: [faces] workers)")
    p.add_argument("--device", default="auto", help="embedding device: auto, cpu, cuda, cuda:N")
    p.add_argument("--classifier", metavar="NAME", help="classifier the report uses (default: the run's default — ArcFaceMod lr, TripletLoss knn, "
                   "binary/attribution native — when it has predictions, else the first available)")
    p.add_argument("--format", choices=("table", "json"), default="table", help="report format on stdout")
    p.add_argument("--json", action="store_true", help="the report as one JSON object (same as --format json)")
    p.epilog = ("Run ids: `dfatlas runs` lists them. Without --config, the run's stored config (taxonomy, face\n"
                "settings) is used.\n"
                "A run of imported embeddings has no model to embed videos with: add an unknown set to it with\n"
                "`dfatlas import-embeddings FILE --run RUN --unknown NAME`.")
    p.add_argument("--report", metavar="CASE.html",
                   help="also write the case report: one self-contained HTML file (faces, map, verdicts, θ, "
                        "provenance, SHA-256 of every input file, limits); printable to PDF, makes no outside request")
    add_aggregation_args(p)
    p.add_argument("--allowed-root", action="append", metavar="DIR",
                   help="read only videos whose real path is inside DIR (repeatable; the dashboard passes its roots)")
    p.add_argument("--job-id", metavar="ID", help="background mode: keep the jobs row ID current (used by the dashboard)")
    add_wait_arg(p)
    p.set_defaults(func=run)


def _bars():
    """A (stage, done, total) callback drawing one tqdm bar per stage."""
    state = {"stage": None, "bar": None}

    def update(stage: str, done: int, total: int) -> None:
        if state["stage"] != stage:
            if state["bar"] is not None:
                state["bar"].close()
            state["stage"] = stage
            unit = {"faces": "video", "embed": "face"}.get(stage, "step")
            state["bar"] = progress(total=total or 1, desc=stage, unit=unit)
        bar = state["bar"]
        if total and bar.total != total:
            bar.total = total
        bar.n = min(done, bar.total)
        bar.refresh()

    def close() -> None:
        if state["bar"] is not None:
            state["bar"].close()
            state["bar"] = None

    update.close = close
    return update


def print_report(rep, file=None) -> None:
    file = file or sys.stdout
    for line in rep.summary_lines():
        print(line, file=file)
    print(f"\nverdicts (classifier {rep.classifier}; open-set: {rep.open_set.get('definition')}):", file=file)
    print_table([{"class": rep.display(r["class"]), "videos": r["videos"], "video %": f"{100 * r['video_share']:.1f}",
                  "faces": r["faces"], "face %": f"{100 * r['face_share']:.1f}"}
                 for _, r in rep.class_shares.iterrows()], file=file)
    print("\nper video (verdict: the classifier's class by majority of frames, or open-set / no face; "
          "open = open-set score / its threshold, above 1 = resembles no known class):", file=file)
    rows = []
    for _, r in rep.videos.iterrows():
        row = {"video": r["relpath"], "verdict": rep.display(r["verdict"])}
        if r["verdict"] != "no face found":
            row |= {"pred": rep.display(r["pred_class"]), "agree": f"{r['agreement']:.2f}",
                    "frames": int(r["n_frames"]), "real_score": f"{r['real_score']:.3f}", "open": f"{r['open_ratio']:.2f}",
                    "note": ""}
        else:
            row |= {"pred": "", "agree": "", "frames": 0, "real_score": "", "open": "",
                    "note": f"{r['status']}: {r['reason'] or ''}"[:110]}
        if rep.labelled:
            row["true"] = rep.display(r["true_class"]) if isinstance(r["true_class"], str) else ""
        rows.append(row)
    print_table(rows, file=file)
    if rep.problems:
        print(f"\n{len(rep.problems)} input problem(s):", file=file)
        for p in rep.problems[:20]:
            print("  " + printable(p), file=file)


def run(args) -> int:
    from data_catalog.errors import AtlasError
    from engine.analysis import analyze, overall_fraction
    from engine.jobs import JobUpdater, check_job_id, create_job, finish_job

    if args.report:  # refuse before any work, not after an analysis of many minutes
        from pathlib import Path

        folder = Path(args.report).expanduser().absolute().parent
        if not folder.is_dir():
            raise AtlasError(f"--report {printable(args.report)}: folder {printable(folder)} does not exist")
        if Path(args.report).is_dir():
            raise AtlasError(f"--report {printable(args.report)} is a folder; give a file name such as case.html")
    ws = workspace_of(args)
    ws.ensure()
    store = ws.store()
    job = None
    if args.job_id:
        check_job_id(args.job_id)
        params = {"run": args.run, "input": args.input, "name": args.name, "labels": args.labels,
                  "replace": args.replace, "config": args.config}
        create_job(store, args.job_id, "analyze", params)
        updater = JobUpdater(store, args.job_id)

        def job_progress(stage: str, done: int, total: int) -> None:
            updater(overall_fraction(stage, done, total), f"{stage}: {done}/{total}")

        job = job_progress
        updater(0.0, "waiting for the workspace lock (another dfatlas job is writing)" if _lock_busy(ws) else "starting",
                force=True)
    try:
        cfg = config_of(args) if args.config else None  # None: the run's stored config
        agg, top_k = aggregation_of(args, cfg.classifiers if cfg is not None else _stored_classifiers(store, args.run))
        bars = _bars() if job is None else None
        try:
            with ws.lock(f"analyze {args.run}", wait=args.wait or bool(args.job_id)):
                rep = analyze(ws, cfg, args.run, args.input, name=args.name, labels_csv=args.labels,
                              replace=args.replace, progress=job or bars, workers=args.workers,
                              device=args.device, classifier=args.classifier, roots=args.allowed_root,
                              aggregation=agg, top_k=top_k)
            if args.report:
                from engine.analysis.case_report import write_case_report

                write_case_report(store, args.run, rep.dataset, args.report, rep.classifier, agg, top_k)
        finally:
            if bars is not None:
                bars.close()
    except BaseException as exc:
        if args.job_id:
            msg = str(exc) if isinstance(exc, AtlasError) else f"{type(exc).__name__}: {exc}"
            finish_job(store, args.job_id, False, msg or type(exc).__name__)
        raise
    if args.job_id:
        finish_job(store, args.job_id, True, json.dumps({"dataset": rep.dataset, "run_id": rep.run_id,
                                                         "classifier": rep.classifier}))
    if args.format == "json" or args.json:
        print(json.dumps(rep.to_dict(), default=str, indent=1))
    else:
        print_report(rep)
    if args.report:
        print(f"case report written to {printable(args.report)}", file=sys.stderr)
    return 0


def _stored_classifiers(store, run_id: str):
    """The run's stored [classifiers] section (its aggregation default), or None when the run is unknown."""
    from data_catalog.errors import AtlasError
    from engine.config import ClassifiersSection
    from engine.runs import read_run

    try:
        return read_run(store, run_id).section(ClassifiersSection, "classifiers")
    except AtlasError:
        return None


def _lock_busy(ws) -> bool:
    """Whether another process holds the workspace lock right now (a peek; nothing is held after)."""
    import fcntl

    try:
        with open(ws.lock_path, "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(fh, fcntl.LOCK_UN)
    except OSError:
        return False
    return False
