"""The `dfatlas` command line: one sub-command per module in `engine/commands/`.

Each command module exposes `register(subparsers)`; it adds its parser and
sets `func`. User errors (`AtlasError`) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from data_catalog.errors import AtlasError

# Order here is the order in `dfatlas --help`: the pipeline's order.
COMMAND_MODULES = [
    "engine.commands.demo",
    "engine.commands.demo_data",
    "engine.commands.catalog",
    "engine.commands.models",
    "engine.commands.faces",
    "engine.commands.train",
    "engine.commands.embeddings",
    "engine.commands.runs",
    "engine.commands.export",
    "engine.commands.import_embeddings",
    "engine.commands.serve",
    "engine.commands.analyze",
]


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dfatlas",
        formatter_class=_Formatter,
        description=(
            "Deepfake Attribution Atlas: train deepfake detectors for attribution,\n"
            "cache their embeddings in DuckDB and explore them in a dashboard.\n\n"
            "Quick start (synthetic benchmark, CPU):  dfatlas demo"
        ),
    )
    parser.add_argument("--version", action="version", version=f"dfatlas {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("dfatlas")
    except Exception:  # not installed (running from a checkout)
        return "0+unknown"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
        return int(code or 0)
    except AtlasError as exc:
        print(f"dfatlas: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("\ndfatlas: interrupted; finished work is kept — run the same command again to resume",
              file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `dfatlas ... | head`: stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:
        from .diskspace import disk_full, is_disk_full

        if not is_disk_full(exc):
            raise
        # a full disk that no writer turned into DiskFull (a library's own temp file): one line still
        print(f"dfatlas: error: {disk_full(getattr(exc, 'filename', None) or os.getcwd(), None, exc)}",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
