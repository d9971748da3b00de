"""Arguments and output helpers shared by the sub-commands."""

from __future__ import annotations

import argparse
import sys

from ..config import ExperimentConfig, load_config
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


def add_wait_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wait", action="store_true",
                   help="if another job holds the workspace, wait for it instead of stopping")


def workspace_of(args) -> Workspace:
    return resolve_workspace(getattr(args, "workspace", None))


def config_of(args) -> ExperimentConfig:
    return load_config(args.config)


def print_table(rows: list[dict], columns: list[str] | None = None, file=None) -> None:
    """A plain aligned text table."""
    file = file or sys.stdout
    if not rows:
        print("(nothing)", file=file)
        return
    columns = columns or list(rows[0])
    cells = [[str(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)), file=file)
    print("  ".join("-" * w for w in widths), file=file)
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)), file=file)
