"""Celeb-DF v2 in its published layout.

    Celeb-real/idX_NNNN.mp4
    YouTube-real/NNNNN.mp4        (some copies spell it Youtube-real)
    Celeb-synthesis/idX_idY_NNNN.mp4
    List_of_testing_videos.txt    lines "<label> <folder>/<file>.mp4", 1 = real, 0 = fake

Listed videos are the test split; everything else is train, with a
validation split carved from it by identity: a deterministic share
(`val_fraction`, default 0.1) of the identities, ordered by a hash of their
names, celebrities and YouTube videos carved separately. A video's identity
is its celebrity (a fake's is its target, the person whose video was
swapped; `source_ids = (target, source)`); a YouTube-real video is its own
identity. Folder names are matched case-insensitively (the test list and the
disk may spell YouTube differently).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path, PurePosixPath

from ..errors import ConfigError
from ..records import REAL, VideoRecord
from ..taxonomy import Taxonomy
from . import register
from .base import Problem, ScanResult
from .layout import list_videos, no_videos_error, posix_rel, read_text_file, report_many, require_root

METHOD = "Celeb-synthesis"
TEST_LIST = "List_of_testing_videos.txt"
# lower-case folder -> (is_fake, name pattern)
FOLDERS = {
    "celeb-real": (False, re.compile(r"^(id\d+)_(\d+)$")),
    "youtube-real": (False, re.compile(r"^(\d+)$")),
    "celeb-synthesis": (True, re.compile(r"^(id\d+)_(id\d+)_(\d+)$")),
}
RULES = {"celeb-real": "idX_NNNN", "youtube-real": "NNNNN", "celeb-synthesis": "idX_idY_NNNN"}


def carve_val(identities, fraction: float) -> set[str]:
    """A deterministic share of `identities` for validation: order by SHA-256
    of the name, take round(fraction * n) (at least 1 and at most n-1 when
    there are two or more identities and fraction > 0)."""
    ordered = sorted(set(identities), key=lambda i: hashlib.sha256(i.encode("utf-8")).hexdigest())
    n = len(ordered)
    if fraction <= 0 or n < 2:
        return set()
    k = min(max(1, round(fraction * n)), n - 1)
    return set(ordered[:k])


def read_test_list(path: Path) -> list[tuple[bool, str, str, int, str]]:
    """(is_fake, folder in lower case, file name, line number, path as listed) per listed video."""
    out = []
    for line_no, line in enumerate(read_text_file(path, "test list").splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2 or parts[0] not in ("0", "1"):
            raise ConfigError(path, f"line {line_no}",
                              f"expected '<1 (real) or 0 (fake)> <folder>/<file>.mp4', got {line!r}")
        rel = PurePosixPath(parts[1].replace("\\", "/"))
        if len(rel.parts) < 2 or ".." in rel.parts or rel.is_absolute():
            raise ConfigError(path, f"line {line_no}", f"expected a <folder>/<file> path inside the database, got {parts[1]!r}")
        out.append((parts[0] == "0", rel.parts[0].lower(), rel.name, line_no, rel.as_posix()))
    return out


def video_identity(folder: str, m: re.Match) -> str:
    """A video's identity: its celebrity (a fake's target), or the YouTube video itself."""
    return f"youtube-{m.group(1)}" if folder == "youtube-real" else m.group(1)


def match_name(stem: str, is_fake: bool) -> tuple[str, re.Match] | None:
    """(folder in lower case, name match) of a video known only by its name and label (DeepfakeBench's
    Celeb-DF videos, whose folder is not kept): the rule its name follows."""
    for folder, (fake, pattern) in FOLDERS.items():
        m = pattern.match(stem)
        if fake == is_fake and m:
            return folder, m
    return None


def assign_splits(videos: dict, list_path: Path, fraction: float, problems: list[Problem], base: Path,
                  absent: str = "not on disk") -> dict:
    """The protocol: the split of every video of `videos` ((folder in lower case, file stem) -> (path,
    is_fake, name match)). Videos of the test list are test; the others train, with validation carved
    from their identities (`carve_val`, celebrities and YouTube videos apart). Problems: the list
    missing (no test split), listed videos `absent`, labels of the list contradicting the folders."""
    test: set = set()
    if not list_path.is_file():
        problems.append(Problem("missing_split_file", str(list_path),
                                "test list not found: no test split; every video goes to train/val"))
    else:
        missing, mismatched = [], []
        for listed_fake, folder, fname, line_no, listed in read_test_list(list_path):
            key = (folder, PurePosixPath(fname).stem)
            if key not in videos:
                missing.append((str(base / listed), f"line {line_no} of {list_path.name}: {absent}"))
                continue
            test.add(key)
            if videos[key][1] != listed_fake:
                mismatched.append((str(videos[key][0]),
                                   f"line {line_no} labels it {'fake' if listed_fake else 'real'} (0/1) but its "
                                   f"folder says {'fake' if videos[key][1] else 'real'}; the folder is kept"))
        report_many(problems, "missing_video", missing, str(list_path), f"videos of the test list are {absent}")
        report_many(problems, "label_mismatch", mismatched, str(list_path), "test-list labels contradict the folders")
    train_ids = {video_identity(k[0], v[2]) for k, v in videos.items() if k not in test}
    val_ids = (carve_val([i for i in train_ids if not i.startswith("youtube-")], fraction)
               | carve_val([i for i in train_ids if i.startswith("youtube-")], fraction))
    return {k: "test" if k in test else ("val" if video_identity(k[0], v[2]) in val_ids else "train")
            for k, v in videos.items()}


def check_fraction(fraction, name: str) -> float:
    if not 0 <= fraction < 1:
        raise ConfigError(f"[sources.{name}]", "val_fraction", f"must be in [0, 1), got {fraction!r}")
    return fraction


class CelebDFAdapter:
    name = "celebdf"
    description = ("Celeb-DF v2: Celeb-real, YouTube-real, Celeb-synthesis; List_of_testing_videos.txt is the "
                   "test split, identity-disjoint val carved from the rest")
    options = {"test_list": "path", "val_fraction": "float"}

    def scan(self, root: Path, *, name: str, options: dict, taxonomy: Taxonomy) -> ScanResult:
        root = require_root(root, name)
        fraction = check_fraction(options.get("val_fraction", 0.1), name)
        result = ScanResult(name, root)
        problems = result.problems
        dbs = (name, self.name)

        # every video under the root, sorted into the three folders
        videos: dict[tuple[str, str], tuple[Path, bool, re.Match]] = {}
        unmatched = []
        all_videos = list_videos(root, problems)
        for p in all_videos:
            rel = Path(p).relative_to(root).parts
            folder = rel[0].lower() if len(rel) > 1 else ""
            if folder not in FOLDERS:
                unmatched.append((str(p), "not in Celeb-real/, YouTube-real/ or Celeb-synthesis/"))
                continue
            is_fake, pattern = FOLDERS[folder]
            m = pattern.match(p.stem)
            if not m:
                unmatched.append((str(p), f"not named {RULES[folder]}{p.suffix} as {rel[0]}/ files are"))
                continue
            key = (folder, p.stem)
            if key in videos:
                problems.append(Problem("duplicate", str(p), f"{rel[0]}/{p.stem} found twice; kept {videos[key][0]}"))
                continue
            videos[key] = (p, is_fake, m)
        report_many(problems, "unmatched_file", unmatched, str(root), "files match no Celeb-DF rule")
        if not all_videos:
            raise no_videos_error(root, name, ["Celeb-real/", "YouTube-real/", "Celeb-synthesis/"])
        present = {k[0] for k in videos} | {Path(p).relative_to(root).parts[0].lower() for p in all_videos
                                             if len(Path(p).relative_to(root).parts) > 1}
        for folder in FOLDERS:
            if folder not in present:
                spelled = {"celeb-real": "Celeb-real", "youtube-real": "YouTube-real",
                           "celeb-synthesis": "Celeb-synthesis"}[folder]
                problems.append(Problem("missing_folder", str(root / spelled), f"no {spelled}/ folder with videos"))

        splits = assign_splits(videos, Path(options.get("test_list") or root / TEST_LIST), fraction, problems, root)
        for key in sorted(videos, key=lambda k: posix_rel(videos[k][0], root)):
            p, is_fake, m = videos[key]
            ident = video_identity(key[0], m)
            if is_fake:
                rec = VideoRecord(name, splits[key], p, posix_rel(p, root), taxonomy.class_for(dbs, METHOD, True),
                                  True, identity=ident, method=METHOD, source_ids=(m.group(1), m.group(2)))
            else:
                rec = VideoRecord(name, splits[key], p, posix_rel(p, root), taxonomy.class_for(dbs, REAL, False),
                                  False, identity=ident, method=REAL)
            result.records.append(rec)
        return result


register(CelebDFAdapter())
