"""Google/Jigsaw DeepFakeDetection (DFD), shipped inside FaceForensics++.

    original_sequences/actors/{raw,c23,c40}/videos/NN__<scene>.mp4
    manipulated_sequences/DeepFakeDetection/{raw,c23,c40}/videos/NN_MM__<scene>__<HASH>.mp4

No official split: the whole database is a cross-database test set, so every
video is split "test". Its fakes' method ("DeepFakeDetection") is in no
taxonomy class, so they are `unseen-fake`.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..records import REAL, VideoRecord
from ..taxonomy import Taxonomy
from . import register
from .base import ScanResult
from .layout import COMPRESSIONS, list_videos, no_videos_error, posix_rel, report_many, require_root
from .base import Problem

METHOD = "DeepFakeDetection"
ACTOR = re.compile(r"^(\d+)__(.+)$")
FAKE = re.compile(r"^(\d+)_(\d+)__(.+)__([A-Za-z0-9]+)$")


class GoogleDFDAdapter:
    name = "google_dfd"
    description = ("Google/Jigsaw DFD inside an FF++ tree: original_sequences/actors and "
                   "manipulated_sequences/DeepFakeDetection; all videos split test")
    options = {"compression": COMPRESSIONS}

    def scan(self, root: Path, *, name: str, options: dict, taxonomy: Taxonomy) -> ScanResult:
        root = require_root(root, name)
        comp = options.get("compression", "c23")
        result = ScanResult(name, root)
        dbs = (name, self.name)
        n_files = 0
        folders = (
            (root / "original_sequences" / "actors" / comp / "videos", False),
            (root / "manipulated_sequences" / METHOD / comp / "videos", True),
        )
        for folder, is_fake in folders:
            if not folder.is_dir():
                result.problems.append(Problem("missing_folder", str(folder),
                                               f"no DFD {'fake' if is_fake else 'actor'} videos at compression {comp}"))
                continue
            unmatched = []
            for p in list_videos(folder, result.problems):
                n_files += 1
                m = (FAKE if is_fake else ACTOR).match(p.stem)
                if not m:
                    rule = "NN_MM__<scene>__<HASH>" if is_fake else "NN__<scene>"
                    unmatched.append((str(p), f"not named {rule}{p.suffix}"))
                    continue
                if is_fake:
                    target, source = m.group(1), m.group(2)
                    rec = VideoRecord(name, "test", p, posix_rel(p, root), taxonomy.class_for(dbs, METHOD, True), True,
                                      identity=target, method=METHOD, source_ids=(target, source))
                else:
                    rec = VideoRecord(name, "test", p, posix_rel(p, root), taxonomy.class_for(dbs, REAL, False), False,
                                      identity=m.group(1), method=REAL)
                result.records.append(rec)
            report_many(result.problems, "unmatched_file", unmatched, str(folder), "files match no DFD naming rule")
        if n_files == 0:
            raise no_videos_error(root, name, [posix_rel(f, root) for f, _ in folders])
        return result


register(GoogleDFDAdapter())
