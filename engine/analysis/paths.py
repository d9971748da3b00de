"""Identifiers and path safety of unknown sets: set names, file names, video signatures, allowed roots.

`resolve_under_roots` is the only door through which the dashboard (and a
`dfatlas analyze --allowed-root` job) reads a user-chosen folder (and
`engine.faces.decoder` checks each file again, with what FFmpeg may open);
`dashboard/uploads.py` uses `sanitize_filename` / `looks_like_video` / `looks_like_image` for uploads.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from data_catalog.databases.base import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from data_catalog.errors import AtlasError

UNKNOWN_DB = "unknown"   # the database of every analysed set
ROLE = "unknown"         # the `datasets.role` of an analysed set
_NAME_BAD = re.compile(r"[^a-z0-9_.-]+")


class AnalysisError(AtlasError):
    """An analysis that cannot run or finish; the message says why."""


def sanitize_name(name: str) -> str:
    """A set name safe for identifiers: lower-case letters, digits, '.', '_', '-'."""
    clean = _NAME_BAD.sub("-", str(name).strip().lower()).strip("-.")
    if not clean:
        raise AnalysisError(f"set name {name!r}: give a name with letters or digits (--name NAME)")
    return clean[:80]


def dataset_of(name: str) -> str:
    return f"{UNKNOWN_DB}/{sanitize_name(name)}"


def is_video_name(path: Path) -> bool:
    return path.name.lower().endswith(VIDEO_SUFFIXES)


# Leading bytes of the containers in VIDEO_SUFFIXES: an upload must start like a video.
_MAGIC = (
    (4, b"ftyp"),                 # mp4 / mov / m4v
    (0, b"RIFF"),                 # avi (RIFF....AVI )
    (0, b"\x1a\x45\xdf\xa3"),     # mkv / webm (EBML)
    (0, b"\x00\x00\x01\xba"),     # mpeg program stream
    (0, b"\x00\x00\x01\xb3"),     # mpeg video
    (0, b"\x30\x26\xb2\x75"),     # wmv / asf
    (0, b"FLV"),                  # flv
    (4, b"moov"), (4, b"mdat"), (4, b"free"), (4, b"wide"),  # old QuickTime
)


def looks_like_video(head: bytes, filename: str) -> bool:
    """True when `filename` has a video suffix and `head` (its first bytes) a video container's signature."""
    if not filename.lower().endswith(VIDEO_SUFFIXES):
        return False
    if head[:4] == b"RIFF" and head[8:12] != b"AVI ":
        return False
    return any(head[off:off + len(sig)] == sig for off, sig in _MAGIC)


# Leading bytes of the images in IMAGE_SUFFIXES: an uploaded frame must start like an image.
_IMAGE_MAGIC = ((0, b"\x89PNG\r\n\x1a\n"), (0, b"\xff\xd8\xff"), (0, b"BM"))


def looks_like_image(head: bytes, filename: str) -> bool:
    """True when `filename` has an image suffix (IMAGE_SUFFIXES) and `head` (its first bytes) an image's signature."""
    if not filename.lower().endswith(IMAGE_SUFFIXES):
        return False
    if head[:4] == b"RIFF":
        return head[8:12] == b"WEBP"
    return any(head[off:off + len(sig)] == sig for off, sig in _IMAGE_MAGIC)


def sanitize_filename(name: str) -> str:
    """A plain file name: no folders, no leading dots or dashes, only safe ASCII characters; the suffix kept.
    (An upload's original name, in any script, is kept beside it: `engine.analysis.custody`.)"""
    base = Path(str(name).replace("\\", "/")).name
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._-")
    if not re.search(r"[A-Za-z0-9]", stem):  # e.g. a name in another script: the original is kept beside it
        stem = "video"
    suffix = re.sub(r"[^A-Za-z0-9]+", "", suffix).lower()
    return (stem[:100] + ("." + suffix if suffix else ""))


def resolve_under_roots(path: str | Path, roots) -> Path:
    """`path` with symlinks resolved, if it lies inside one of `roots` (also resolved); else AnalysisError."""
    if not roots:
        raise AnalysisError("no folders are open to the dashboard: set [dashboard] allowed_roots in the config")
    from engine.faces.decoder import inside_roots  # the rule's one home; the decoder checks it again

    real = os.path.realpath(os.path.expanduser(str(path)))
    if inside_roots(real, roots):
        return Path(real)
    raise AnalysisError(f"{path} is outside the folders this dashboard may read ([dashboard] allowed_roots)")
