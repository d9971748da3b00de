"""Helpers the database adapters share: roots, video listing, split order,
option parsing, and problem reporting that stays readable at scale."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Iterable

from ..errors import AtlasError, ConfigError
from ..records import SPLITS
from .base import VIDEO_SUFFIXES, Problem

# "Resolved towards test": when two claims disagree, the later split wins.
SPLIT_RANK = {"train": 0, "val": 1, "test": 2}
COMPRESSIONS = ("raw", "c23", "c40")
# Above this many problems of one kind in one folder, report one summary line.
MANY = 10


def towards_test(splits: Iterable[str]) -> str:
    """The most test-like of `splits` (train < val < test; unknown names rank last)."""
    return max(splits, key=lambda s: SPLIT_RANK.get(s, 3))


def require_root(root: Path | str, name: str) -> Path:
    """The database root as a Path; a one-line error if it is not a folder."""
    root = Path(root).expanduser()
    if not root.exists():
        raise AtlasError(f"{root}: database root of {name!r} does not exist")
    if not root.is_dir():
        raise AtlasError(f"{root}: database root of {name!r} is not a folder")
    return root


def is_video(name: str) -> bool:
    return name.lower().endswith(VIDEO_SUFFIXES)


def list_videos(folder: Path, problems: list[Problem] | None = None) -> list[Path]:
    """Every video file below `folder` (sorted; symlinked folders followed, loops skipped)."""
    from .generic import walk_videos

    return walk_videos(folder, problems)


def posix_rel(path: Path, root: Path) -> str:
    """`path` relative to `root`, POSIX-style (the lexical path: symlinks are kept as named)."""
    p, r = os.fspath(path), os.fspath(root).rstrip(os.sep)
    if p.startswith(r + os.sep) and os.sep + ".." + os.sep not in p:  # the common case, cheaply
        rel = p[len(r) + 1:]
        return rel if os.sep == "/" else rel.replace(os.sep, "/")
    return PurePosixPath(*Path(os.path.relpath(path, root)).parts).as_posix()


def relpath_for(path: Path, root: Path, tag: str = "", tag_root: Path | None = None) -> str:
    """A video's identifier inside its database.

    Files under the database root use the path relative to it. Files that the
    database borrows from another folder (DeeperForensics and HifiFace reals
    from FF++, DeepfakeTIMIT reals from VidTIMIT) get `@<tag>/<path relative
    to that folder>`, so their ids stay stable whatever the folders' absolute
    locations are.
    """
    rel = os.path.relpath(path, root)
    if not rel.startswith(os.pardir) and not os.path.isabs(rel):
        return posix_rel(path, root)
    if tag and tag_root is not None:
        return f"@{tag}/{posix_rel(path, tag_root)}"
    return Path(os.path.abspath(path)).as_posix()


def parse_list(value) -> tuple[str, ...]:
    """A comma-separated option (or a TOML list) as a tuple of stripped names."""
    if value is None or value == "":
        return ()
    if isinstance(value, (list, tuple)):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return tuple(v.strip() for v in str(value).split(",") if v.strip())


def read_text_file(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(path, None, f"{what} not found") from None
    except IsADirectoryError:
        raise ConfigError(path, None, f"{what} is a folder, expected a text file") from None
    except UnicodeDecodeError:
        raise ConfigError(path, None, f"{what} is not a UTF-8 text file") from None
    except OSError as exc:
        raise ConfigError(path, None, f"cannot read {what} ({exc.strerror or exc})") from None


def report_many(problems: list[Problem], kind: str, items: list[tuple[str, str]], folder: str, summary: str) -> None:
    """Append one problem per (path, message) item, or, above MANY items, one
    summary naming the folder, the count and the first few paths."""
    if not items:
        return
    if len(items) <= MANY:
        problems.extend(Problem(kind, p, m) for p, m in items)
        return
    first = ", ".join(PurePosixPath(p).name for p, _ in items[:3])
    problems.append(Problem(kind, folder, f"{len(items)} {summary} (e.g. {first}, ...)"))


def no_videos_error(root: Path, name: str, looked_in: Iterable[str]) -> AtlasError:
    where = ", ".join(looked_in)
    return AtlasError(f"{root}: no videos found for database {name!r} (looked in {where})")


def check_split(value: str, where: str) -> str:
    if value not in SPLITS:
        raise ConfigError(where, None, f"unknown split {value!r} (expected {', '.join(SPLITS)})")
    return value
