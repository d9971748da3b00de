"""HifiFace: face swaps of FaceForensics++ videos, named like FF++ fakes.

    <target>_<source>.mp4     anywhere below the root (e.g. 000_003.mp4)

It follows the FF++ pair split: a fake takes the split of the pair
[target, source] in the FF++ `splits/{train,val,test}.json` (option
`splits_dir`, else `<ff_root>/splits`). HifiFace ships no real videos; with
`ff_root` the reals are the FF++ originals the fakes were made from (their
targets, at `ff_compression`), in their pair's split — the same files FF++
lists, which the catalog keeps once across databases.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import ConfigError
from ..records import REAL, VideoRecord
from ..taxonomy import Taxonomy
from . import register
from .base import Problem, ScanResult
from .faceforensics import originals_folder, read_pair_splits
from .layout import COMPRESSIONS, list_videos, no_videos_error, posix_rel, relpath_for, report_many, require_root

METHOD = "HifiFace"
PAIR = re.compile(r"^(\d{3})_(\d{3})$")


class HifiFaceAdapter:
    name = "hififace"
    id_namespace = "ffpp"  # identities and source ids are FF++ video numbers, shared with FF++'s other adapters
    description = "HifiFace: <target>_<source>.mp4 swaps of FF++ videos, FF++ pair splits; reals from FF++ (option ff_root)"
    options = {"ff_root": "path", "splits_dir": "path", "ff_compression": COMPRESSIONS}

    def scan(self, root: Path, *, name: str, options: dict, taxonomy: Taxonomy) -> ScanResult:
        root = require_root(root, name)
        ff_root = options.get("ff_root")
        splits_dir = options.get("splits_dir") or (Path(ff_root) / "splits" if ff_root else None)
        if splits_dir is None:
            raise ConfigError(f"[sources.{name}]", None,
                              "HifiFace follows the FF++ pair splits: set option ff_root (FF++ root) or splits_dir "
                              "(the folder with FF++ train/val/test.json)")
        result = ScanResult(name, root)
        problems = result.problems
        ps = read_pair_splits(Path(splits_dir), problems)
        dbs = (name, self.name)
        cls = taxonomy.class_for(dbs, METHOD, True)
        videos = list_videos(root, problems)
        if not videos:
            raise no_videos_error(root, name, ["<target>_<source>.mp4 below the root"])
        found: dict[str, Path] = {}
        targets: dict[str, str] = {}
        unmatched, unsplit = [], []
        for p in videos:
            m = PAIR.match(p.stem)
            if not m:
                unmatched.append((str(p), "not named <target>_<source>.mp4 (FF++ video numbers)"))
                continue
            if p.stem in found:
                problems.append(Problem("duplicate", str(p), f"HifiFace fake {p.stem} found twice; kept {found[p.stem]}"))
                continue
            found[p.stem] = p
            target, source = m.groups()
            split = ps.of_pair(target, source)
            if split is None:
                unsplit.append((str(p), f"pair [{target}, {source}] is in no FF++ split file; left out"))
                continue
            targets.setdefault(target, ps.videos.get(target, split))
            result.records.append(VideoRecord(name, split, p, posix_rel(p, root), cls, True, identity=target,
                                              method=METHOD, source_ids=(target, source)))
        report_many(problems, "unmatched_file", unmatched, str(root), "files match no HifiFace naming rule")
        report_many(problems, "not_in_split", unsplit, str(root), "fakes belong to no FF++ split pair; left out")
        if ps.pairs:
            missing = [(str(root / f"{t}_{s}.mp4"), f"fake {t}_{s} of {split} pair [{a}, {b}] is not on disk")
                       for (a, b), split in sorted(ps.pairs.items()) for t, s in ((a, b), (b, a))
                       if f"{t}_{s}" not in found]
            report_many(problems, "missing_video", missing, str(root), "HifiFace fakes of FF++ split pairs are not on disk")

        if not ff_root:
            problems.append(Problem("no_reals", str(root), "option ff_root not set: HifiFace's reals are the FF++ "
                                                           "originals, so this scan has no reals"))
            return result
        folder = originals_folder(Path(ff_root), options.get("ff_compression", "c23"))
        if not folder.is_dir():
            problems.append(Problem("missing_folder", str(folder), "FF++ original videos (the HifiFace reals) not found"))
            return result
        missing = []
        for target, split in sorted(targets.items()):
            p = folder / f"{target}.mp4"
            if not p.is_file():
                missing.append((str(p), f"FF++ original {target} (target of HifiFace fakes) is not on disk"))
                continue
            result.records.append(VideoRecord(name, split, p, relpath_for(p, root, "ff_root", Path(ff_root)),
                                              taxonomy.class_for(dbs, REAL, False), False, identity=target, method=REAL))
        report_many(problems, "missing_video", missing, str(folder), "FF++ targets of HifiFace fakes are not on disk")
        return result


register(HifiFaceAdapter())
