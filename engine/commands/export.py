"""`dfatlas export`: a run's embeddings, predictions, map points and metrics as Parquet or CSV files."""

from __future__ import annotations

from data_catalog.errors import AtlasError

from .common import add_json_arg, add_parser, add_workspace_arg, print_json, workspace_of


def register(sub) -> None:
    from ..export import FORMATS, TABLES

    p = add_parser(
        sub, "export", "write a run's embeddings, predictions, map points and metrics as Parquet or CSV",
        "dfatlas export --run triplet-0123abcd45 --out exports/ --format parquet",
        description=(
            "One file per table, <run>.<table>.<parquet|csv>, ready for pandas, polars or DuckDB:\n"
            "  embeddings   row, face_id, video_id, frame_index, database, split, dataset, role, label, true_class,\n"
            "               identity, source_ids, method, also_in, synthetic, embedding (CSV: e0, e1, ...)\n"
            "  predictions  row, face_id, video_id, dataset, classifier, pred_class, pred_label, real_score,\n"
            "               out_of_fold, probs (CSV: p_<class>)\n"
            "  map          row, face_id, dataset, x, y, is_reference, projection_id (the run's latest map)\n"
            "  metrics      Tables 1/2, every classifier, as one tidy table (as `dfatlas evaluate --format csv`)\n"
            "`row` is the row-order key (face-id order) shared by the tables. The embeddings file is what\n"
            "`dfatlas import-embeddings` reads: an export round-trips."))
    add_workspace_arg(p)
    p.add_argument("--config", metavar="EXPERIMENT.toml", help="export the config's runs (when --run is not given)")
    p.add_argument("--run", action="append", metavar="RUN",
                   help="run id, repeatable (default: the config's runs, else every run; `dfatlas runs` lists them)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write into (created)")
    p.add_argument("--format", choices=FORMATS, default="parquet")
    p.add_argument("--tables", nargs="+", choices=TABLES, default=list(TABLES), metavar="TABLE",
                   help=f"which tables ({', '.join(TABLES)})")
    p.add_argument("--level", choices=("video", "frame"), default="video", help="level of the metrics table")
    add_json_arg(p, '{"files": [{"run_id", "table", "path"}]}')
    p.set_defaults(func=run)


def run(args) -> int:
    from ..config import load_config
    from ..export import export_run
    from ..runs import config_runs, read_runs

    ws = workspace_of(args)
    if not ws.store_path.exists():
        raise AtlasError(f"no store in {ws.root}: run the pipeline first (`dfatlas demo`)")
    store = ws.store(read_only=True)
    run_ids = args.run or (config_runs(store, load_config(args.config), need=None) if args.config
                           else list(read_runs(store)))
    if not run_ids:
        raise AtlasError(f"no runs in {ws.root} to export")
    files = []
    for run_id in run_ids:
        for table, path in export_run(store, run_id, args.out, args.format, args.tables, args.level).items():
            files.append({"run_id": run_id, "table": table, "path": str(path)})
    if args.json:
        print_json({"files": files})
    else:
        for f in files:
            print(f"{f['run_id']}  {f['table']:<12} {f['path']}")
    return 0
