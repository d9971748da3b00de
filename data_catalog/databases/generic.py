"""Generic folder/CSV adapter: DF-Mobio, unknown sets, and the synthetic benchmark.

Three layouts, in this order of preference:
- a CSV manifest (`manifest = "labels.csv"`): columns `path,label` and
  optionally `class,split,identity,method`; `label` is `real` or `fake`
  (empty = unlabelled); paths are relative to the root and may not leave it;
- `real/` and `fake/` sub-folders (a folder under `fake/` names the method);
- any other folder: every video below it, unlabelled (attribution only).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path, PurePosixPath

from ..errors import AtlasError, ConfigError
from ..records import REAL, SPLITS, VideoRecord
from ..taxonomy import Taxonomy
from . import register
from .base import VIDEO_SUFFIXES, Problem, ScanResult

LABELS = {"real": False, "fake": True, "": None}


def walk_videos(folder: Path, problems: list[Problem] | None = None) -> list[Path]:
    """Every video file below `folder`, following symlinks but never looping."""
    found: list[Path] = []
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
        for f in sorted(filenames):
            if f.lower().endswith(VIDEO_SUFFIXES):
                found.append(Path(dirpath) / f)
    return found


def _label_text(label: str, cls: str) -> str:
    """A manifest row's label as a problem message names it: `fake (ff-deepfakes)`, `real`, `unlabelled`."""
    return (label or "unlabelled") + (f" ({cls})" if cls and cls != label else "")


def _relpath(path: Path, root: Path) -> str:
    return PurePosixPath(*path.relative_to(root).parts).as_posix()


class GenericAdapter:
    name = "generic"
    description = "real/ and fake/ folders, a CSV manifest (path,label[,class,split,identity,method]), or unlabelled videos"
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
                for path in walk_videos(folder, result.problems):
                    rel = path.relative_to(folder).parts
                    method = rel[0] if is_fake and len(rel) > 1 else ("" if is_fake else REAL)
                    true_class = taxonomy.class_for((name, self.name), method, is_fake)
                    result.records.append(VideoRecord(
                        name, default_split, path, _relpath(path, root), true_class, is_fake, method=method))
        else:
            for path in walk_videos(root, result.problems):
                result.records.append(VideoRecord(name, default_split, path, _relpath(path, root), None, None))
        missing = [p for p in result.problems if p.kind == "missing_video"]
        if not result.records and manifest and missing:
            raise AtlasError(f"{manifest}: {len(missing)} listed files are missing (e.g. {missing[0].path!r} is not "
                             f"under {root}): no videos found for database {name!r}")
        if not result.records:
            raise AtlasError(f"{root}: no videos found for database {name!r} "
                             f"(looked for {', '.join(VIDEO_SUFFIXES)} files{' in the manifest' if manifest else ''})")
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
            if not os.path.isfile(full):
                result.problems.append(Problem("missing_video", rel, f"{where}: listed in {manifest.name} but not on disk"))
                continue
            result.records.append(VideoRecord(
                name, split, full, relpath, cls or None, is_fake, identity=row.get("identity", ""), method=method))


register(GenericAdapter())
