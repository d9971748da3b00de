"""FaceForensics++ in its published layout.

    original_sequences/youtube/{raw,c23,c40}/videos/NNN.mp4
    manipulated_sequences/<method>/{raw,c23,c40}/videos/<target>_<source>.mp4
    splits/{train,val,test}.json      lists of ["a", "b"] pairs (360/70/70)

A pair's split holds both originals and both fakes `a_b` and `b_a`, of every
method. Originals are `method = "real"`; a fake's identity is its target
video and `source_ids = (target, source)`. The pair split reader is shared
with HifiFace and DeeperForensics, which borrow FF++ videos.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from ..records import REAL, SPLITS, VideoRecord
from ..taxonomy import Taxonomy
from . import register
from .base import Problem, ScanResult
from .layout import (COMPRESSIONS, list_videos, no_videos_error, parse_list, posix_rel, read_text_file,
                     report_many, require_root, towards_test)

METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter")
ORIGINAL = re.compile(r"^(\d{3})$")
PAIR = re.compile(r"^(\d{3})_(\d{3})$")
# Folders of manipulated_sequences that belong to another adapter.
OTHER_ADAPTERS = {"DeepFakeDetection": "google_dfd"}


def originals_folder(ff_root: Path, compression: str) -> Path:
    return Path(ff_root) / "original_sequences" / "youtube" / compression / "videos"


@dataclass
class PairSplits:
    """The official pair splits: pair -> split and original -> split."""

    pairs: dict[tuple[str, str], str] = field(default_factory=dict)   # sorted (a, b) -> split
    videos: dict[str, str] = field(default_factory=dict)              # "NNN" -> split
    files: list[Path] = field(default_factory=list)                   # split files read

    def of_pair(self, a: str, b: str) -> str | None:
        return self.pairs.get((a, b) if a <= b else (b, a))


def _video_number(x) -> str | None:
    if isinstance(x, bool):
        return None
    if isinstance(x, int) and x >= 0:
        return f"{x:03d}"
    if isinstance(x, str) and x.isdigit():
        return x
    return None


def read_pair_splits(splits_dir: Path, problems: list[Problem]) -> PairSplits:
    """Read `splits_dir/{train,val,test}.json`.

    A missing file is a problem (its pairs stay unassigned); a file that is
    not JSON, or not a list of pairs, is a fatal error naming the file. An
    original named in pairs of two splits is reported and resolved towards test.
    """
    out = PairSplits()
    claims: dict[str, set[str]] = defaultdict(set)
    for split in SPLITS:
        f = Path(splits_dir) / f"{split}.json"
        if not f.is_file():
            problems.append(Problem("missing_split_file", str(f),
                                    f"FF++ split file {split}.json not found; videos of its pairs are left out"))
            continue
        text = read_text_file(f, "split file")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f, None, f"not valid JSON ({exc})") from None
        if not isinstance(data, list):
            raise ConfigError(f, None, 'expected a JSON list of pairs like [["000", "003"], ...]')
        out.files.append(f)
        for i, pair in enumerate(data):
            nums = [_video_number(x) for x in pair] if isinstance(pair, list) else []
            if len(nums) != 2 or None in nums or nums[0] == nums[1]:
                raise ConfigError(f, f"item {i}", f'expected a pair of two video numbers like ["000", "003"], got {pair!r}')
            a, b = sorted(nums)
            prev = out.pairs.get((a, b))
            if prev is not None and prev != split:
                problems.append(Problem("split_conflict", f"{a}_{b}",
                                        f"pair [{a}, {b}] is listed in {prev}.json and {split}.json; kept in "
                                        f"{towards_test((prev, split))}"))
            out.pairs[(a, b)] = towards_test((prev, split)) if prev else split
            claims[a].add(split)
            claims[b].add(split)
    for v, splits in sorted(claims.items()):
        out.videos[v] = towards_test(splits)
        if len(splits) > 1:
            ordered = sorted(splits, key=SPLITS.index)
            problems.append(Problem("split_conflict", v, f"original {v} is in pairs of {' and '.join(ordered)}; "
                                                         f"resolved towards {out.videos[v]}"))
    return out


class FaceForensicsAdapter:
    name = "faceforensics"
    id_namespace = "ffpp"  # identities and source ids are FF++ video numbers, shared with FF++'s other adapters
    description = ("FaceForensics++: original_sequences/youtube and manipulated_sequences/<method> "
                   "at one compression, official pair splits splits/{train,val,test}.json")
    options = {"compression": COMPRESSIONS, "splits_dir": "path", "methods": "str"}

    def scan(self, root: Path, *, name: str, options: dict, taxonomy: Taxonomy) -> ScanResult:
        root = require_root(root, name)
        comp = options.get("compression", "c23")
        methods = parse_list(options.get("methods")) or METHODS
        splits_dir = Path(options.get("splits_dir") or root / "splits")
        result = ScanResult(name, root)
        problems = result.problems
        ps = read_pair_splits(splits_dir, problems)
        dbs = (name, self.name)
        n_files = 0

        # originals
        folder = originals_folder(root, comp)
        originals: dict[str, Path] = {}
        if not folder.is_dir():
            problems.append(Problem("missing_folder", str(folder), f"no original videos at compression {comp}"))
        else:
            unmatched, unsplit = [], []
            for p in list_videos(folder, problems):
                n_files += 1
                if not ORIGINAL.match(p.stem):
                    unmatched.append((str(p), "not named NNN.mp4 (a three-digit FF++ video number)"))
                    continue
                if p.stem in originals:
                    problems.append(Problem("duplicate", str(p), f"video {p.stem} found twice; kept {originals[p.stem]}"))
                    continue
                originals[p.stem] = p
                split = ps.videos.get(p.stem)
                if split is None:
                    unsplit.append((str(p), f"original {p.stem} is in no pair of the split files; left out"))
                    continue
                result.records.append(VideoRecord(name, split, p, posix_rel(p, root),
                                                  taxonomy.class_for(dbs, REAL, False), False,
                                                  identity=p.stem, method=REAL))
            report_many(problems, "unmatched_file", unmatched, str(folder), "files match no FF++ naming rule")
            report_many(problems, "not_in_split", unsplit, str(folder), "originals are in no pair of the split files; left out")
            missing = [(str(folder / f"{v}.mp4"), f"original {v} is named in {ps.videos[v]}.json but not on disk")
                       for v in sorted(ps.videos) if v not in originals]
            report_many(problems, "missing_video", missing, str(folder), "originals named in the split files are not on disk")

        # manipulated sequences
        manip = root / "manipulated_sequences"
        if manip.is_dir():
            for extra in sorted(d.name for d in manip.iterdir() if d.is_dir()):
                if extra not in methods and extra not in OTHER_ADAPTERS:
                    problems.append(Problem("unmatched_folder", str(manip / extra),
                                            f"method {extra!r} is not among the configured methods ({', '.join(methods)}); skipped"))
        for method in methods:
            folder = manip / method / comp / "videos"
            if not folder.is_dir():
                problems.append(Problem("missing_folder", str(folder), f"no {method} videos at compression {comp}"))
                continue
            cls = taxonomy.class_for(dbs, method, True)
            found: set[str] = set()
            unmatched, unsplit = [], []
            for p in list_videos(folder, problems):
                n_files += 1
                m = PAIR.match(p.stem)
                if not m:
                    unmatched.append((str(p), "not named <target>_<source>.mp4"))
                    continue
                if p.stem in found:
                    problems.append(Problem("duplicate", str(p), f"{method} fake {p.stem} found twice; kept the first"))
                    continue
                found.add(p.stem)
                target, source = m.groups()
                split = ps.of_pair(target, source)
                if split is None:
                    unsplit.append((str(p), f"pair [{target}, {source}] is in no split file; left out"))
                    continue
                result.records.append(VideoRecord(name, split, p, posix_rel(p, root), cls, True,
                                                  identity=target, method=method, source_ids=(target, source)))
            report_many(problems, "unmatched_file", unmatched, str(folder), "files match no FF++ naming rule")
            report_many(problems, "not_in_split", unsplit, str(folder), "fakes belong to no pair of the split files; left out")
            missing = []
            for (a, b), split in sorted(ps.pairs.items()):
                for t, s in ((a, b), (b, a)):
                    if f"{t}_{s}" not in found:
                        missing.append((str(folder / f"{t}_{s}.mp4"),
                                        f"{method} fake {t}_{s} of {split} pair [{a}, {b}] is not on disk"))
            report_many(problems, "missing_video", missing, str(folder), f"{method} fakes of split pairs are not on disk")
        if n_files == 0:
            raise no_videos_error(root, name, [posix_rel(originals_folder(root, comp), root),
                                               f"manipulated_sequences/<method>/{comp}/videos"])
        return result


register(FaceForensicsAdapter())
