"""A corpus of bad inputs, generated on the fly, for the reliability tests.

`make_bad_corpus(root)` writes a generic-adapter folder (`real/` and `fake/<method>/`)
that mixes good videos (a real face: scikit-image's astronaut photo) with every
kind of bad input a research data folder holds, and returns what each item is
and which face-extraction statuses are acceptable for it:

- zero-byte file, truncated AVI and truncated MP4, random bytes named `.mp4`,
  a PNG renamed to `.mp4`, a one-frame video, a very large frame (3840x2160,
  few frames), a grey-scale video, a video without a face, a folder and file
  name with spaces and non-ASCII characters, a file name holding quotes and SQL,
  a dangling symlink, a FIFO named
  `.mp4` (a special file: opening it would block), a symlink loop (a folder
  linking to its parent), and an unreadable file (chmod 000 — only when not
  running as root, since root reads it anyway; as root the dangling symlink and
  the FIFO stand in for "cannot be read").

`make_bad_manifests(root)` writes CSV manifests with missing columns, a wrong
label and a `../` path (each must be refused with the file and line named), and
one with a listed file that is missing (a recorded problem, the rest kept).

`big_video(path, frames)` writes the 3840x2160 video used for the memory bound.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from testkit.media import face_video

GOOD_FRAMES = 6


@dataclass
class Item:
    relpath: str                 # relative to the corpus root
    kind: str                    # what it is
    statuses: set                # acceptable face_videos.status values
    good: bool = False           # a clean video with a face: must come out "ok" with crops
    catalogued: bool = True      # the catalog lists it as a video
    notes: list = field(default_factory=list)


def _truncate(src: Path, dst: Path, keep: float) -> None:
    data = src.read_bytes()
    dst.write_bytes(data[: max(1, int(len(data) * keep))])


def _mp4(path: Path, n_frames: int = 12, size=(320, 240)) -> Path:
    """An MPEG-4 Part 2 .mp4 through OpenCV's bundled FFmpeg (moov atom written at the end)."""
    import cv2

    from testkit.media import astronaut, place

    W, H = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (W, H))
    if not writer.isOpened():
        return face_video(path.with_suffix(".avi"), size=size, n_frames=n_frames)
    img = astronaut()
    for i in range(n_frames):
        canvas = np.full((H, W, 3), 110, np.uint8)
        place(canvas, img, 90, W / 2 + 4 * np.sin(i / 3), H * 0.45)
        writer.write(cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def _plain_video(path: Path, n_frames: int, size=(320, 240)) -> Path:
    """A smooth gradient that moves: a readable video with no face in it."""
    import cv2

    W, H = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (W, H))
    for i in range(n_frames):
        g = (np.linspace(30, 220, W)[None, :] + 3 * i) % 256
        writer.write(np.repeat(np.repeat(g[:, :, None], H, 0), 3, 2).astype(np.uint8))
    writer.release()
    return path


def big_video(path: Path, frames: int = 3) -> Path:
    """3840x2160 MJPG AVI with a face: ~25 MB per decoded frame."""
    return face_video(path, size=(3840, 2160), n_frames=frames, face_px=700)


def make_bad_corpus(root: Path, big_frames: int = 3) -> dict[str, Item]:
    """Write the corpus under `root`; returns relpath -> Item (symlink loop and unreadable notes included)."""
    import cv2

    from testkit.media import astronaut

    root = Path(root)
    real, fake = root / "real", root / "fake" / "swapish"
    real.mkdir(parents=True, exist_ok=True)
    fake.mkdir(parents=True, exist_ok=True)
    items: dict[str, Item] = {}
    ok_or_short = {"ok", "too_short", "unreadable", "no_face"}

    def add(rel: str, kind: str, statuses, **kw) -> None:
        items[rel] = Item(rel, kind, set(statuses), **kw)

    # good videos: must be unaffected by their bad neighbours
    face_video(real / "good_a.avi", size=(320, 240), n_frames=GOOD_FRAMES, face_px=110)
    add("real/good_a.avi", "good video", {"ok"}, good=True)
    face_video(fake / "good_b.avi", size=(320, 240), n_frames=GOOD_FRAMES, face_px=100, centre=(0.45, 0.5))
    add("fake/swapish/good_b.avi", "good video", {"ok"}, good=True)
    odd = real / "Ordner mit Leerzeichen ü ñ 日本"
    face_video(odd / "clip ü ñ 日本 (1).avi", size=(320, 240), n_frames=GOOD_FRAMES, face_px=110)
    add("real/Ordner mit Leerzeichen ü ñ 日本/clip ü ñ 日本 (1).avi", "spaces and non-ASCII in the path", {"ok"},
        good=True)
    sql = "it's \"quoted\"; DROP TABLE videos;--.avi"  # SQL text in a file name: must reach the store as data
    face_video(real / sql, size=(320, 240), n_frames=GOOD_FRAMES, face_px=105)
    add(f"real/{sql}", "quotes and SQL in the file name", {"ok"}, good=True)
    face_video(real / "grey.avi", size=(320, 240), n_frames=GOOD_FRAMES, face_px=110, grey=True)
    add("real/grey.avi", "grey-scale video", {"ok"}, good=True)

    # broken files
    (real / "zero.mp4").write_bytes(b"")
    add("real/zero.mp4", "zero-byte file", {"unreadable"})
    src = face_video(root / ".src_long.avi", size=(320, 240), n_frames=20, face_px=110)
    _truncate(src, real / "truncated.avi", 0.45)
    add("real/truncated.avi", "truncated AVI", ok_or_short)
    mp4 = _mp4(root / ".src_long.mp4")
    if mp4.suffix == ".mp4":
        _truncate(mp4, fake / "truncated.mp4", 0.5)
        add("fake/swapish/truncated.mp4", "truncated MP4 (moov atom cut off)", ok_or_short)
    src.unlink()
    mp4.unlink(missing_ok=True)
    (fake / "random.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    add("fake/swapish/random.mp4", "random bytes named .mp4", {"unreadable", "too_short"})
    ok, png = cv2.imencode(".png", cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR))
    (fake / "image.mp4").write_bytes(png.tobytes())
    add("fake/swapish/image.mp4", "PNG renamed to .mp4", ok_or_short)
    face_video(real / "one_frame.avi", size=(320, 240), n_frames=1, face_px=110)
    add("real/one_frame.avi", "one-frame video", {"ok"})
    big_video(real / "big_4k.avi", frames=big_frames)
    add("real/big_4k.avi", "3840x2160 frames", {"ok", "no_face"})
    _plain_video(real / "noface.avi", n_frames=GOOD_FRAMES)
    add("real/noface.avi", "no face in any frame", {"no_face"})

    # special files
    os.symlink(root / "does-not-exist.mp4", real / "dangling.mp4")
    add("real/dangling.mp4", "dangling symlink", {"unreadable"})
    os.mkfifo(real / "fifo.mp4")
    add("real/fifo.mp4", "FIFO named .mp4 (special file)", {"unreadable"})
    os.symlink(real, real / "loop", target_is_directory=True)  # real/loop -> real: a symlink loop
    if os.geteuid() != 0:
        locked = real / "locked.avi"
        face_video(locked, size=(160, 120), n_frames=2, face_px=60)
        locked.chmod(0)
        add("real/locked.avi", "unreadable file (chmod 000)", {"unreadable"})
    return items


def unlock(root: Path) -> None:
    """Give unreadable files their permissions back (so tmp_path can be cleaned)."""
    for p in Path(root).rglob("*.avi"):
        try:
            if not p.is_symlink() and stat.S_IMODE(p.stat().st_mode) == 0:
                p.chmod(0o644)
        except OSError:
            pass


MANIFESTS = {
    # name: (csv text, substring the error must contain)
    "missing_columns.csv": ("file,kind\nreal/good_a.avi,real\n", "needs columns path,label"),
    "wrong_label.csv": ("path,label\nreal/good_a.avi,real\nreal/grey.avi,bogus\n", "line 3"),
    "escape.csv": ("path,label\nreal/good_a.avi,real\n../outside.avi,fake\n", "escapes the database root"),
    "absolute.csv": ("path,label\n/etc/passwd,fake\n", "escapes the database root"),
}


def make_bad_manifests(root: Path) -> dict[str, tuple[Path, str]]:
    """CSV manifests beside a small video folder; name -> (path, expected error text)."""
    root = Path(root)
    out = {}
    for name, (text, expect) in MANIFESTS.items():
        p = root / name
        p.write_text(text, encoding="utf-8")
        out[name] = (p, expect)
    missing = root / "missing_file.csv"
    missing.write_text("path,label\nreal/good_a.avi,real\nreal/not_there.avi,fake\n", encoding="utf-8")
    out["missing_file.csv"] = (missing, "")
    return out
