"""Database adapters: one module per database, each reading its published layout.

An adapter is an object with `name`, `description`, `options` (option name ->
"path" | "str" | "bool" | "int" | "float" | tuple of choices, as accepted in
`[sources.NAME]` and checked by `options.coerce_option`)
and `scan(root, *, name, options, taxonomy) -> ScanResult`. Fatal problems
(root missing, unreadable split file) raise `AtlasError`/`ConfigError`
naming the file; everything else is collected in `ScanResult.problems`.
"""

from __future__ import annotations

from .base import Adapter, Problem, ScanResult

ADAPTERS: dict[str, Adapter] = {}


def register(adapter: Adapter) -> Adapter:
    ADAPTERS[adapter.name] = adapter
    return adapter


from . import generic  # noqa: E402,F401  (each module registers itself)
from . import faceforensics, google_dfd, celebdf, deeperforensics, hififace, deepfaketimit  # noqa: E402,F401
from . import deepfakebench  # noqa: E402,F401

__all__ = ["ADAPTERS", "Adapter", "Problem", "ScanResult", "register"]
