"""`dfatlas runs`: the runs a workspace holds — their ids (what `analyze`, `export` and `--run` take),
approach, backbone, status, best epoch, classifiers with predictions and maps."""

from __future__ import annotations

from data_catalog.errors import AtlasError

from .common import add_json_arg, add_parser, add_workspace_arg, print_json, print_table, workspace_of


def register(sub) -> None:
    p = add_parser(sub, "runs", "list the runs in the workspace: ids, approach, backbone, status, classifiers, maps",
                   "dfatlas runs --workspace ./dfatlas-workspace",
                   description="Every trained or imported run of the workspace's store, oldest first. The run id is\n"
                               "what `dfatlas analyze --run`, `dfatlas export --run` and the other --run options take.")
    add_workspace_arg(p)
    p.add_argument("--config", metavar="EXPERIMENT.toml", help="only the runs of this experiment config")
    add_json_arg(p, '{"workspace", "runs": [{"run_id", "approach", "label", "backbone", "status", "best_epoch", '
                    '"epochs_done", "embedding_dim", "classifiers", "default_classifier", "maps", "faces", '
                    '"synthetic", "imported"}]}')
    p.set_defaults(func=run)


def run(args) -> int:
    from ..config import load_config
    from ..rendering import json_records
    from ..runs import config_runs, run_overview

    ws = workspace_of(args)
    if not ws.store_path.exists():
        raise AtlasError(f"no store in {ws.root}: run the pipeline first (`dfatlas demo`)")
    store = ws.store(read_only=True)
    ids = config_runs(store, load_config(args.config), need=None) if args.config else None
    table = run_overview(store, ids)
    if args.json:
        print_json({"workspace": str(ws.root), "runs": json_records(table)})
        return 0
    print_table([{"run": r.run_id, "approach": r.label, "backbone": r.backbone, "status": r.status,
                  "best epoch": "" if r.best_epoch is None else r.best_epoch,
                  "classifiers": ", ".join(r.classifiers) or "-", "maps": r.maps, "faces": r.faces,
                  "imported": r.imported or ""}
                 for r in table.astype(object).where(table.notna(), None).itertuples()])
    return 0
