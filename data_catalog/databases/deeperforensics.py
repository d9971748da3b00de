"""DeeperForensics-1.0 in its published layout.

    manipulated_videos/<variant>/<target3>_<actor>.mp4   e.g. end_to_end/000_M101.mp4
    lists/splits/{train,val,test}.txt                      fake file names (703/96/201)

Splits (option `split_protocol`):

- `ff_target` (default, the paper's protocol — its Table 1 counts 280 test
  fakes = 140 FF++ test targets x two types, and 140 reals): a fake takes the
  **FF++ split of its target video** (from FF++'s `splits/*.json`, option
  `ff_splits_dir`, default `<ff_root>/splits`), like HifiFace, so DF, HifiFace
  and FF++ agree by construction and no FF++ content crosses splits;
- `deeperforensics`: DF's own lists (`lists/splits/{train,val,test}.txt`),
  grouped by source actor and independent of the FF++ pair splits — about 29 %
  of FF++'s training originals would move to val/test while their FF++ fakes
  stay in training; `catalog show` reports the leakage. Without an FF++ root
  (or its split files) the scan falls back to these lists with a warning.

Every variant of a face swap shares its file name, so a listed name puts all
its variants in that split. The method of a fake is its variant; variants
that no taxonomy class covers (`end_to_end_level_3`, ...) are `unseen-fake`
with the variant still recorded as method (option `variants` restricts the
scan to some). The real videos are *not* `source_videos/`: they are the
FaceForensics++ YouTube videos the fakes were made from, the one whose number
is the fake's first three digits (option `ff_root`, at `ff_compression`).
A real takes its fakes' split (under `deeperforensics` lists they can
disagree: reported and resolved towards test); it is the same file FF++
itself lists, so the catalog keeps it once across databases.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from ..records import REAL, SPLITS, VideoRecord
from ..taxonomy import Taxonomy
from . import register
from .base import Problem, ScanResult
from .faceforensics import originals_folder, read_pair_splits
from .layout import (COMPRESSIONS, list_videos, no_videos_error, parse_list, posix_rel, read_text_file,
                     relpath_for, report_many, require_root, towards_test)

FAKE = re.compile(r"^(\d{3})_([A-Za-z]+\d+)$")
PROTOCOLS = ("ff_target", "deeperforensics")


def _listed_stem(entry: str) -> str:
    """'000_M101.mp4', '000_M101' or 'end_to_end/000_M101.mp4' -> '000_M101'."""
    name = entry.replace("\\", "/").rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0] if "." in name else name


class DeeperForensicsAdapter:
    name = "deeperforensics"
    id_namespace = "ffpp"  # identities and source ids are FF++ video numbers, shared with FF++'s other adapters
    description = ("DeeperForensics-1.0: manipulated_videos/<variant>/<target>_<actor>.mp4, lists/splits/*.txt; "
                   "reals are the FF++ target videos (option ff_root)")
    options = {"ff_root": "path", "ff_compression": COMPRESSIONS, "variants": "str", "splits_dir": "path",
               "split_protocol": PROTOCOLS, "ff_splits_dir": "path"}

    def scan(self, root: Path, *, name: str, options: dict, taxonomy: Taxonomy) -> ScanResult:
        root = require_root(root, name)
        result = ScanResult(name, root)
        problems = result.problems
        dbs = (name, self.name)
        wanted = parse_list(options.get("variants"))

        ff_root = options.get("ff_root")
        ff_splits = options.get("ff_splits_dir") or (Path(ff_root) / "splits" if ff_root else None)
        split_of, target_split = fake_splits(options.get("split_protocol") or "ff_target", ff_splits,
                                             Path(options.get("splits_dir") or root / "lists" / "splits"),
                                             problems, root)

        # fakes
        manip = root / "manipulated_videos"
        if not manip.is_dir():
            raise no_videos_error(root, name, ["manipulated_videos/<variant>/"])
        variants = sorted(d.name for d in manip.iterdir() if d.is_dir())
        for v in wanted:
            if v not in variants:
                problems.append(Problem("missing_folder", str(manip / v), f"variant {v!r} asked for but not on disk"))
        n_files = 0
        real_claims: dict[str, set[str]] = defaultdict(set)
        for variant in variants:
            if wanted and variant not in wanted:
                continue
            folder = manip / variant
            cls = taxonomy.class_for(dbs, variant, True)
            found: set[str] = set()
            unmatched, unsplit = [], []
            for p in list_videos(folder, problems):
                n_files += 1
                m = FAKE.match(p.stem)
                if not m:
                    unmatched.append((str(p), "not named <target3>_<actor>.mp4 (e.g. 000_M101.mp4)"))
                    continue
                if p.stem in found:
                    problems.append(Problem("duplicate", str(p), f"{variant}/{p.stem} found twice; kept the first"))
                    continue
                found.add(p.stem)
                target, actor = m.groups()
                split = target_split.get(target) if target_split is not None else split_of.get(p.stem)
                if split is None:
                    where = (f"its target {target} is in no FF++ split pair" if target_split is not None
                             else f"{p.stem} is in no split list")
                    unsplit.append((str(p), f"{where}; left out"))
                    continue
                real_claims[target].add(split)
                result.records.append(VideoRecord(name, split, p, posix_rel(p, root), cls, True, identity=target,
                                                  method=variant, source_ids=(target, actor)))
            report_many(problems, "unmatched_file", unmatched, str(folder), "files match no DeeperForensics rule")
            report_many(problems, "not_in_split", unsplit, str(folder), "fakes are in no split list; left out")
            if target_split is None:
                missing = [(str(folder / f"{s}.mp4"), f"{s} is listed in {split_of[s]}.txt but not in {variant}/")
                           for s in sorted(split_of) if s not in found]
                report_many(problems, "missing_video", missing, str(folder), f"listed fakes are not in {variant}/")
        if n_files == 0:
            raise no_videos_error(root, name, ["manipulated_videos/<variant>/"])

        # reals: the FF++ target videos
        if not ff_root:
            problems.append(Problem("no_reals", str(root), "option ff_root not set: DeeperForensics' real videos are the "
                                                           "FF++ YouTube targets, so this scan has no reals"))
            return result
        comp = options.get("ff_compression", "c23")
        folder = originals_folder(Path(ff_root), comp)
        if not folder.is_dir():
            problems.append(Problem("missing_folder", str(folder), "FF++ original videos (the DeeperForensics reals) not found"))
            return result
        missing = []
        for target in sorted(real_claims):
            p = folder / f"{target}.mp4"
            if not p.is_file():
                missing.append((str(p), f"FF++ original {target} (target of DeeperForensics fakes) is not on disk"))
                continue
            claims = real_claims[target]
            split = towards_test(claims)
            if len(claims) > 1:
                ordered = sorted(claims, key=SPLITS.index)
                problems.append(Problem("split_conflict", str(p), f"real {target} is the target of fakes in "
                                                                  f"{' and '.join(ordered)}; resolved towards {split}"))
            result.records.append(VideoRecord(name, split, p, relpath_for(p, root, "ff_root", Path(ff_root)),
                                              taxonomy.class_for(dbs, REAL, False), False, identity=target, method=REAL))
        report_many(problems, "missing_video", missing, str(folder), "FF++ targets of DeeperForensics fakes are not on disk")
        return result


def fake_splits(protocol: str, ff_splits: Path | None, lists_dir: Path, problems: list,
                where: Path) -> tuple[dict[str, str], dict[str, str] | None]:
    """The protocol's splits of DeeperForensics fakes: (split by fake file stem from DF's own lists, split by
    FF++ target video or None). Under `ff_target` (with FF++'s pair split files in `ff_splits`) the second
    is used and DF's lists are not read; otherwise (or without those files, with a warning at `where`)
    the first, from `lists_dir/{train,val,test}.txt`."""
    if protocol == "ff_target":
        if ff_splits is not None and all((Path(ff_splits) / f"{s}.json").is_file() for s in SPLITS):
            return {}, dict(read_pair_splits(Path(ff_splits), problems).videos)
        needed = f"FF++ split files in {ff_splits}" if ff_splits else "option ff_root (FF++, with splits/*.json)"
        problems.append(Problem("leakage_warning", str(where),
                                f"split_protocol ff_target needs {needed}; falling back to DeeperForensics' own "
                                "actor-grouped lists, which put FF++ content of one person in several splits"))
    else:
        problems.append(Problem("leakage_warning", str(where),
                                "split_protocol deeperforensics: DF's own actor-grouped lists are independent "
                                "of the FF++ pair splits; FF++ originals of training fakes can be val/test reals"))
    split_of: dict[str, str] = {}
    for split in SPLITS:
        f = lists_dir / f"{split}.txt"
        if not f.is_file():
            problems.append(Problem("missing_split_file", str(f),
                                    f"DeeperForensics split list {split}.txt not found; its videos are left out"))
            continue
        for line in read_text_file(f, "split list").splitlines():
            entry = line.strip()
            if not entry or entry.startswith("#"):
                continue
            stem = _listed_stem(entry)
            prev = split_of.get(stem)
            if prev and prev != split:
                problems.append(Problem("split_conflict", stem, f"{stem} is listed in {prev}.txt and {split}.txt; "
                                                                f"kept in {towards_test((prev, split))}"))
            split_of[stem] = towards_test((prev, split)) if prev else split
    return split_of, None


register(DeeperForensicsAdapter())
