"""`dfatlas import-embeddings`: any detector's embeddings as a run (or an unknown set of such a run)."""

from __future__ import annotations

from data_catalog.errors import AtlasError

from .analyze import print_report
from .common import (add_json_arg, add_parser, add_wait_arg, add_workspace_arg, config_of, print_json, print_table,
                     set_name_arg, stage, workspace_of)


def register(sub) -> None:
    p = add_parser(
        sub, "import-embeddings", "register another detector's embeddings (Parquet / .npz) as a run, or add an "
                                  "unknown set's embeddings to such a run",
        "dfatlas import-embeddings features.parquet --superset FF++ --cross-db CelebDF",
        description=(
            "FILE holds one row per face (frame_index or face_id columns) or per video, with columns\n"
            "video_id, label (real/fake), split (train/val/test), embedding (a list of floats; .npz: a 2-D\n"
            "array) and optionally database, true_class, identity, source_ids, role (README: 'Exports and\n"
            "any detector's embeddings'). It becomes a run of the 'external' approach: nothing is trained; kNN,\n"
            "LR and SVM are fitted on the super-set's validation rows, θ is set there, and the run's map is\n"
            "computed; Tables 1/2 (`dfatlas evaluate`), `dfatlas export` and the dashboard treat it as any run.\n"
            "With --run RUN --unknown NAME, FILE is an unknown set's embeddings from the same detector: it is\n"
            "analysed like `dfatlas analyze` analyses videos (report on stdout).\n"
            "An export (`dfatlas export`) round-trips: importing its embeddings file refits the same classifiers."))
    p.add_argument("file", metavar="FILE", help="embeddings: .parquet or .npz")
    add_workspace_arg(p)
    p.add_argument("--config", metavar="EXPERIMENT.toml",
                   help="taxonomy (class order and colours), [classifiers], [projection] and seed to use "
                        "(default: the export's own, else the defaults)")
    p.add_argument("--database", default="external", metavar="NAME",
                   help="database of rows without a 'database' column (use a name no config scans)")
    p.add_argument("--superset", nargs="+", metavar="DB",
                   help="training super-set databases (default: the file's roles, else the databases with val rows)")
    p.add_argument("--cross-db", nargs="+", metavar="DB", help="cross-database sets (default: the other databases)")
    p.add_argument("--name", metavar="NAME", help="the detector's name (shown as the run's backbone)")
    p.add_argument("--no-map", action="store_true", help="skip the t-SNE map (`dfatlas project --run RUN` later)")
    p.add_argument("--replace", action="store_true", help="import again over an earlier import of the same file "
                                                          "(or replace an unknown set of the same name)")
    p.add_argument("--run", metavar="RUN", help="with --unknown: the external run the set belongs to (`dfatlas runs`)")
    p.add_argument("--unknown", metavar="NAME", type=set_name_arg,
                   help="FILE is an unknown set of run --run: store and analyse it as unknown/NAME")
    p.add_argument("--classifier", metavar="NAME", help="with --unknown: classifier of the report (default: the run's)")
    add_json_arg(p, "the import summary (or, with --unknown, the analysis report)")
    add_wait_arg(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..embedding_import import import_run, import_unknown_set

    ws = workspace_of(args).ensure()
    if args.unknown or args.run:
        if not (args.unknown and args.run):
            raise AtlasError("--unknown NAME and --run RUN go together: the unknown set is added to that run")
        with ws.lock(f"import-embeddings {args.run}", wait=args.wait), stage(f"analyse unknown/{args.unknown}"):
            rep = import_unknown_set(ws, args.run, args.file, name=args.unknown, replace=args.replace,
                                     classifier=args.classifier)
        if args.json:
            print_json(rep.to_dict())
        else:
            print_report(rep)
        return 0
    cfg = config_of(args) if args.config else None
    with ws.lock("import-embeddings", wait=args.wait), stage("import-embeddings (store, kNN / LR / SVM"
                                                             + (")" if args.no_map else ", t-SNE map)")):
        summary = import_run(ws, args.file, cfg, database=args.database, superset=args.superset,
                             cross_db=args.cross_db, name=args.name, replace=args.replace, project=not args.no_map)
    if args.json:
        print_json(summary.to_dict())
        return 0
    print(f"run {summary.run_id}: {summary.status} — {summary.rows} {summary.granularity} rows of {summary.videos} "
          f"videos, {summary.embedding_dim}-d; classes {', '.join(summary.classes)}")
    print(f"super-set: {', '.join(summary.superset)}; cross-db: {', '.join(summary.cross_db) or '-'}")
    for note in summary.notes:
        print(f"note: {note}")
    print_table([{"classifier": c["classifier"], "status": c["status"], "params": c["params"],
                  "fitted on": c.get("n_fit", "")} for c in summary.classifiers])
    print(f"map: {summary.projection_id or 'not computed (dfatlas project --run ' + summary.run_id + ')'}")
    print(f"next: dfatlas evaluate --runs {summary.run_id}   ·   dfatlas serve")
    return 0
