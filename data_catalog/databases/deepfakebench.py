"""DeepfakeBench's preprocessed data: face-crop frames listed in its dataset JSON files.

    <root>/FaceForensics++/manipulated_sequences/Deepfakes/c23/frames/000_003/000.png ...
    dataset JSON: {dataset: {label: {split: {[compression]: {video: {"label", "frames"[, "masks"]}}}}}}

(As SCLBD/DeepfakeBench's `preprocessing/rearrange.py` writes them: one JSON per FF++ method — `FF-DF.json`
holds the `FF-DF` fakes and the `FF-real` reals —, one per other database; the compression level
raw/c23/c40 exists for the FF++ family only, option `compression` picks one.) The frame paths are
ABSOLUTE paths of the machine that made the JSON: `path_prefix_from` / `path_prefix_to` (default: the
root) rewrite their leading folder; a relative path is taken relative to the root; a frame that is not
under the root after the rewrite is refused. A video's id is its frame folder relative to the root.

Taken from the JSON: each video's frames (in natural name order: DeepfakeBench lists them in directory
order) and its label. NOT taken: its splits. DeepfakeBench lists Celeb-DF's test videos under val too, and
several databases' videos (DFD's, DeeperForensics' reals) in all three splits, which would set θ on test
data. Each video takes the split of THIS project's protocol for its database, the rules of the
`faceforensics` (official pair splits), `celebdf` (test list, identity-carved val), `deeperforensics`
(a fake takes its FF++ target's split) and `google_dfd` (all test) adapters; databases without a protocol
here are test sets as a whole. A video listed in several splits, or in another split than the protocol's,
is reported (`several_splits`, `split_differs`) and used once, in the protocol's split.

Labels map to this project's databases and methods (`LABELS`, the table in README "Using real deepfake
databases"); the taxonomy then gives the class as for that database's own adapter (`FF-DF` is
`faceforensics:Deepfakes`, so `ff-deepfakes`). DeepfakeBench's frames are dlib-aligned face crops:
records say so (`face_crops`), and face extraction takes them as crops (`[faces] pre_cropped`).
"""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..errors import ConfigError
from ..names import natural_key
from ..records import REAL, SPLITS, VideoRecord
from ..taxonomy import Taxonomy
from . import register
from .base import Problem, ScanResult
from .celebdf import assign_splits, check_fraction, match_name, video_identity
from .deeperforensics import FAKE as DF_FAKE, PROTOCOLS as DF_PROTOCOLS, fake_splits
from .faceforensics import ORIGINAL, PAIR, read_pair_splits
from .google_dfd import ACTOR as DFD_ACTOR, FAKE as DFD_FAKE
from .layout import COMPRESSIONS, parse_list, posix_rel, read_text_file, report_many, require_root


@dataclass(frozen=True)
class Label:
    """What a DeepfakeBench label is here: the database whose protocol splits it ('' = none: all test),
    the method (a taxonomy source `<database>:<method>`; `real` for reals), and whether it is fake."""

    database: str
    method: str
    is_fake: bool


LABELS = {
    "FF-real": Label("faceforensics", REAL, False),
    "FF-DF": Label("faceforensics", "Deepfakes", True),
    "FF-F2F": Label("faceforensics", "Face2Face", True),
    "FF-FS": Label("faceforensics", "FaceSwap", True),
    "FF-NT": Label("faceforensics", "NeuralTextures", True),
    "FF-FH": Label("faceforensics", "FaceShifter", True),
    "FF-SH": Label("faceforensics", "FaceShifter", True),
    "CelebDFv2_real": Label("celebdf", REAL, False),
    "CelebDFv2_fake": Label("celebdf", "Celeb-synthesis", True),
    "DF_fake": Label("deeperforensics", "end_to_end", True),  # the variant its frame path names, if any
    "DFD_real": Label("google_dfd", REAL, False),
    "DFD_fake": Label("google_dfd", "DeepFakeDetection", True),
    # no protocol here: whole test sets, fakes unseen (a taxonomy source `deepfakebench:<label>` can name one)
    "CelebDFv1_real": Label("", REAL, False), "CelebDFv1_fake": Label("", "CelebDFv1_fake", True),
    "DFDCP_Real": Label("", REAL, False), "DFDCP_FakeA": Label("", "DFDCP_FakeA", True),
    "DFDCP_FakeB": Label("", "DFDCP_FakeB", True),
    "DFDC_Real": Label("", REAL, False), "DFDC_Fake": Label("", "DFDC_Fake", True),
    "UADFV_Real": Label("", REAL, False), "UADFV_Fake": Label("", "UADFV_Fake", True),
    "roop_Real": Label("", REAL, False), "roop_Fake": Label("", "roop_Fake", True),
}
NOT_USED = {"DF_real": "DeeperForensics' source-video actors: under this project's protocol its reals are the "
                       "FF++ targets of its fakes (label FF-real, from an FF++ JSON); not used"}


@dataclass
class Listed:
    """One video as the JSON files list it (merged over every listing)."""

    label: str
    name: str
    folder: Path
    frames: list[Path]
    where: str                                   # the first listing: "<file>: <label>/<split>"
    splits: set[str] = field(default_factory=set)


def _json_files(value, name: str) -> list[Path]:
    if not value:
        raise ConfigError(f"[sources.{name}]", "json", "the deepfakebench adapter needs option json: a "
                          "DeepfakeBench dataset JSON file (e.g. FF-DF.json) or the folder holding them")
    path = Path(value)
    if path.is_dir():
        files = sorted(path.glob("*.json"), key=lambda p: natural_key(p.name))
        if not files:
            raise ConfigError(path, None, "no *.json dataset files in this folder")
        return files
    if not path.is_file():
        raise ConfigError(path, None, "DeepfakeBench dataset JSON not found")
    return [path]


def _is_video(node) -> bool:
    return isinstance(node, dict) and isinstance(node.get("frames"), list)


def _entries(f: Path, comp: str, levels: set, bad: list):
    """(where, video, label, split, entry) of every video entry of one JSON file (the entry's own label, as
    DeepfakeBench's loader takes it), at compression `comp` where the file has
    levels (the ones seen are added to `levels`); what is not a video table goes to `bad`."""
    try:
        data = json.loads(read_text_file(f, "DeepfakeBench dataset JSON"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f, None, f"not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ConfigError(f, None, "expected {dataset: {label: {split: {[compression]: {video: {label, frames}}}}}} "
                                   "(a DeepfakeBench dataset JSON)")
    for dataset, labels in data.items():
        for label, by_split in labels.items():
            if not isinstance(by_split, dict):
                bad.append((f"{f.name}: {dataset}/{label}", "not a {split: videos} table; not used"))
                continue
            for split, node in by_split.items():
                at = f"{f.name}: {dataset}/{label}/{split}"
                if isinstance(node, dict) and node and not _is_video(node) and set(node) <= set(COMPRESSIONS):
                    levels |= set(node)
                    node = node.get(comp, {})
                if _is_video(node) or not isinstance(node, dict) or split not in SPLITS:
                    bad.append((at, "not a {video: {label, frames}} table of a train/val/test split; not used"))
                    continue
                for video, entry in node.items():
                    if not _is_video(entry) or not all(isinstance(x, str) for x in entry["frames"]):
                        bad.append((f"{at}/{video}", "not a {label, frames: [paths]} entry; not used"))
                    else:
                        yield f"{at}/{video}", str(video), str(entry.get("label") or label), split, entry


class DeepfakeBenchAdapter:
    name = "deepfakebench"
    id_namespace = "ffpp"  # FF++ videos keep FF++'s numbers as identities, as the faceforensics adapter's
    description = ("DeepfakeBench's preprocessed face crops: frames and labels from its dataset JSON (option json), "
                   "splits from this project's protocol per database; path_prefix_from/_to rewrite the JSON's paths")
    options = {"json": "path", "compression": COMPRESSIONS, "path_prefix_from": "str", "path_prefix_to": "path",
               "labels": "str", "ff_splits_dir": "path", "celebdf_test_list": "path", "val_fraction": "float",
               "df_split_protocol": DF_PROTOCOLS, "df_splits_dir": "path"}

    def scan(self, root: Path, *, name: str, options: dict, taxonomy: Taxonomy) -> ScanResult:
        root = require_root(root, name).absolute()
        files = _json_files(options.get("json"), name)
        result = ScanResult(name, root)
        problems = result.problems
        wanted = set(parse_list(options.get("labels")))
        videos = self._read(files, root, options, wanted, problems)
        if not videos:
            why = problems[0].message if problems else "they list no video"
            raise ConfigError(files[0] if len(files) == 1 else files[0].parent, None,
                              f"no usable video for database {name!r} in {len(files)} DeepfakeBench JSON file(s): {why}")
        splits = _Protocols(root, options, problems, name)
        by_db: dict[str, list[Listed]] = defaultdict(list)
        for v in videos.values():
            by_db[LABELS[v.label].database].append(v)
        differs, several = [], []
        for db, items in by_db.items():
            for v, split, extra in splits.assign(db, items):
                lab = LABELS[v.label]
                method = extra.pop("method", lab.method)
                cls = taxonomy.class_for((name, self.name, db) if db else (name, self.name), method, lab.is_fake)
                result.records.append(VideoRecord(name, split, v.folder, posix_rel(v.folder, root), cls, lab.is_fake,
                                                  method=method, frames=tuple(v.frames), face_crops=True, **extra))
                listed = sorted(v.splits, key=SPLITS.index)
                if len(listed) > 1:
                    several.append((str(v.folder), f"{v.where}: DeepfakeBench lists it in {', '.join(listed)}; "
                                                   f"used in {split} only (this project's protocol)"))
                elif listed and listed[0] != split:
                    differs.append((str(v.folder), f"{v.where}: DeepfakeBench lists it in {listed[0]}; this "
                                                   f"project's protocol puts it in {split}"))
        where = str(files[0].parent)
        report_many(problems, "several_splits", several, where, "videos are listed in several splits; each used "
                                                                "once, in this project's protocol's split")
        report_many(problems, "split_differs", differs, where, "videos are listed in another split than this "
                                                               "project's protocol's; the protocol's is used")
        result.records.sort(key=lambda r: natural_key(r.relpath))
        return result

    # --- reading the JSON -----------------------------------------------------------------------
    def _read(self, files: list[Path], root: Path, options: dict, wanted: set, problems: list) -> dict:
        comp = options.get("compression", "c23")
        rewrite = _Rewrite(options.get("path_prefix_from", ""), Path(options.get("path_prefix_to") or root), root)
        videos: dict[str, Listed] = {}
        bad, unknown, absent, partial, outside, conflicts = [], defaultdict(int), [], [], [], []
        for f in files:
            levels: set[str] = set()
            for at, video, label, split, entry in _entries(f, comp, levels, bad):
                if wanted and label not in wanted:
                    continue
                if label not in LABELS:
                    unknown[(label, NOT_USED.get(label, "a label this adapter does not know (see README); "
                                                       "not used"))] += 1
                    continue
                frames = [rewrite(x) for x in entry["frames"]]
                if not frames:
                    bad.append((at, "lists no frames; not used"))
                    continue
                if any(p is None for p in frames):
                    outside.append((at, f"a frame is not under the root {root} after the path rewrite "
                                        f"(e.g. {entry['frames'][0]})"))
                    continue
                folder = Path(os.path.commonpath(frames)) if len(frames) > 1 else frames[0].parent
                v = videos.setdefault(posix_rel(folder, root), Listed(
                    label, video, folder, sorted(frames, key=lambda p: natural_key(p.name)), at))
                if v.label != label:
                    conflicts.append((str(folder), f"{at}: labelled {label}, but {v.where} says {v.label}; "
                                                   f"kept {v.label}"))
                v.splits.add(split)
            if levels and comp not in levels:
                problems.append(Problem("missing_compression", str(f), f"no {comp} level in this JSON (it has "
                                        f"{', '.join(sorted(levels))}): set option compression"))
        for key, v in list(videos.items()):
            on_disk = [p for p in v.frames if p.is_file()]
            if not on_disk:
                absent.append((str(v.folder), f"{v.where}: none of its {len(v.frames)} frames is on disk"))
                del videos[key]
            elif len(on_disk) < len(v.frames):
                partial.append((str(v.folder), f"{v.where}: {len(v.frames) - len(on_disk)} of its {len(v.frames)} "
                                               "frames are not on disk; the others used"))
                v.frames = on_disk
        where = str(files[0].parent)
        report_many(problems, "bad_entry", bad, where, "JSON entries are not videos")
        report_many(problems, "outside_root", outside, where, f"videos have frames outside the root {root}")
        if outside and not videos and rewrite.hint(True):
            problems.insert(0, Problem("path_rewrite", where, "no frame path of the JSON is under the root"
                                       + rewrite.hint(True)))
        report_many(problems, "label_conflict", conflicts, where, "videos are listed with two labels")
        report_many(problems, "missing_video", absent, where, "videos have no frame on disk")
        report_many(problems, "missing_frames", partial, where, "videos miss some frames")
        for (label, reason), n in sorted(unknown.items()):
            problems.append(Problem("not_used", where, f"{n} video(s) labelled {label}: {reason}"))
        return videos


class _Rewrite:
    """A JSON frame path -> the file here: `prefix_from` replaced by `prefix_to`, relative paths under the
    root; None when the result is not under the root."""

    def __init__(self, prefix_from: str, prefix_to: Path, root: Path):
        self.prefix_from = prefix_from.replace("\\", "/").rstrip("/")
        self.prefix_to, self.root = prefix_to, Path(os.path.normpath(root))
        self.first: str | None = None

    def __call__(self, listed: str) -> Path | None:
        text = listed.replace("\\", "/")
        self.first = self.first or text
        if self.prefix_from and (text == self.prefix_from or text.startswith(self.prefix_from + "/")):
            text = self.prefix_to.as_posix() + text[len(self.prefix_from):]
        path = Path(os.path.normpath(text if PurePosixPath(text).is_absolute() else self.root / text))
        if os.path.commonpath([str(path), str(self.root)]) != str(self.root) or path == self.root:
            return None
        return path

    def hint(self, wanted) -> str:
        if not wanted or self.prefix_from:
            return ""
        return (f": they are the preprocessing machine's (e.g. {self.first}); set option path_prefix_from to "
                "their leading folder, which path_prefix_to (default: the root) replaces")


class _Protocols:
    """This project's split of each video, per database, through its adapter's own rules."""

    def __init__(self, root: Path, options: dict, problems: list, name: str):
        self.root, self.options, self.problems, self.name = root, options, problems, name
        self._pairs = None

    def ff_splits_dir(self) -> Path:
        given = self.options.get("ff_splits_dir")
        if given:
            return Path(given)
        for candidate in (self.root / "FaceForensics++", self.root / "FaceForensics++" / "splits"):
            if (candidate / "train.json").is_file():
                return candidate
        return self.root / "FaceForensics++"

    def pairs(self):
        if self._pairs is None:
            self._pairs = read_pair_splits(self.ff_splits_dir(), self.problems)
        return self._pairs

    def assign(self, db: str, items: list[Listed]):
        """(video, split, record fields) of the videos of one database the protocol can place; the
        others are reported."""
        rule = {"faceforensics": self._ff, "celebdf": self._celebdf, "deeperforensics": self._df,
                "google_dfd": self._dfd}.get(db)
        if rule is None:
            return [(v, "test", {}) for v in items]
        unmatched, unsplit, out = [], [], []
        for v, split, extra, why in rule(items):
            if why:
                (unsplit if split is None else unmatched).append((str(v.folder), f"{v.where}: {why}"))
            else:
                out.append((v, split, extra))
        report_many(self.problems, "unmatched_file", unmatched, str(self.root), f"{db} videos match no naming rule")
        report_many(self.problems, "not_in_split", unsplit, str(self.root), f"{db} videos are in no split of its "
                                                                             "protocol; left out")
        return out

    def _ff(self, items):
        ps = self.pairs()
        for v in items:
            if ORIGINAL.match(v.name) and not LABELS[v.label].is_fake:
                split = ps.videos.get(v.name)
                yield v, split, {"identity": v.name}, None if split else "in no pair of the FF++ split files"
            elif (m := PAIR.match(v.name)) and LABELS[v.label].is_fake:
                target, source = m.groups()
                split = ps.of_pair(target, source)
                yield (v, split, {"identity": target, "source_ids": (target, source)},
                       None if split else f"pair [{target}, {source}] is in no FF++ split file")
            else:
                yield v, "", {}, "not named NNN (a real) or NNN_MMM (a fake) as FF++ videos are"

    def _celebdf(self, items):
        named, matched = {}, {}
        for v in items:
            hit = match_name(v.name, LABELS[v.label].is_fake)
            if hit is None:
                yield v, "", {}, "not named idX_NNNN, NNNNN (reals) or idX_idY_NNNN (fakes) as Celeb-DF videos are"
                continue
            named[(hit[0], v.name)] = (v.folder, LABELS[v.label].is_fake, hit[1])
            matched[(hit[0], v.name)] = v
        fraction = check_fraction(self.options.get("val_fraction", 0.1), self.name)
        test_list = Path(self.options.get("celebdf_test_list")
                         or self.root / "Celeb-DF-v2" / "List_of_testing_videos.txt")
        splits = assign_splits(named, test_list, fraction, self.problems, self.root / "Celeb-DF-v2",
                               absent="not in the DeepfakeBench JSON")
        for key, v in matched.items():
            m = named[key][2]
            extra = {"identity": video_identity(key[0], m)}
            if LABELS[v.label].is_fake:
                extra["source_ids"] = (m.group(1), m.group(2))
            yield v, splits[key], extra, None

    def _df(self, items):
        protocol = self.options.get("df_split_protocol") or "ff_target"
        lists = Path(self.options.get("df_splits_dir") or self.root / "DeeperForensics-1.0" / "lists" / "splits")
        split_of, target_split = fake_splits(protocol, self.ff_splits_dir(), lists, self.problems, self.root)
        for v in items:
            m = DF_FAKE.match(v.name)
            if not m:
                yield v, "", {}, "not named <target3>_<actor> as DeeperForensics fakes are"
                continue
            target, actor = m.groups()
            split = target_split.get(target) if target_split is not None else split_of.get(v.name)
            parts = v.folder.parts
            variant = parts[parts.index("manipulated_videos") + 1] if "manipulated_videos" in parts[:-1] else None
            extra = {"identity": target, "source_ids": (target, actor), "method": variant or LABELS[v.label].method}
            yield v, split, extra, None if split else "in no split of the DeeperForensics protocol"

    def _dfd(self, items):
        for v in items:
            m = (DFD_FAKE if LABELS[v.label].is_fake else DFD_ACTOR).match(v.name)
            if not m:
                yield v, "", {}, "not named NN__<scene> (a real) or NN_MM__<scene>__<HASH> (a fake) as DFD videos are"
                continue
            extra = {"identity": m.group(1)}
            if LABELS[v.label].is_fake:
                extra["source_ids"] = (m.group(1), m.group(2))
            yield v, "test", extra, None


register(DeepfakeBenchAdapter())
