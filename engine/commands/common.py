"""Arguments and output helpers shared by the sub-commands."""

from __future__ import annotations

import argparse
import sys

from data_catalog.errors import AtlasError
from data_catalog.names import printable

from ..config import ExperimentConfig, Range, load_config, option_range
from ..progress import progress, progress_tick, stage  # noqa: F401  (the sub-commands' progress bars)
from ..workspace import Workspace, resolve_workspace

FORMATTER = argparse.RawDescriptionHelpFormatter


def add_parser(sub, name: str, help: str, example: str, description: str = "") -> argparse.ArgumentParser:
    """A sub-command parser whose --help ends with a worked example."""
    return sub.add_parser(
        name, help=help, formatter_class=FORMATTER,
        description=(description or help) + f"\n\nexample:\n  {example}",
    )


def add_workspace_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workspace", metavar="DIR",
                   help="workspace folder (default: $DFATLAS_WORKSPACE, else ./dfatlas-workspace)")


def add_config_arg(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--config", metavar="EXPERIMENT.toml", required=required,
                   help="experiment config (see configs/paper.toml, configs/demo.toml)")


def add_json_arg(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--json", action="store_true",
                   help=f"print {what} as one JSON object on stdout (stable keys; names as stored text)")


def print_json(obj) -> None:
    """One JSON document on stdout: names as stored text (`data_catalog.names`), never escaped for display."""
    import json

    print(json.dumps(obj, default=str))


def add_wait_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wait", action="store_true",
                   help="if another job holds the workspace, wait for it instead of stopping")


def number_arg(kind: type, rng: Range):
    """An argparse `type=` for a number in `rng`: a bad value is argparse's one-line usage error, exit 2."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not {'an integer' if kind is int else 'a number'} (allowed: {rng.describe()})") from None
        problem = rng.problem(value)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value

    parse.__name__ = kind.__name__
    return parse


def option_arg(section: type, name: str, kind: type = int):
    """An argparse `type=` for a flag that overrides `[section] name`: the config's declared range."""
    return number_arg(kind, option_range(section, name))


def set_name_arg(text: str) -> str:
    """An argparse `type=` for an unknown set's name: the one set-name rule (`engine.analysis.sanitize_name`)."""
    from ..analysis.paths import sanitize_name

    try:
        return sanitize_name(text)
    except AtlasError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_aggregation_args(p: argparse.ArgumentParser) -> None:
    """--aggregation / --top-k: how a video's real-score comes from its frames' (engine.metrics.AGGREGATIONS)."""
    from ..config import ClassifiersSection
    from ..metrics import AGGREGATIONS, DEFAULT_TOP_K

    p.add_argument("--aggregation", choices=AGGREGATIONS, metavar="HOW",
                   help="a video's real-score from its frames': mean (the paper's; default), median, max-fake (the "
                        "lowest frame), top-k (mean of the k most fake frames); θ is set at the same aggregation; "
                        "the predicted class stays the majority of frames (default: the config's "
                        "[classifiers] aggregation, else mean)")
    p.add_argument("--top-k", type=option_arg(ClassifiersSection, "top_k"), metavar="K",
                   help=f"k of --aggregation top-k (default: [classifiers] top_k, else {DEFAULT_TOP_K})")


def aggregation_of(args, section=None) -> tuple[str, int]:
    """(aggregation, k) from --aggregation / --top-k, else `section` (a [classifiers] section), else the defaults."""
    from ..metrics import DEFAULT_AGGREGATION, DEFAULT_TOP_K, check_aggregation

    agg = args.aggregation or (section.aggregation if section is not None else DEFAULT_AGGREGATION)
    k = args.top_k or (section.top_k if section is not None else DEFAULT_TOP_K)
    if args.top_k and agg != "top-k":
        raise AtlasError(f"--top-k applies to --aggregation top-k only (the aggregation is {agg})")
    return check_aggregation(agg, k)


def workspace_of(args) -> Workspace:
    return resolve_workspace(getattr(args, "workspace", None))


def config_of(args) -> ExperimentConfig:
    return load_config(args.config)


def print_table(rows: list[dict], columns: list[str] | None = None, file=None) -> None:
    """A plain aligned text table; each cell on one line (`data_catalog.names.printable`), so a file name
    holding a newline or an escape sequence cannot break or forge rows."""
    file = file or sys.stdout
    if not rows:
        print("(nothing)", file=file)
        return
    columns = columns or list(rows[0])
    cells = [[printable(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)), file=file)
    print("  ".join("-" * w for w in widths), file=file)
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)), file=file)
