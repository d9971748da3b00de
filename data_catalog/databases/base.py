"""What every adapter returns."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ..names import path_to_text, printable
from ..records import VideoRecord
from ..taxonomy import Taxonomy

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")
# Still images a video can be made of (a frame folder, DeepfakeBench frames, one image given alone):
# read one file at a time by an image reader (`engine.faces.frames`), never by the video decoder.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
# Image files that are reported, not read, with the reason (docs/ARCHITECTURE.md "What the decoder opens").
REFUSED_IMAGES = {".gif": "a GIF: not read (GIF keeps at most 256 colours per frame, unlike the video frames "
                          "detectors learn from; give the original video, or its frames as PNG or JPEG)"}


@dataclass(frozen=True)
class Problem:
    kind: str      # missing_split_file / missing_video / unmatched_file / ...
    path: str      # as the file system names it (see data_catalog.names)
    message: str

    def to_json(self) -> dict:
        """Valid UTF-8 on one line: the path as stored text, the message printable."""
        return {"kind": self.kind, "path": path_to_text(self.path), "message": printable(self.message)}


@dataclass
class ScanResult:
    database: str
    root: Path
    records: list[VideoRecord] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def counts(self) -> dict[str, dict[str, int]]:
        """{split: {class: n}} with splits and classes in sorted order."""
        c = Counter((r.split, r.true_class or "unlabelled") for r in self.records)
        out: dict[str, dict[str, int]] = {}
        for (split, cls), n in sorted(c.items()):
            out.setdefault(split, {})[cls] = n
        return out

    def to_json(self) -> dict:
        return {
            "database": self.database,
            "counts": self.counts(),
            "problems": [p.to_json() for p in self.problems],
        }


class Adapter(Protocol):
    name: str
    description: str
    options: dict
    # Where the identity and source ids of its records live: adapters whose ids are another database's
    # (FF++ video numbers in HifiFace and DeeperForensics) share a namespace; without one, ids are the
    # database's own (`engine.catalog.leakage` compares ids within a namespace).
    id_namespace: str | None

    def scan(self, root: Path, *, name: str, options: dict, taxonomy: Taxonomy) -> ScanResult: ...
