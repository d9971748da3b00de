"""Chain of custody of an analysed set: each input file's SHA-256 and the name the user gave it.

Hashes are taken when the set is recorded (before any face is read), so a case report can say which
exact bytes were analysed. An upload is saved under a safe on-disk name (`paths.sanitize_filename`:
ASCII only); the name the user's file had — in any script — travels beside it in the upload folder's
`UPLOAD_NAMES` file, written by `dashboard.uploads.save_uploads`, and is trusted only for folders inside
the workspace's own uploads folder (a folder from elsewhere cannot forge names). Both go to the store's
`video_files` table (`engine.store.analyses.write_set_videos`).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
from pathlib import Path

import pyarrow as pa

from data_catalog.names import path_to_text

from ..store import analyses as set_table

UPLOAD_NAMES = ".dfatlas-upload-names.json"  # {"files": {safe name: original name}} in an upload folder
_CHUNK = 1 << 20


def file_sha256(path: str | os.PathLike) -> tuple[str, int]:
    """(hex SHA-256, size in bytes) of a regular file, read in 1 MiB chunks; of a folder (frames), the SHA-256
    of its sorted 'relative name, file SHA-256' lines and the total size. Anything else (a FIFO, a device, a
    dangling link, no permission) is an OSError with its reason — never a blocking open: the file is opened
    non-blocking and checked on its descriptor."""
    p = Path(path)
    fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            os.close(fd)
            fd = -1
            lines, total = [], 0
            for sub in sorted(x for x in p.rglob("*") if x.is_file()):
                digest, size = file_sha256(sub)
                total += size
                lines.append(f"{path_to_text(sub.relative_to(p).as_posix())}  {digest}\n")
            return hashlib.sha256("".join(lines).encode()).hexdigest(), total
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, "not a regular file", str(p))
        h = hashlib.sha256()
        size = 0
        with os.fdopen(fd, "rb") as fh:
            fd = -1  # the file object closes it
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
                size += len(chunk)
        return h.hexdigest(), size
    finally:
        if fd >= 0:
            os.close(fd)


def write_upload_names(folder: Path, names: dict[str, str]) -> None:
    """Record {safe on-disk name: original name} of an upload folder (read back by `upload_names`)."""
    (Path(folder) / UPLOAD_NAMES).write_text(json.dumps({"files": names}, ensure_ascii=False), encoding="utf-8")


def upload_names(input_path: str | os.PathLike, uploads_dir: str | os.PathLike | None) -> dict[str, str]:
    """{safe name: original name} of an upload folder inside `uploads_dir`; {} for any other input."""
    if uploads_dir is None:
        return {}
    folder = Path(os.path.realpath(input_path))
    root = Path(os.path.realpath(uploads_dir))
    if not folder.is_dir() or folder.parent != root:
        return {}
    try:
        data = json.loads((folder / UPLOAD_NAMES).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        return {}
    return {str(k): str(v) for k, v in files.items() if isinstance(k, str) and isinstance(v, str)}


def _original_name(record, disk_name: str, originals: dict[str, str]) -> str:
    """The name the user gave a video: an upload's own name, else the file's name (stored text); a video
    given as images (a frame folder) is its folder and the names of its images, in frame order."""
    if not getattr(record, "frames", None):
        return originals.get(disk_name) or path_to_text(disk_name)
    frames = [Path(f).name for f in record.frames]  # in memory: file-system names (data_catalog.names)
    shown = [originals.get(f"{disk_name}/{f}") or path_to_text(f) for f in frames]
    return f"{path_to_text(disk_name)}/ ({len(frames)} images: {', '.join(shown)})"


def custody_table(records, input_path, uploads_dir=None, progress=None) -> pa.Table:
    """`video_files` rows of a set's records: original name (the upload's own, else the file's name as
    stored text) and SHA-256 of every file. `progress(done, total)` after each file."""
    originals = upload_names(input_path, uploads_dir)
    ids, names, digests, sizes, notes = [], [], [], [], []
    for i, r in enumerate(records):
        try:
            digest, size, note = *file_sha256(r.path), None
        except OSError as exc:  # the decoder will record the video unreadable too; here: why no hash
            digest, size, note = None, None, f"not hashed: {exc.strerror or exc}"
        disk_name = Path(r.path).name
        ids.append(r.video_id)
        names.append(_original_name(r, disk_name, originals))
        digests.append(digest)
        sizes.append(size)
        notes.append(note)
        if progress is not None:
            progress(i + 1, len(records))
    return set_table.files_table(ids, names, digests, sizes, notes)


def analysed_files(store, dataset: str):
    """video_id, relpath (name on disk), original_name, sha256, size_bytes, hashed_at of a set's files."""
    return set_table.set_files(store, dataset)
