"""An unknown set's input: its videos (a folder, one video or image, or a CSV manifest) and optional labels.

Frames as input (docs/ARCHITECTURE.md "What the decoder opens"): below a folder, every folder of
images without a video file is one video (the generic adapter's rule); one image given as the input
is a one-frame video; a GIF is refused with the reason. Every other file of the input is reported
(`InputSet.problems`, stored with the set), never skipped silently.

Identifiers (DESIGN.md "Identifiers"): database ``unknown``; split = the
set's sanitised name; dataset ``unknown/<name>``; relpath ``<name>/<path
relative to the input>`` — for a folder, relative to that folder (a frame folder's own path; the
input itself when it is one); for a CSV manifest, as listed (relative to the manifest's folder); for a
single video or image, its file name — so the video id ``unknown/<name>/<path>`` is unique across
sets because names are.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from data_catalog.databases.base import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from data_catalog.databases.generic import is_image, refused_image, walk_media
from data_catalog.errors import AtlasError
from data_catalog.records import VideoRecord
from data_catalog.taxonomy import Taxonomy

from .paths import UNKNOWN_DB, AnalysisError, is_video_name, resolve_under_roots, sanitize_name


@dataclass
class InputSet:
    name: str
    records: list[VideoRecord]
    source: str
    labelled: bool
    problems: list = field(default_factory=list)
    allowed_roots: tuple = ()  # the roots its videos were confined to; the decoder checks them again

    @property
    def dataset(self) -> str:
        return f"{UNKNOWN_DB}/{self.name}"


def _with_labels(records: list[VideoRecord], labels: list[VideoRecord]) -> list[VideoRecord]:
    by_rel = {r.relpath: r for r in labels}
    return [dataclasses.replace(r, true_class=by_rel[r.relpath].true_class, is_fake=by_rel[r.relpath].is_fake,
                                identity=by_rel[r.relpath].identity, method=by_rel[r.relpath].method)
            if r.relpath in by_rel else r for r in records]


def _scan_folder(generic, path: Path, labels_csv, taxonomy: Taxonomy) -> tuple[list[VideoRecord], list]:
    try:
        entries = next(os.walk(path))[1:]
    except StopIteration:
        entries = ([], [])
    if not any(entries):
        raise AnalysisError(f"input folder {path} is empty: nothing to analyse")
    try:
        scan = generic.scan(path, name=UNKNOWN_DB, options={}, taxonomy=taxonomy)
    except AtlasError as exc:
        if "no videos found" in str(exc):
            unused = walk_media(path).unused
            tail = (f"; {len(unused)} file(s) not used, e.g. {Path(unused[0][1]).name}: {unused[0][2]}"
                    if unused else "")
            raise AnalysisError(f"input folder {path} holds no video files (looked for "
                                f"{', '.join(VIDEO_SUFFIXES)}) and no folder of frames ({', '.join(IMAGE_SUFFIXES)})"
                                + tail) from None
        raise
    records, problems = scan.records, list(scan.problems)
    if labels_csv:
        manifest = Path(labels_csv).absolute()
        labels = generic.scan(path, name=UNKNOWN_DB, options={"manifest": str(manifest)}, taxonomy=taxonomy)
        problems = [p for p in problems if Path(p.path).absolute() != manifest] + labels.problems  # it is used
        records = _with_labels(records, labels.records)
    return records, problems


def _confine(records: list[VideoRecord], roots, problems: list) -> list[VideoRecord]:
    """The records whose real path is inside `roots`; the others become problems (and are never read)."""
    from data_catalog.databases.base import Problem

    inside = []
    for r in records:
        try:
            for p in (r.path, *r.frames):  # a frame folder's every image, as the decoder checks them again
                resolve_under_roots(p, roots)
            inside.append(r)
        except AnalysisError:
            problems.append(Problem("outside_allowed_roots", str(p),
                                    "links outside [dashboard] allowed_roots; not read"
                                    + (f" (its video {r.relpath} is not used)" if r.frames else "")))
    return inside


def collect_videos(input_path: str | Path, name: str | None, labels_csv: str | Path | None,
                   taxonomy: Taxonomy, roots=None) -> InputSet:
    """The input's videos as VideoRecords of the unknown set (see the module docstring).

    `roots` (the dashboard's `[dashboard] allowed_roots`): the input must resolve inside one of
    them, and a video whose real path leaves them (a symlink) is reported and never read.
    """
    from data_catalog.databases import ADAPTERS

    generic = ADAPTERS["generic"]
    path = Path(input_path).expanduser()
    if not path.exists():
        raise AnalysisError(f"input {path}: no such file or folder")
    if roots is not None:
        resolve_under_roots(path, roots)
    path = path.absolute()
    name = sanitize_name(name or (path.stem if path.is_file() else path.name))
    problems: list = []
    if path.is_dir():
        records, problems = _scan_folder(generic, path, labels_csv, taxonomy)
    elif path.suffix.lower() == ".csv":
        if labels_csv:
            raise AnalysisError("give labels either in the input manifest or with --labels, not both")
        scan = generic.scan(path.parent, name=UNKNOWN_DB, options={"manifest": str(path)}, taxonomy=taxonomy)
        records, problems = scan.records, list(scan.problems)
    elif refused_image(path.name):
        raise AnalysisError(f"input {path}: {refused_image(path.name)}")
    elif is_video_name(path) or is_image(path.name):
        rec = VideoRecord(UNKNOWN_DB, name, path, path.name, None, None,
                          frames=(path,) if is_image(path.name) else ())  # one image: a one-frame video
        if labels_csv:
            labels = generic.scan(path.parent, name=UNKNOWN_DB,
                                  options={"manifest": str(Path(labels_csv).absolute())}, taxonomy=taxonomy)
            match = [r for r in labels.records if r.relpath == path.name]
            if match:
                rec = dataclasses.replace(match[0], split=name)
        records = [rec]
    else:
        raise AnalysisError(f"input {path}: not a video ({', '.join(VIDEO_SUFFIXES)}), an image "
                            f"({', '.join(IMAGE_SUFFIXES)}), a folder of videos or frames, or a CSV manifest (.csv)")
    out = [dataclasses.replace(r, database=UNKNOWN_DB, split=name, path=Path(r.path),
                               relpath=PurePosixPath(name, r.relpath).as_posix(), source_ids=tuple(r.source_ids))
           for r in records]
    if roots is not None:
        out = _confine(out, roots, problems)
    if not out:
        raise AnalysisError(f"input {path}: no videos to analyse")
    labelled = any(r.is_fake is not None for r in out)
    return InputSet(name, out, str(path), labelled, problems, tuple(str(r) for r in roots or ()))
