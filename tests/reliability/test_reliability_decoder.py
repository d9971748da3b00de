"""What the video decoder opens (issue 19 items 2 and 10; `engine.faces.decoder`).

- a playlist/concat file named `.mp4` cannot make FFmpeg read a file outside the allowed roots
  (refused by its leading bytes, and by FFmpeg's format whitelist when a list escapes the sniff);
- every opened path is checked with symlinks resolved; `%` in a name is not an image pattern;
- an audio-only MP4 / WebM is "no video stream", not "wrong format or damaged header";
- variable-frame-rate videos are sampled evenly in time, constant-rate ones exactly as before.

The test media are made here: MP4 boxes and Matroska elements written by hand (no ffmpeg binary
or PyAV in the environment), frames by OpenCV's own writer.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest

from engine.faces import decoder
from engine.faces.extract import FinderSpec, VideoTask, process_video

FFCONCAT = b"ffconcat version 1.0\nfile inner\n"


# --- test media ---------------------------------------------------------------------------
def _box(typ: bytes, *parts: bytes) -> bytes:
    body = b"".join(parts)
    return struct.pack(">I4s", len(body) + 8, typ) + body


def _full(typ: bytes, flags: int, *parts: bytes) -> bytes:
    return _box(typ, struct.pack(">I", flags), *parts)


_MATRIX = struct.pack(">9i", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


def audio_only_mp4(path: Path, seconds: float = 0.5, rate: int = 8000) -> Path:
    """An MP4 with one PCM ('sowt') audio track and no video track."""
    n, ms = int(seconds * rate), int(seconds * 1000)
    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isommp41")
    mdat = _box(b"mdat", b"\x00\x00" * n)
    sowt = _box(b"sowt", b"\x00" * 6, struct.pack(">HHHIHHHHI", 1, 0, 0, 0, 1, 16, 0, 0, rate << 16))
    stbl = _box(b"stbl", _full(b"stsd", 0, struct.pack(">I", 1), sowt), _full(b"stts", 0, struct.pack(">III", 1, n, 1)),
                _full(b"stsc", 0, struct.pack(">IIII", 1, 1, n, 1)), _full(b"stsz", 0, struct.pack(">II", 2, n)),
                _full(b"stco", 0, struct.pack(">II", 1, len(ftyp) + 8)))
    minf = _box(b"minf", _full(b"smhd", 0, b"\x00" * 4),
                _box(b"dinf", _full(b"dref", 0, struct.pack(">I", 1), _full(b"url ", 1))), stbl)
    mdia = _box(b"mdia", _full(b"mdhd", 0, struct.pack(">IIIIHH", 0, 0, rate, n, 0x55C4, 0)),
                _full(b"hdlr", 0, b"\x00" * 4, b"soun", b"\x00" * 12, b"SoundHandler\x00"), minf)
    tkhd = _full(b"tkhd", 3, struct.pack(">IIIII", 0, 0, 1, 0, ms), b"\x00" * 8, struct.pack(">HHHH", 0, 0, 0x100, 0),
                 _MATRIX, b"\x00" * 8)
    mvhd = _full(b"mvhd", 0, struct.pack(">IIIIIH", 0, 0, 1000, ms, 0x10000, 0x100), b"\x00" * 10, _MATRIX,
                 b"\x00" * 24, struct.pack(">I", 2))
    path.write_bytes(ftyp + mdat + _box(b"moov", mvhd, _box(b"trak", tkhd, mdia)))
    return path


def _el(eid: int, data: bytes) -> bytes:
    return eid.to_bytes((eid.bit_length() + 7) // 8, "big") + b"\x01" + len(data).to_bytes(7, "big") + data


def audio_only_webm(path: Path) -> Path:
    """A Matroska/WebM file whose only track is PCM audio."""
    u = lambda v: v.to_bytes(1, "big")  # noqa: E731
    header = _el(0x1A45DFA3, _el(0x4286, u(1)) + _el(0x42F7, u(1)) + _el(0x42F2, u(4)) + _el(0x42F3, u(8))
                 + _el(0x4282, b"matroska") + _el(0x4287, u(2)) + _el(0x4285, u(2)))
    info = _el(0x1549A966, _el(0x2AD7B1, (1000000).to_bytes(3, "big")) + _el(0x4489, struct.pack(">d", 500.0)))
    audio = _el(0xE1, _el(0xB5, struct.pack(">d", 8000.0)) + _el(0x9F, u(1)) + _el(0x6264, u(16)))
    track = _el(0xAE, _el(0xD7, u(1)) + _el(0x73C5, u(1)) + _el(0x83, u(2)) + _el(0x86, b"A_PCM/INT/LIT") + audio)
    path.write_bytes(header + _el(0x18538067, info + _el(0x1654AE6B, track)))
    return path


def _parse(data: bytes) -> list:
    out, i = [], 0
    while i + 8 <= len(data):
        size, typ = struct.unpack(">I4s", data[i:i + 8])
        size = size or len(data) - i
        body = data[i + 8:i + size]
        nested = typ in (b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts")
        out.append([typ, _parse(body) if nested else bytearray(body)])
        i += size
    return out


def _serialise(boxes: list) -> bytes:
    return b"".join(_box(t, _serialise(b) if isinstance(b, list) else bytes(b)) for t, b in boxes)


def _find(boxes: list, *path: bytes):
    for typ, body in boxes:
        if typ == path[0]:
            return body if len(path) == 1 else _find(body, *path[1:])
    return None


def face_mp4(path: Path, n_frames: int, size=(320, 240)) -> Path:
    """A constant-rate MP4 (25 fps, OpenCV's mp4v writer) of the astronaut's face."""
    import cv2

    from testkit.media import astronaut, place

    W, H = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (W, H))
    assert writer.isOpened()
    img = astronaut()
    for i in range(n_frames):
        frame = place(np.full((H, W, 3), 110, np.uint8), img, 110, W / 2 + 6 * np.sin(i / 3), 0.45 * H)
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def make_vfr(path: Path, durations: list[int]) -> Path:
    """Rewrite a one-track MP4 written by OpenCV (moov after mdat) so that frame i lasts
    durations[i] units of the media timescale: its `stts` table, and the durations that follow."""
    top = _parse(path.read_bytes())
    moov = _find(top, b"moov")
    trak = _find(moov, b"trak")
    mvhd, mdhd = _find(moov, b"mvhd"), _find(trak, b"mdia", b"mdhd")
    runs: list[list[int]] = []
    for d in durations:
        if runs and runs[-1][1] == d:
            runs[-1][0] += 1
        else:
            runs.append([1, d])
    for box in _find(trak, b"mdia", b"minf", b"stbl"):
        if box[0] == b"stts":
            box[1] = bytearray(struct.pack(">II", 0, len(runs)) + b"".join(struct.pack(">II", *r) for r in runs))
    total = sum(durations)
    movie_total = round(total * struct.unpack(">I", mvhd[12:16])[0] / struct.unpack(">I", mdhd[12:16])[0])
    mdhd[16:20] = struct.pack(">I", total)
    mvhd[16:20] = struct.pack(">I", movie_total)
    _find(trak, b"tkhd")[20:24] = struct.pack(">I", movie_total)
    elst = _find(trak, b"edts", b"elst")
    if elst is not None:
        elst[8:12] = struct.pack(">I", movie_total)
    path.write_bytes(_serialise(top))
    return path


def _timestamps(path: Path) -> list[float]:
    cap = decoder.open_capture(str(path))
    try:
        return decoder.frame_timestamps(cap)
    finally:
        cap.release()


@pytest.fixture(scope="module")
def spec(blazeface_models):
    return FinderSpec(tuple(sorted((k, v.path) for k, v in blazeface_models.items())))


@pytest.fixture
def escape(tmp_path):
    """An allowed root holding a 32-byte ffconcat list named .mp4 and a symlink `inner` to a video outside."""
    from testkit.media import face_video

    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    secret = face_video(outside / "secret.avi", size=(320, 240), n_frames=8, face_px=110)
    os.symlink(secret, root / "inner")
    (root / "clip.mp4").write_bytes(FFCONCAT)
    return root, secret


# --- item 2: the demuxer as a way out of the allowed roots -------------------------------------
def test_unpatched_ffmpeg_would_follow_the_concat_list(escape):
    """The reproduction: OpenCV's FFmpeg, without the decoder's options, reads the outside video."""
    import cv2

    root, _ = escape
    saved = os.environ.pop("OPENCV_FFMPEG_CAPTURE_OPTIONS", None)
    try:
        cap = cv2.VideoCapture(str(root / "clip.mp4"), cv2.CAP_FFMPEG)
        n = 0
        while cap.grab():
            n += 1
        cap.release()
    finally:
        if saved is not None:
            os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = saved
    assert n == 8


def test_concat_list_inside_the_roots_is_refused_with_a_reason(escape, spec):
    root, _ = escape
    res = process_video(VideoTask("v", str(root / "clip.mp4"), frames_per_video=4, crop_size=32,
                                  allowed_roots=(str(root),)), spec)
    assert (res.status, res.n_faces) == ("unreadable", 0)
    assert res.reason.startswith("refused: an ffconcat list, not a video")


def test_ffmpeg_itself_refuses_lists_the_sniff_would_miss(escape):
    """The format whitelist is the enforcement: opened past the sniff, the list still fails."""
    root, secret = escape
    cap = decoder.open_capture(str(root / "clip.mp4"))
    assert not cap.isOpened()
    cap.release()
    assert os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] == decoder.CAPTURE_OPTIONS
    assert "protocol_whitelist;file" in decoder.CAPTURE_OPTIONS
    assert "concat" not in decoder.SAFE_FORMATS and "hls" not in decoder.SAFE_FORMATS
    cap = decoder.open_capture(str(secret))
    assert cap.isOpened()  # plain videos still open
    cap.release()


def test_symlinks_are_resolved_before_the_roots_check(escape, spec):
    root, secret = escape
    res = process_video(VideoTask("v", str(root / "inner"), frames_per_video=4, crop_size=32,
                                  allowed_roots=(str(root),)), spec)
    assert res.status == "unreadable"
    assert res.reason == f"refused: its real path {secret} is outside the allowed roots"
    ok = process_video(VideoTask("v", str(root / "inner"), frames_per_video=4, crop_size=32,
                                 allowed_roots=(str(secret.parent),)), spec)
    assert ok.status == "ok" and ok.n_faces == 4


def _frame_count(path: str) -> int:
    cap = decoder.open_capture(path)
    n = 0
    while cap.grab():
        n += 1
    cap.release()
    return n


def test_a_folder_swapped_after_the_check_does_not_change_the_file_decoded(tmp_path):
    """The check-then-open race: a folder inside the root swapped for a symlink to an outside folder after
    the check. The decoder reads the checked file through its descriptor (/proc/self/fd/N), not the
    outside one that the path now names; a check made after the swap refuses it."""
    from testkit.media import face_video

    root, outside = tmp_path / "root", tmp_path / "outside"
    face_video(root / "cases" / "clip.avi", size=(160, 120), n_frames=5, face_px=60)
    face_video(outside / "clip.avi", size=(160, 120), n_frames=9, face_px=60)
    with decoder.checked_file(str(root / "cases" / "clip.avi"), (str(root),)) as checked:
        os.rename(root / "cases", root / "cases-before")
        os.symlink(outside, root / "cases")  # the path now leads outside the root
        assert _frame_count(checked.path) == 5  # still the checked file (9 frames would be the outside one)
        assert checked.read()[:4] == (root / "cases-before" / "clip.avi").read_bytes()[:4]
    with pytest.raises(decoder.VideoRefused, match="outside the allowed roots"):
        decoder.checked_file(str(root / "cases" / "clip.avi"), (str(root),))


def test_a_file_opened_through_a_swapped_path_is_refused(tmp_path, monkeypatch):
    """Where the swap lands between resolving the path and opening it: a symlink in the last place is not
    followed (O_NOFOLLOW), and a swapped folder is caught by checking the file actually opened."""
    from testkit.media import face_video

    root, outside = tmp_path / "root", tmp_path / "outside"
    face_video(outside / "clip.avi", size=(160, 120), n_frames=3, face_px=60)
    (root / "sub").mkdir(parents=True)
    os.symlink(outside / "clip.avi", root / "link.avi")
    os.symlink(outside, root / "sub" / "dir")
    resolved_too_early = lambda p: p  # noqa: E731  (the path as it was when it was resolved)
    monkeypatch.setattr(decoder.os.path, "realpath", resolved_too_early)
    with pytest.raises(decoder.VideoRefused, match="cannot read the file"):
        decoder.checked_file(str(root / "link.avi"), (str(root),))
    with pytest.raises(decoder.VideoRefused, match="its path changed while it was checked"):
        decoder.checked_file(str(root / "sub" / "dir" / "clip.avi"), (str(root),))


@pytest.mark.parametrize("head, kind", [
    (b"#EXTM3U\n#EXT-X-VERSION:3\nseg0.ts\n", "an M3U/HLS playlist"),
    (b"\xef\xbb\xbfffconcat version 1.0\n", "an ffconcat list"),
    (b"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\n", "an SDP session"),
    (b'<?xml version="1.0"?><MPD>', "an XML file"),
    (b"[playlist]\nFile1=a.mp4\n", "a PLS playlist"),
    (b"just some words\n", "a text file"),
])
def test_text_and_playlists_are_refused_by_their_leading_bytes(head, kind):
    assert decoder.sniff_refusal(head).startswith(f"refused: {kind}")


def test_real_containers_pass_the_sniff(tmp_path):
    from testkit.media import face_video

    avi = face_video(tmp_path / "a.avi", size=(64, 48), n_frames=2, face_px=30)
    mp4 = face_mp4(tmp_path / "a.mp4", 2, size=(64, 48))
    for p in (avi, mp4, audio_only_mp4(tmp_path / "s.mp4"), audio_only_webm(tmp_path / "s.webm")):
        assert decoder.sniff_refusal(p.read_bytes()[:64]) is None, p


def test_a_percent_in_the_name_is_the_file_itself(tmp_path, spec):
    """`clip%03d.avi` is one file, not an image-sequence pattern (OpenCV's CAP_IMAGES is never used)."""
    from testkit.media import face_video

    literal = face_video(tmp_path / "clip%03d.avi", size=(320, 240), n_frames=5, face_px=110)
    face_video(tmp_path / "clip001.avi", size=(320, 240), n_frames=9, noface=True)
    res = process_video(VideoTask("v", str(literal), frames_per_video=4, crop_size=32,
                                  allowed_roots=(str(tmp_path),)), spec)
    assert (res.status, res.n_frames, res.n_faces) == ("ok", 5, 4)


def test_analysis_records_the_refusal_per_video(escape, workspace, blazeface_models):
    """The analysis path: the set's videos confined to the roots, the roots handed to the decoder,
    the refusal recorded as the video's face status with its reason."""
    from engine.analysis import collect_videos
    from engine.config import FacesSection
    from engine.faces import extract_faces

    root, _ = escape
    inp = collect_videos(root, "escape", None, None, roots=[str(root)])
    assert [r.relpath for r in inp.records] == ["escape/clip.mp4"] and inp.allowed_roots == (str(root),)
    summary = extract_faces(workspace, inp.records, FacesSection(frames_per_video=4, crop_size=32), progress=False,
                            executor="inline", models=blazeface_models, allowed_roots=inp.allowed_roots)
    assert summary.counts["unreadable"] == 1 and summary.counts["ok"] == 0
    row = workspace.store().df("SELECT status, reason, n_faces FROM face_videos").iloc[0]
    assert row.status == "unreadable" and row.reason.startswith("refused: an ffconcat list") and row.n_faces == 0


def test_analyze_hands_its_roots_to_the_decoder(escape, workspace, monkeypatch):
    import engine.faces as faces_mod
    from engine import analysis as an
    from tests.helpers.analyze_fixture import RUN_ID, build_store

    root, _ = escape
    build_store(workspace.root)
    seen = {}

    def capture(ws, videos, faces, **kw):
        seen.update(kw)
        raise RuntimeError("stop after the faces call")

    monkeypatch.setattr(faces_mod, "extract_faces", capture)
    with pytest.raises(Exception, match="stop after the faces call"):
        an.analyze(workspace, None, RUN_ID, root, name="escape", roots=[str(root)])
    assert seen["allowed_roots"] == (str(root),)


# --- item 10: no video stream -------------------------------------------------------------------
@pytest.mark.parametrize("make", [audio_only_mp4, audio_only_webm], ids=["mp4", "webm"])
def test_audio_only_file_is_no_video_stream(tmp_path, spec, make):
    path = make(tmp_path / ("sound" + (".mp4" if make is audio_only_mp4 else ".webm")))
    assert decoder.container_tracks(str(path)) == ["soun"]
    res = process_video(VideoTask("v", str(path), frames_per_video=4, crop_size=32), spec)
    assert (res.status, res.reason) == ("unreadable", "no video stream (the file holds only audio tracks)")


def test_damaged_files_keep_the_damaged_header_reason(tmp_path, spec):
    bad = tmp_path / "noise.mp4"
    bad.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)))
    res = process_video(VideoTask("v", str(bad), frames_per_video=4, crop_size=32), spec)
    assert res.status == "unreadable" and "wrong format or damaged header" in res.reason


# --- item 10: variable frame rate ---------------------------------------------------------------
def test_sample_by_time_spreads_samples_evenly_in_time():
    ts = [i * 20.0 for i in range(64)] + [1280.0 + 500.0 * k for k in range(1, 33)]
    idx = decoder.sample_by_time(ts, 15)
    times = np.asarray(ts)[idx]
    assert idx[0] == 0 and idx[-1] == len(ts) - 1
    assert (times < 1300).sum() <= 2                     # by index: 10 of 15 in the first 1.3 s
    assert (np.asarray(ts)[decoder.sample_indices(len(ts), 15)] < 1300).sum() >= 7
    assert np.diff(times).max() <= 1.5 * (ts[-1] - ts[0]) / 14
    assert decoder.sample_by_time(ts[:5], 15) == [0, 1, 2, 3, 4]


def test_vfr_video_is_sampled_by_timestamp(tmp_path, spec):
    """96 frames: 64 at 50 fps (1.28 s), then 32 of 0.5 s each: a 17.3 s clip."""
    path = make_vfr(face_mp4(tmp_path / "vfr.mp4", 96), [256] * 64 + [6400] * 32)  # timescale 12800
    ts = _timestamps(path)
    assert len(ts) == 96 and ts[64] == pytest.approx(1280) and ts[65] == pytest.approx(1780)
    assert not decoder.constant_rate(ts, 96 / 17.28)
    res = process_video(VideoTask("v", str(path), frames_per_video=15, crop_size=32), spec)
    assert res.status == "ok" and res.n_frames == 96
    frames = [f.frame_index for f in res.faces]
    assert frames == decoder.sample_by_time(ts, 15) and len(frames) == 15
    assert sum(ts[i] < 1300 for i in frames) <= 2


def test_constant_rate_videos_keep_index_sampling(tmp_path, spec):
    """A constant frame rate samples exactly `sample_indices` (the frames of earlier releases)."""
    path = face_mp4(tmp_path / "cfr.mp4", 40)
    ts = _timestamps(path)
    assert decoder.constant_rate(ts, 25.0) and len(ts) == 40
    res = process_video(VideoTask("v", str(path), frames_per_video=15, crop_size=32), spec)
    assert [f.frame_index for f in res.faces] == decoder.sample_indices(40, 15)
