"""Generic folder/CSV adapter: DF-Mobio, unknown sets, and the synthetic benchmark.

Three layouts, in this order of preference:
- a CSV manifest (`manifest = "labels.csv"`): columns `path,label` and
  optionally `class,split,identity,method`; `label` is `real` or `fake`
  (empty = unlabelled); paths are relative to the root and may not leave it;
  a path may name a video, a frame folder, or one image (a one-frame video);
- `real/` and `fake/` sub-folders (a folder under `fake/` names the method);
- any other folder: every video below it, unlabelled (attribution only).

Frames as input (docs/ARCHITECTURE.md "What the decoder opens"): a folder that holds image files
(`IMAGE_SUFFIXES`) and no video file is ONE video, its images in natural name order; its
id is the folder's path. Every other file below the root is used or reported with its reason, never
skipped silently: images beside videos (a folder of images is one video, so stills mixed with videos
would be guessed at), GIFs (`REFUSED_IMAGES`), and files that are neither videos nor images.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..errors import AtlasError, ConfigError
from ..names import natural_key
from ..records import REAL, SPLITS, VideoRecord
from ..taxonomy import Taxonomy
from . import register
from .base import IMAGE_SUFFIXES, REFUSED_IMAGES, VIDEO_SUFFIXES, Problem, ScanResult
from .layout import report_many

LABELS = {"real": False, "fake": True, "": None}
STRAY_IMAGE = ("a still image beside videos: not used (a folder of images is one video: put the frames of a "
               "video in a folder of their own)")
NOT_MEDIA = "neither a video nor an image: not used"


def walk_videos(folder: Path, problems: list[Problem] | None = None) -> list[Path]:
    """Every video file below `folder`, following symlinks but never looping."""
    return walk_media(folder, problems).videos


def is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def refused_image(name: str) -> str | None:
    """Why an image file is not read (a GIF), or None."""
    return REFUSED_IMAGES.get(os.path.splitext(name)[1].lower())


@dataclass
class Media:
    """What a folder walk found: video files, frame folders (folder, its images in order), files not used."""

    videos: list[Path] = field(default_factory=list)
    frame_folders: list[tuple[Path, list[Path]]] = field(default_factory=list)
    unused: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, path, reason)

    def report(self, problems: list[Problem], folder: Path) -> None:
        """One problem per file not used (a summary per kind above `layout.MANY`)."""
        for kind, summary in (("stray_image", "still images beside videos are not used"),
                              ("refused_image", "GIFs are not read"),
                              ("not_media", "files are neither videos nor images; not used")):
            report_many(problems, kind, [(p, r) for k, p, r in self.unused if k == kind], str(folder), summary)


def walk_media(folder: Path, problems: list[Problem] | None = None) -> Media:
    """Videos and frame folders below `folder` (sorted; symlinked folders followed, loops skipped), and
    every other file with the reason it is not used."""
    out = Media()
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            if problems is not None:
                problems.append(Problem("symlink_loop", dirpath, "folder already visited (symlink loop); skipped"))
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames.sort()
        videos, images = [], []
        for f in sorted(filenames):
            path = Path(dirpath) / f
            if f.lower().endswith(VIDEO_SUFFIXES):
                videos.append(path)
            elif is_image(f):
                images.append(path)
            elif refused_image(f):
                out.unused.append(("refused_image", str(path), refused_image(f)))
            else:
                out.unused.append(("not_media", str(path), NOT_MEDIA))
        out.videos += videos
        if images and videos:
            out.unused += [("stray_image", str(p), STRAY_IMAGE) for p in images]
        elif images:
            out.frame_folders.append((Path(dirpath), sorted(images, key=lambda p: natural_key(p.name))))
    return out


def frame_files(folder: Path) -> list[Path]:
    """The image files directly inside `folder`, in natural name order (a manifest row naming a folder)."""
    try:
        names = [e.name for e in os.scandir(folder) if e.is_file() and is_image(e.name)]
    except OSError:
        return []
    return [folder / n for n in sorted(names, key=natural_key)]


def _label_text(label: str, cls: str) -> str:
    """A manifest row's label as a problem message names it: `fake (ff-deepfakes)`, `real`, `unlabelled`."""
    return (label or "unlabelled") + (f" ({cls})" if cls and cls != label else "")


def _relpath(path: Path, root: Path) -> str:
    return PurePosixPath(*path.relative_to(root).parts).as_posix()


def _items(media: Media) -> list[tuple[Path, tuple[Path, ...]]]:
    """(path, frames) of every video file and frame folder a walk found, in path order."""
    items = [(p, ()) for p in media.videos] + [(folder, tuple(imgs)) for folder, imgs in media.frame_folders]
    return sorted(items, key=lambda item: str(item[0]))


class GenericAdapter:
    name = "generic"
    description = ("real/ and fake/ folders, a CSV manifest (path,label[,class,split,identity,method]), or unlabelled "
                   "videos; a folder of images is one video (its frames)")
    options = {"manifest": "path", "split": SPLITS, "synthetic": "bool"}

    def scan(self, root: Path, *, name: str, options: dict, taxonomy: Taxonomy) -> ScanResult:
        root = Path(root)
        if not root.is_dir():
            raise AtlasError(f"{root}: database root of {name!r} does not exist or is not a folder")
        result = ScanResult(name, root)
        default_split = options.get("split", "test")
        manifest = options.get("manifest")
        if manifest:
            self._scan_manifest(Path(manifest), root, name, default_split, taxonomy, result)
        elif (root / "real").is_dir() or (root / "fake").is_dir():
            for sub, is_fake in (("real", False), ("fake", True)):
                folder = root / sub
                if not folder.is_dir():
                    result.problems.append(Problem("missing_folder", str(folder), f"no {sub}/ folder"))
                    continue
                media = walk_media(folder, result.problems)
                media.report(result.problems, folder)
                for path, frames in _items(media):
                    rel = path.relative_to(folder).parts
                    method = rel[0] if is_fake and len(rel) > 1 else ("" if is_fake else REAL)
                    true_class = taxonomy.class_for((name, self.name), method, is_fake)
                    result.records.append(VideoRecord(name, default_split, path, _relpath(path, root), true_class,
                                                      is_fake, method=method, frames=frames))
            others = [(str(root / e), "not under real/ or fake/: not used") for e in sorted(os.listdir(root))
                      if e not in ("real", "fake")]
            report_many(result.problems, "not_used", others, str(root), "entries are not under real/ or fake/")
        else:
            media = walk_media(root, result.problems)
            media.report(result.problems, root)
            for path, frames in _items(media):
                result.records.append(VideoRecord(name, default_split, path, _relpath(path, root), None, None,
                                                  frames=frames))
        missing = [p for p in result.problems if p.kind == "missing_video"]
        if not result.records and manifest and missing:
            raise AtlasError(f"{manifest}: {len(missing)} listed files are missing (e.g. {missing[0].path!r} is not "
                             f"under {root}): no videos found for database {name!r}")
        if not result.records:
            raise AtlasError(f"{root}: no videos found for database {name!r} (looked for "
                             f"{', '.join(VIDEO_SUFFIXES)} files and folders of {', '.join(IMAGE_SUFFIXES)} frames"
                             f"{' in the manifest' if manifest else ''})")
        return result

    def _scan_manifest(self, manifest: Path, root: Path, name: str, default_split: str,
                       taxonomy: Taxonomy, result: ScanResult) -> None:
        try:
            text = manifest.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise ConfigError(manifest, None, "manifest file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(manifest, None, f"cannot read manifest ({exc})") from None
        reader = csv.DictReader(text.splitlines())
        columns = [c.strip() for c in (reader.fieldnames or [])]
        if "path" not in columns or "label" not in columns:
            raise ConfigError(manifest, "header", f"a manifest needs columns path,label (got {','.join(columns) or 'none'})")
        root_abs = Path(os.path.normpath(os.path.abspath(root)))
        seen: dict[str, tuple[str, str]] = {}  # relpath -> (where, label) of its first row
        for raw in reader:
            where = f"line {reader.line_num}"
            short = [k.strip() for k, v in raw.items() if k is not None and v is None]
            extra = raw.pop(None, None)  # csv.DictReader keeps surplus fields under the key None
            row = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
            rel = row.get("path", "")
            if extra:
                result.problems.append(Problem("extra_fields", rel, f"{where}: {len(extra)} field(s) more than the "
                                               f"header's {len(columns)} (an unquoted comma?); the extra ones ignored"))
            if "label" in short:
                result.problems.append(Problem("short_row", rel, f"{where}: {len(columns) - len(short)} of "
                                               f"{len(columns)} fields, no label column: recorded unlabelled"))
            if not rel:
                raise ConfigError(manifest, where, "empty path")
            label = row.get("label", "").lower()
            if label not in LABELS:
                raise ConfigError(manifest, where, f"unknown label {row.get('label')!r} (expected real or fake)")
            # Lexical check: `../` may not leave the root; symlinked folders
            # inside the root are the user's own layout and are followed.
            candidate = Path(rel.replace("\\", "/"))
            full = Path(os.path.normpath(candidate if candidate.is_absolute() else root_abs / candidate))
            if os.path.commonpath([str(full), str(root_abs)]) != str(root_abs) or full == root_abs:
                raise ConfigError(manifest, where, f"path {rel!r} escapes the database root {root}")
            relpath = _relpath(full, root_abs)
            split = row.get("split") or default_split
            if split not in SPLITS:
                raise ConfigError(manifest, where, f"unknown split {split!r} (expected {', '.join(SPLITS)})")
            is_fake = LABELS[label]
            method = row.get("method", "")
            cls = row.get("class", "")
            if cls:
                taxonomy.check_class(cls, f"{manifest}: {where}")
                if is_fake is not None and (cls == REAL) == is_fake:
                    raise ConfigError(manifest, where, f"class {cls!r} contradicts label {label!r}")
                if is_fake is None:
                    is_fake = cls != REAL
            elif is_fake is not None:
                cls = taxonomy.class_for((name, self.name), method or ("" if is_fake else REAL), is_fake)
            if relpath in seen:
                first, first_label = seen[relpath]
                this_label = _label_text(label, cls)
                if this_label != first_label:
                    result.problems.append(Problem("label_conflict", rel, f"{where}: listed again as {this_label!r}, "
                                                   f"{first} says {first_label!r}; kept {first}'s label"))
                else:
                    result.problems.append(Problem("duplicate", rel, f"{where}: listed twice (first on {first}); "
                                                   "kept once"))
                continue
            seen[relpath] = (where, _label_text(label, cls))
            frames: tuple[Path, ...] = ()
            if os.path.isdir(full):  # a frame folder
                frames = tuple(frame_files(full))
                if not frames:
                    result.problems.append(Problem("no_frames", rel, f"{where}: a folder without "
                                                   f"{', '.join(IMAGE_SUFFIXES)} images; not used"))
                    continue
            elif not os.path.isfile(full):
                result.problems.append(Problem("missing_video", rel, f"{where}: listed in {manifest.name} but not on disk"))
                continue
            elif refused_image(full.name):
                result.problems.append(Problem("refused_image", rel, f"{where}: {refused_image(full.name)}"))
                continue
            elif is_image(full.name):  # one image given alone: a one-frame video
                frames = (full,)
            result.records.append(VideoRecord(
                name, split, full, relpath, cls or None, is_fake, identity=row.get("identity", ""), method=method,
                frames=frames))


register(GenericAdapter())
