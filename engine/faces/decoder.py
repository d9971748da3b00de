"""Open a video safely: the one home of how the face stage reads a video file.

What the decoder opens (docs/ARCHITECTURE.md, "What the decoder opens"): one regular file, by its
real path (symlinks resolved; inside the allowed roots when the job has them), held open by the
descriptor it was checked on (`checked_file`; FFmpeg reads /proc/self/fd/N), through OpenCV's
FFmpeg backend only (never `CAP_ANY`, whose image-sequence backend expands `%d` in names), with
FFmpeg limited to the `file` protocol and to the self-contained demuxers of `SAFE_FORMATS`.
Playlists, concat lists, image sequences, SDP/RTP sessions and URLs are refused: they make FFmpeg
open other files than the one that was checked (issue 19: an `ffconcat` list named `.mp4`
read a video outside the allowed roots through a symlink).

Frames are sampled evenly in time: by index when the timestamps are those of a constant frame
rate (the same frames as `sample_indices`), else at the frames nearest to N evenly spaced times.
"""

from __future__ import annotations

import os
import stat
import struct
import time

import numpy as np

# FFmpeg demuxers that read one file and nothing else: the containers of VIDEO_SUFFIXES, raw
# elementary streams, and single-image pipes (a still image renamed .mp4 stays a one-frame video).
SAFE_FORMATS = ("mov", "mp4", "avi", "matroska", "webm", "mpeg", "mpegts", "mpegvideo", "m4v", "h264",
                "hevc", "asf", "flv", "png_pipe", "jpeg_pipe", "bmp_pipe", "webp_pipe")
# Read by OpenCV at every cv2.VideoCapture open: key;value pairs separated by '|'.
CAPTURE_OPTIONS = "protocol_whitelist;file|format_whitelist;" + ",".join(SAFE_FORMATS) + "|enable_drefs;0"
_ENV = "OPENCV_FFMPEG_CAPTURE_OPTIONS"

# Text files FFmpeg would treat as a list of other inputs (leading bytes, lower-cased).
_TEXT_KINDS = ((b"ffconcat", "an ffconcat list"), (b"#extm3u", "an M3U/HLS playlist"),
               (b"#extinf", "an M3U playlist"), (b"[playlist]", "a PLS playlist"), (b"v=0", "an SDP session"),
               (b"<?xml", "an XML file (DASH manifest or playlist)"), (b"<mpd", "a DASH manifest"),
               (b"file ", "a concat list"))


class VideoRefused(Exception):
    """A file the decoder will not open; the message is the one-line reason recorded for the video."""


def _shown(path: str) -> str:
    """A path for a one-line reason: bytes that are not UTF-8 as \\xHH (store text must be valid UTF-8)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def inside_roots(real: str, roots) -> bool:
    """True when the real path `real` lies inside one of `roots` (resolved too): the allowed-roots rule."""
    for root in roots:
        root_real = os.path.realpath(os.path.expanduser(str(root)))
        try:
            if os.path.commonpath([real, root_real]) == root_real:
                return True
        except ValueError:  # different drives
            continue
    return False


def sniff_refusal(head: bytes) -> str | None:
    """Why a file starting with `head` is refused before FFmpeg sees it (a playlist, a list, text); else None."""
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    for magic, kind in _TEXT_KINDS:
        if start.startswith(magic):
            return f"refused: {kind}, not a video (it would make FFmpeg read other files)"
    if head and all(b in b"\t\n\r" or 32 <= b < 127 for b in head):
        return "refused: a text file, not a video"
    return None


class CheckedFile:
    """A file the decoder may read, held open by the descriptor its checks were made on.

    `path` is what to hand a reader: on Linux `/proc/self/fd/N`, which the kernel resolves to the file
    this descriptor holds — so the file decoded is the file checked, even if a folder or file on its
    path is swapped for a symlink after the check (the check-then-open race on the allowed roots).
    Elsewhere it is the checked real path. Close it (or use it in a `with`) when done.
    """

    def __init__(self, real: str, fd: int, pinned: bool):
        self.real = real
        self.fd = fd
        self.path = f"/proc/self/fd/{fd}" if pinned else real

    def read(self) -> bytes:
        """The whole file, from the checked descriptor."""
        size = os.fstat(self.fd).st_size
        chunks, offset = [], 0
        while offset < size:
            chunk = os.pread(self.fd, min(size - offset, 1 << 24), offset)
            if not chunk:
                break
            chunks.append(chunk)
            offset += len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "CheckedFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)


def checked_file(path: str, roots=()) -> CheckedFile:
    """Open `path` for the decoder if it may be read; VideoRefused with the one-line reason otherwise.

    Rules: the file exists; its real path (symlinks resolved) lies inside `roots` when given; it is a
    regular file (a FIFO or device would block or never end), readable, not empty, and not a playlist,
    list or text (`sniff_refusal`). The type, size and leading bytes are read from the descriptor itself,
    and where the system names a descriptor's file (`/proc/self/fd`), the file actually opened is checked
    against `roots` again.
    """
    if not os.path.exists(path):  # also a dangling symlink
        raise VideoRefused(f"file not found: {_shown(path)}")
    real = os.path.realpath(path)
    if roots and not inside_roots(real, roots):
        raise VideoRefused(f"refused: its real path {_shown(real)} is outside the allowed roots")
    try:
        fd = os.open(real, _OPEN_FLAGS)  # O_NOFOLLOW: a symlink swapped in since realpath is refused
    except PermissionError:
        raise VideoRefused("permission denied: the file cannot be read") from None
    except IsADirectoryError:
        raise VideoRefused("not a regular file (a FIFO, device or folder)") from None
    except OSError as exc:
        raise VideoRefused(f"cannot read the file: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise VideoRefused("not a regular file (a FIFO, device or folder)")
        if st.st_size == 0:
            raise VideoRefused("zero-byte file")
        proc = f"/proc/self/fd/{fd}"
        pinned = os.path.exists(proc)
        if pinned and roots:
            opened = os.readlink(proc)
            if not inside_roots(opened, roots):
                raise VideoRefused(f"refused: the file opened, {_shown(opened)}, is outside the allowed roots "
                                   "(its path changed while it was checked)")
        try:
            head = os.pread(fd, 64, 0)
        except OSError as exc:
            raise VideoRefused(f"cannot read the file: {exc.strerror or exc}") from None
        reason = sniff_refusal(head)
        if reason:
            raise VideoRefused(reason)
    except BaseException:
        os.close(fd)
        raise
    return CheckedFile(real, fd, pinned)


def open_capture(real: str):
    """cv2.VideoCapture of `real` through FFmpeg with the safe options (never another backend)."""
    import cv2

    if os.environ.get(_ENV) != CAPTURE_OPTIONS:
        os.environ[_ENV] = CAPTURE_OPTIONS
    # bytes: OpenCV crashes (SIGSEGV) on a str holding undecodable, surrogate-escaped bytes
    return cv2.VideoCapture(os.fsencode(real), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])


# --- why an open failed ---------------------------------------------------------
def _mp4_tracks(f, size: int) -> list[str] | None:
    """Handler types ('vide', 'soun', ...) of an ISO BMFF file's tracks; None when it has no readable moov."""
    pos = 0
    while pos + 8 <= size:
        f.seek(pos)
        hdr = f.read(16)
        if len(hdr) < 8:
            return None
        n, kind = struct.unpack(">I4s", hdr[:8])
        body = 8
        if n == 1 and len(hdr) == 16:
            n, body = struct.unpack(">Q", hdr[8:16])[0], 16
        elif n == 0:
            n = size - pos
        if n < body:
            return None
        if kind == b"moov":
            if n > 64 << 20:
                return None
            f.seek(pos + body)
            moov = f.read(n - body)
            tracks, i = [], moov.find(b"hdlr")
            while i >= 4:
                tracks.append(moov[i + 12:i + 16].decode("latin-1"))
                i = moov.find(b"hdlr", i + 4)
            return tracks
        pos += n
    return None


def _ebml_id_size(buf: bytes, i: int):
    """(element id, data size, data start) of the EBML element at i; None past the buffer."""
    if i >= len(buf):
        return None
    first = buf[i]
    id_len = next((k + 1 for k in range(4) if first & (0x80 >> k)), 0)
    if not id_len or i + id_len >= len(buf):
        return None
    eid = int.from_bytes(buf[i:i + id_len], "big")
    j = i + id_len
    b = buf[j]
    n_len = next((k + 1 for k in range(8) if b & (0x80 >> k)), 0)
    if not n_len or j + n_len > len(buf):
        return None
    size = int.from_bytes(buf[j:j + n_len], "big") & ((1 << (7 * n_len)) - 1)
    if size == (1 << (7 * n_len)) - 1:
        size = len(buf)  # unknown size: up to the end of what was read
    return eid, size, j + n_len


def _mkv_tracks(buf: bytes) -> list[str] | None:
    """Track types ('vide', 'soun', ...) of a Matroska/WebM head; None when its Tracks are not in `buf`."""
    names = {1: "vide", 2: "soun", 17: "subt"}
    i, ends = 0, len(buf)
    while (el := _ebml_id_size(buf, i)) is not None and i < ends:
        eid, size, start = el
        if eid == 0x18538067:       # Segment: descend
            i = start
            continue
        if eid == 0x1654AE6B:       # Tracks
            tracks, k, stop = [], start, min(start + size, len(buf))
            while (entry := _ebml_id_size(buf, k)) is not None and k < stop:
                tid, tsize, tstart = entry
                if tid == 0xAE:     # TrackEntry
                    m = tstart
                    while (field := _ebml_id_size(buf, m)) is not None and m < tstart + tsize:
                        fid, fsize, fstart = field
                        if fid == 0x83:  # TrackType
                            tracks.append(names.get(int.from_bytes(buf[fstart:fstart + fsize], "big"), "other"))
                        m = fstart + fsize
                k = tstart + tsize
            return tracks
        if eid == 0x1F43B675:       # a Cluster before any Tracks
            return None
        i = start + size
    return None


def container_tracks(real: str) -> list[str] | None:
    """The kinds of the tracks an MP4/MOV or Matroska/WebM file declares; None for other or damaged files."""
    try:
        size = os.path.getsize(real)
        with open(real, "rb") as f:
            head = f.read(1 << 20)
            if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"):
                return _mp4_tracks(f, size)
            if head[:4] == b"\x1a\x45\xdf\xa3":
                return _mkv_tracks(head)
    except (OSError, ValueError, struct.error):
        return None
    return None


def open_failure_reason(real: str) -> str:
    """The one-line reason FFmpeg could not open `real`."""
    tracks = container_tracks(real)
    if tracks and "vide" not in tracks:
        kinds = sorted({"audio" if t == "soun" else t for t in tracks})
        return f"no video stream (the file holds only {', '.join(kinds)} tracks)"
    return "not a video OpenCV/FFmpeg can open (wrong format or damaged header)"


# --- which frames ---------------------------------------------------------------
def sample_indices(n_frames: int, n: int) -> list[int]:
    """N frame indices evenly spaced over [0, n_frames); all frames when the video is shorter."""
    if n_frames <= 0 or n <= 0:
        return []
    if n_frames <= n:
        return list(range(n_frames))
    return sorted(set(int(round(v)) for v in np.linspace(0, n_frames - 1, n)))


def sample_by_time(timestamps_ms, n: int) -> list[int]:
    """Indices of the frames nearest to N times evenly spaced from the first frame's to the last's."""
    ts = np.asarray(timestamps_ms, dtype=float)
    if len(ts) == 0 or n <= 0:
        return []
    if len(ts) <= n:
        return list(range(len(ts)))
    times = np.linspace(ts[0], ts[-1], n)
    right = np.clip(np.searchsorted(ts, times), 1, len(ts) - 1)
    left = right - 1
    nearest = np.where(times - ts[left] <= ts[right] - times, left, right)
    return sorted(set(int(i) for i in nearest))


def frame_timestamps(cap) -> list[float] | None:
    """Presentation times (ms) of every video packet, read without decoding (raw mode: the
    capture is used up); None when they are missing or repeat, so they cannot place frames."""
    import cv2

    if not cap.set(cv2.CAP_PROP_FORMAT, -1):
        return None
    ts = []
    while cap.grab():
        ts.append(float(cap.get(cv2.CAP_PROP_POS_MSEC)))
    ts.sort()  # packets come in decode order; frames leave the decoder in presentation order
    if len(ts) < 2 or any(b <= a for a, b in zip(ts, ts[1:])):
        return None
    return ts


def constant_rate(ts: list[float] | None, fps: float | None) -> bool:
    """True when every frame is within half a frame of where a constant `fps` puts it (or timing is unknown)."""
    if not ts or not fps:
        return True
    step = 1000.0 / fps
    rel = np.asarray(ts) - ts[0]
    return bool(np.all(np.abs(rel - step * np.arange(len(rel))) <= step / 2))


# --- decoding -------------------------------------------------------------------
def to_rgb(frame: np.ndarray) -> np.ndarray:
    import cv2

    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2RGB)
    if frame.shape[2] == 1:
        return cv2.cvtColor(frame[:, :, 0], cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


def count_frames(real: str) -> int:
    cap = open_capture(real)
    n = 0
    try:
        while cap.grab():
            n += 1
    finally:
        cap.release()
    return n


def sampled_frames(real: str, targets: list[int], timer: dict):
    """Yield (index, rgb) for the target frames (skipping the others with `grab()`, which does not
    convert them); sets timer['decoded_to'] to the index reached when the stream ended early."""
    cap = open_capture(real)
    idx = 0
    try:
        for target in targets:
            t0 = time.perf_counter()
            ok = True
            while idx < target and ok:
                ok = cap.grab()
                idx += ok
            if ok:
                ok, frame = cap.read()
            timer["decode"] += time.perf_counter() - t0
            if not ok or frame is None:
                timer["decoded_to"] = idx
                return
            idx += 1
            t0 = time.perf_counter()
            rgb = to_rgb(frame)
            timer["decode"] += time.perf_counter() - t0
            yield target, rgb
    finally:
        cap.release()
