"""`dfatlas catalog`: read databases in their published layouts.

    dfatlas catalog scan --db ADAPTER --root PATH [--option KEY=VALUE ...] [--json]
    dfatlas catalog show --config EXPERIMENT.toml [--workspace DIR] [--json]
    dfatlas catalog adapters
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

from data_catalog.databases import ADAPTERS
from data_catalog.databases.layout import SPLIT_RANK
from data_catalog.databases.options import coerce_option
from data_catalog.errors import AtlasError
from data_catalog.names import path_to_text, printable
from data_catalog.taxonomy import Taxonomy, paper_taxonomy

from .common import add_config_arg, add_parser, add_wait_arg, add_workspace_arg, config_of, print_table, workspace_of

SHOW_PER_KIND = 50  # text output lists at most this many problems of one kind (--json lists all)


def register(sub) -> None:
    p = add_parser(sub, "catalog", "scan deepfake databases in their published layouts and record them",
                   "dfatlas catalog show --config configs/paper.toml")
    csub = p.add_subparsers(dest="catalog_command", metavar="ACTION")
    csub.required = True

    s = add_parser(csub, "scan", "scan one database root: videos per split and class, and every problem found",
                   "dfatlas catalog scan --db faceforensics --root /data/FaceForensics++ --option compression=c40")
    s.add_argument("--db", required=True, metavar="ADAPTER", choices=sorted(ADAPTERS),
                   help=f"database layout: {', '.join(sorted(ADAPTERS))}")
    s.add_argument("--root", required=True, metavar="PATH", help="the database's root folder")
    s.add_argument("--name", metavar="NAME", help="database name in records and ids (default: the adapter's name)")
    s.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="adapter option, repeatable (see `dfatlas catalog adapters`)")
    s.add_argument("--taxonomy", metavar="TAXONOMY.toml", help="class taxonomy (default: the paper's ten classes)")
    s.add_argument("--json", action="store_true", help='print one JSON object {"database", "counts", "problems"}')
    s.set_defaults(func=run_scan)

    sh = add_parser(csub, "show", "scan every database of an experiment config, report duplicates and split "
                                  "conflicts, and record the videos in the workspace's store",
                    "dfatlas catalog show --config configs/paper.toml --workspace ./ws")
    add_config_arg(sh)
    add_workspace_arg(sh)
    add_wait_arg(sh)
    sh.add_argument("--db", action="append", metavar="NAME", help="only this configured database (repeatable)")
    sh.add_argument("--no-record", action="store_true", help="report only; leave the store as it is")
    sh.add_argument("--json", action="store_true", help="print one JSON object with every database, duplicate and conflict")
    sh.set_defaults(func=run_show)

    a = add_parser(csub, "adapters", "list the database adapters and their options",
                   "dfatlas catalog adapters")
    a.add_argument("--json", action="store_true", help='print one JSON object {"adapters": [{"name", "options", "layout"}]}')
    a.set_defaults(func=run_adapters)


# --- scan -------------------------------------------------------------------------

def parse_options(adapter, pairs: list[str], base: Path) -> dict:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise AtlasError(f"--option expects KEY=VALUE, got {pair!r}")
        try:
            options[key] = coerce_option(adapter, key, value.strip(), base, from_text=True)
        except ValueError as exc:
            raise AtlasError(f"--option {key}: {exc}") from None
    return options


def run_scan(args) -> int:
    adapter = ADAPTERS[args.db]
    options = parse_options(adapter, args.option, Path.cwd())
    taxonomy = Taxonomy.load(args.taxonomy) if args.taxonomy else paper_taxonomy()
    root = Path(args.root).expanduser().absolute()
    result = adapter.scan(root, name=args.name or adapter.name, options=options, taxonomy=taxonomy)
    if args.json:
        print(json.dumps(result.to_json(), sort_keys=False))
        return 0
    print(f"{printable(result.database)}  (adapter {adapter.name}, root {_shown_path(root)})")
    _print_counts(result.counts())
    _print_problems([(result.database, p) for p in result.problems])
    return 0


def _print_counts(counts: dict[str, dict[str, int]]) -> None:
    rows = []
    for split, classes in sorted(counts.items(), key=lambda kv: SPLIT_RANK.get(kv[0], 3)):
        for cls, n in classes.items():
            rows.append({"split": split, "class": cls, "videos": n})
        rows.append({"split": split, "class": "(all)", "videos": sum(classes.values())})
    _print_table(rows, ["split", "class", "videos"])


def _shown_path(path) -> str:
    """A path as stored (undecodable bytes as \\xHH) and on one line (a newline as \\n)."""
    return printable(path_to_text(path))


def _print_table(rows: list[dict], columns: list[str]) -> None:
    """print_table with every cell on one line: a name holding a newline cannot break the table."""
    print_table([{c: printable(r.get(c, "")) for c in columns} for r in rows], columns)


def _print_problems(problems, file=None) -> None:
    file = file or sys.stdout
    if not problems:
        print("problems: none", file=file)
        return
    print(f"problems ({len(problems)}):", file=file)
    by_kind = defaultdict(list)
    for db, p in problems:
        by_kind[p.kind].append((db, p))
    for kind, items in by_kind.items():
        for db, p in items[:SHOW_PER_KIND]:
            print(f"  {kind}  {_shown_path(p.path)}: {printable(p.message)}", file=file)
        if len(items) > SHOW_PER_KIND:
            print(f"  ... and {len(items) - SHOW_PER_KIND} more {kind} problems (--json lists all)", file=file)


# --- show -------------------------------------------------------------------------

def run_show(args) -> int:
    from ..catalog import collect, record

    cfg = config_of(args)
    report = collect(cfg, args.db)
    recorded = None
    if not args.no_record:
        ws = workspace_of(args)
        with ws.lock("catalog show", wait=args.wait):
            recorded = record(ws.store(), report, cfg)
    if args.json:
        out = report.to_json()
        out["recorded"] = recorded
        print(json.dumps(out))
        return 0
    for scan in report.scans:
        print(f"\n{scan.name}  (adapter {scan.adapter}, role {scan.role}, root {_shown_path(scan.root)})"
              + ("  [synthetic]" if scan.synthetic else ""))
        if len(scan.records) != len(scan.result.records):
            moved = len(scan.result.records) - len(scan.records)
            print(f"  {len(scan.result.records)} videos found; {moved} of them are kept under another database"
                  + (f" ({len(scan.shared)} still listed in this database's split through videos.also_in)"
                     if scan.shared else ""))
        _print_counts(scan.counts())
        _print_problems([(scan.name, p) for p in scan.result.problems])
    print(f"\ntaxonomy ({_shown_path(cfg.taxonomy.origin)})")
    _print_problems([("", p) for p in report.config_problems])
    dups = [d for d in report.duplicates if not d.conflict]
    print(f"\nduplicates (same video, same split): {len(dups)}")
    for d in dups[:SHOW_PER_KIND]:
        print(f"  {printable(d.message())}")
    if len(dups) > SHOW_PER_KIND:
        print(f"  ... and {len(dups) - SHOW_PER_KIND} more (--json lists all)")
    conflicts = report.split_conflicts
    print(f"split conflicts (resolved towards test): {len(conflicts)}")
    for d in conflicts[:SHOW_PER_KIND]:
        print(f"  {printable(d.message())}")
    if len(conflicts) > SHOW_PER_KIND:
        print(f"  ... and {len(conflicts) - SHOW_PER_KIND} more (--json lists all)")
    if report.not_scanned:
        print(f"not scanned (in neither superset nor cross_db): {', '.join(report.not_scanned)}")
    _print_protocol(report)
    if recorded is not None:
        print(f"\nrecorded {recorded} videos of {len(report.scans)} databases in {workspace_of(args).store_path}")
    return 0


def _print_protocol(report) -> None:
    """The protocol in the paper's terms and the leakage check (engine.catalog)."""
    from ..catalog import leakage, protocol_summary

    rows = [{"database": r["database"], "split": r["split"], "reals": r["reals"], "fakes": r["fakes"],
             "identities": r["identities"],
             "fakes by class": ", ".join(f"{c} {n}" for c, n in r["fakes by class"].items()) or "-"}
            for r in protocol_summary(report)]
    print("\nprotocol (videos kept per database and split):")
    _print_table(rows, ["database", "split", "reals", "fakes", "identities", "fakes by class"])
    leaks = leakage(report)
    print(f"leakage (training fakes whose person or source video is a val/test real): {len(leaks) or 'none'}")
    for leak in leaks[:SHOW_PER_KIND]:
        print(f"  {printable(leak.message())}")
    if len(leaks) > SHOW_PER_KIND:
        print(f"  ... and {len(leaks) - SHOW_PER_KIND} more (--json lists all)")


def run_adapters(args) -> int:
    if args.json:
        print(json.dumps({"adapters": [{"name": n, "options": {k: list(v) if isinstance(v, tuple) else str(v)
                                                                for k, v in ADAPTERS[n].options.items()},
                                         "layout": ADAPTERS[n].description} for n in sorted(ADAPTERS)]}))
        return 0
    rows = []
    for name in sorted(ADAPTERS):
        a = ADAPTERS[name]
        opts = ", ".join(f"{k} ({'|'.join(v) if isinstance(v, tuple) else v})" for k, v in a.options.items())
        rows.append({"adapter": name, "options": opts or "-", "layout": a.description})
    _print_table(rows, ["adapter", "options", "layout"])
    return 0
