"""DeepfakeTIMIT: face swaps of VidTIMIT subjects (fakes only).

    {lower_quality,higher_quality}/<subject>/<utt>-video-<other>.avi

The reals are VidTIMIT videos of the same subjects, in a folder the user
points to (option `vidtimit_root`): every video below
`<vidtimit_root>/<subject>/` for the subjects DeepfakeTIMIT has. The whole
database is a cross-database test set (split "test"); its fakes' methods
(`DeepfakeTIMIT-LQ`, `DeepfakeTIMIT-HQ`) are in no taxonomy class, so they are
`unseen-fake`.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..records import REAL, VideoRecord
from ..taxonomy import Taxonomy
from . import register
from .base import Problem, ScanResult
from .layout import list_videos, no_videos_error, posix_rel, relpath_for, report_many, require_root

QUALITIES = {"lower_quality": "DeepfakeTIMIT-LQ", "higher_quality": "DeepfakeTIMIT-HQ"}
FAKE = re.compile(r"^(.+)-video-(.+)$")


class DeepfakeTIMITAdapter:
    name = "deepfaketimit"
    description = ("DeepfakeTIMIT: {lower,higher}_quality/<subject>/<utt>-video-<other>.avi fakes; reals from "
                   "VidTIMIT (option vidtimit_root); all videos split test")
    options = {"vidtimit_root": "path"}

    def scan(self, root: Path, *, name: str, options: dict, taxonomy: Taxonomy) -> ScanResult:
        root = require_root(root, name)
        result = ScanResult(name, root)
        problems = result.problems
        dbs = (name, self.name)
        all_videos = list_videos(root, problems)
        if not all_videos:
            raise no_videos_error(root, name, ["lower_quality/<subject>/", "higher_quality/<subject>/"])
        subjects: set[str] = set()
        unmatched = []
        for quality in QUALITIES:
            if not (root / quality).is_dir():
                problems.append(Problem("missing_folder", str(root / quality), f"no {quality}/ folder"))
        for p in all_videos:
            rel = p.relative_to(root).parts
            method = QUALITIES.get(rel[0]) if len(rel) == 3 else None
            m = FAKE.match(p.stem) if method else None
            if not m:
                unmatched.append((str(p), "not at {lower,higher}_quality/<subject>/<utt>-video-<other>.avi"))
                continue
            subject = rel[1]
            subjects.add(subject)
            result.records.append(VideoRecord(name, "test", p, posix_rel(p, root), taxonomy.class_for(dbs, method, True),
                                              True, identity=subject, method=method, source_ids=(subject, m.group(2))))
        report_many(problems, "unmatched_file", unmatched, str(root), "files match no DeepfakeTIMIT rule")

        vid_root = options.get("vidtimit_root")
        if not vid_root:
            problems.append(Problem("no_reals", str(root), "option vidtimit_root not set: DeepfakeTIMIT has no real "
                                                           "videos of its own, so this scan has no reals"))
            return result
        vid_root = Path(vid_root)
        if not vid_root.is_dir():
            problems.append(Problem("missing_folder", str(vid_root), "vidtimit_root does not exist; no reals"))
            return result
        missing = []
        for subject in sorted(subjects):
            folder = vid_root / subject
            if not folder.is_dir():
                missing.append((str(folder), f"no VidTIMIT folder for subject {subject}"))
                continue
            reals = list_videos(folder, problems)
            if not reals:
                problems.append(Problem("no_videos", str(folder), "no video files (VidTIMIT ships JPEG frame folders: "
                                                                  "convert each utterance to a video first)"))
            for p in reals:
                result.records.append(VideoRecord(name, "test", p, relpath_for(p, root, "vidtimit_root", vid_root),
                                                  taxonomy.class_for(dbs, REAL, False), False,
                                                  identity=subject, method=REAL))
        report_many(problems, "missing_folder", missing, str(vid_root), "subjects have no VidTIMIT folder")
        return result


register(DeepfakeTIMITAdapter())
