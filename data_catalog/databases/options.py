"""Adapter options: one checker for `[sources.NAME]` tables and `--option KEY=VALUE`.

An adapter declares `options = {name: kind}` with kind one of "path", "str",
"bool", "int", "float", or a tuple of allowed strings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def coerce_option(adapter, opt: str, value: Any, base: Path, from_text: bool = False) -> Any:
    """Check (and, for text from the command line, convert) one option value.

    Raises `ValueError` with a message saying what was expected; the caller
    adds the file/key or the command-line flag. Relative paths are taken
    relative to `base`.
    """
    if opt not in adapter.options:
        known = ", ".join(["adapter", "root", *adapter.options])
        raise ValueError(f"unknown option for adapter {adapter.name!r} (known: {known})")
    return coerce_kind(adapter.options[opt], value, base, from_text)


def coerce_kind(kind, value: Any, base: Path | None = None, from_text: bool = False) -> Any:
    """Check one value against a kind ("path", "str", "bool", "int", "float" or a
    tuple of allowed strings); the one type checker of adapter options and the
    experiment config's sections. Raises `ValueError` saying what was expected."""
    if kind == "path":
        if not isinstance(value, str) or not value:
            raise ValueError(f"expected a path string, got {value!r}")
        p = Path(value).expanduser()
        return str(p if p.is_absolute() else base / p)
    if kind == "bool":
        if from_text and isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        return value
    if kind == "int":
        if from_text and isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                raise ValueError(f"expected an integer, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an integer, got {value!r}")
        return value
    if kind == "float":
        if from_text and isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise ValueError(f"expected a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"expected a number, got {value!r}")
        return float(value)
    if isinstance(kind, tuple):
        if value not in kind:
            raise ValueError(f"expected one of {', '.join(kind)}, got {value!r}")
        return value
    # "str": a string, or a TOML list of strings (joined with commas)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ",".join(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value
