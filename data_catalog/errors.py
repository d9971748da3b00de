"""The one error type users see: a clear message, no traceback.

Every layer raises `AtlasError` (or a subclass) for problems in the user's
input or environment; the CLI prints its message and exits with code 2.
It lives here, at the bottom of the data flow, so that every layer can
raise it without importing a later one.
"""

from __future__ import annotations


class AtlasError(Exception):
    """A problem the user can fix; the message says what and where."""

    exit_code = 2


class ConfigError(AtlasError):
    """An experiment config, taxonomy or manifest file is invalid."""

    def __init__(self, file: object, key: str | None, problem: str):
        where = f"{file}" + (f": {key}" if key else "")
        super().__init__(f"{where}: {problem}")
        self.file = file
        self.key = key
        self.problem = problem
