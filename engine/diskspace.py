"""A full disk as one clear error: which file, how much space it needed, how much is free.

Every file the pipeline writes (crops, checkpoints, run.json, the training crop
cache, the store's commits) goes through a temp file and a rename, or a
DuckDB transaction; when the disk fills up part-way the temp file is removed
here, so a full disk is not kept full by the attempt, and the caller marks its
run or job `failed` — running the same command again resumes it.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
from pathlib import Path

from data_catalog.errors import AtlasError

FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_FULL_WORDS = ("No space left on device", "Disk quota exceeded")
_DUCKDB_FILE = re.compile(r'(?:file|File) "([^"]+)"')


class DiskFull(AtlasError):
    """A write failed because its disk (or quota) is full."""

    def __init__(self, message: str, path: Path | None = None, needed: int | None = None):
        super().__init__(message)
        self.path, self.needed = path, needed


def is_disk_full(exc: BaseException) -> bool:
    """An OSError with ENOSPC / EDQUOT, or a library's error that says so (DuckDB, torch)."""
    if isinstance(exc, DiskFull):
        return True
    if isinstance(exc, OSError) and exc.errno in FULL_ERRNOS:
        return True
    return any(w in str(exc) for w in _FULL_WORDS)


def _mb(n: int) -> str:
    if n >= 1e9:
        return f"{n / 1e9:.1f} GB"
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.0f} kB"


def free_bytes(path: Path) -> int | None:
    """Free bytes on the disk that holds `path` (its nearest existing parent)."""
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free
    except OSError:
        return None


def disk_full(path, needed: int | None, exc: BaseException | None = None) -> DiskFull:
    """The one-line error for a write of about `needed` bytes to `path` that found the disk full."""
    path = Path(path)
    if exc is not None and not isinstance(exc, OSError):  # DuckDB names the file it could not write
        m = _DUCKDB_FILE.search(str(exc))
        if m:
            path = Path(m.group(1))
    free = free_bytes(path)
    need = f"needs about {_mb(needed)}" if needed else "needs more space"
    have = f", {_mb(free)} free there" if free is not None else ""
    return DiskFull(f"disk full: cannot write {path} ({need}{have}); free some space on that disk and run the "
                    "same command again (finished work is kept, this step resumes)", path, needed)


def remove_quietly(*paths) -> None:
    for p in paths:
        try:
            os.unlink(p)
        except OSError:
            pass


def write_atomic(path: Path, data: bytes) -> None:
    """Write a file through a temp file and a rename: readers see the old file or the whole new one.
    On any failure the temp file is removed; a full disk is a `DiskFull` naming `path`."""
    path = Path(path)
    tmp = path.parent / f".tmp-{os.getpid()}-{secrets.token_hex(4)}{path.suffix}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "xb") as fh:  # the usual permissions (mkstemp's are owner-only)
            fh.write(data)
        os.replace(tmp, path)
    except BaseException as exc:
        remove_quietly(tmp)
        if is_disk_full(exc):
            raise disk_full(path, len(data)) from None
        raise


def reserve(path: Path) -> None:
    """Allocate the blocks of a (sparse) file about to be filled through a memory map, so that a full
    disk is a `DiskFull` now rather than a SIGBUS while the map is written; the file is removed then."""
    size = 0
    try:
        with open(path, "r+b") as fh:
            size = os.fstat(fh.fileno()).st_size
            os.posix_fallocate(fh.fileno(), 0, size)
    except OSError as exc:
        if is_disk_full(exc):
            remove_quietly(path)
            raise disk_full(path, size) from None
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):  # a file system without fallocate: go on
            raise
