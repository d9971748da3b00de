"""Face extraction: detector, sampling, cropping, bad input, resume — on real face footage."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from engine.config import FacesSection
from testkit.media import face_video, rotated_video, video_rows

pytestmark = pytest.mark.timeout(300)


def _finder(models, **kw):
    from engine.faces import FaceFinder

    return FaceFinder({n: m.path for n, m in models.items()}, **kw)


# --- pure geometry -------------------------------------------------------------------
def test_sample_indices_even_and_short_videos():
    from engine.faces import sample_indices

    assert sample_indices(300, 15) == [int(round(v)) for v in np.linspace(0, 299, 15)]
    assert sample_indices(300, 15)[0] == 0 and sample_indices(300, 15)[-1] == 299
    assert sample_indices(7, 15) == list(range(7))   # shorter than N: every frame
    assert sample_indices(0, 15) == []


def test_square_crop_enlarges_squares_and_pads():
    from engine.faces import Detection, square_crop

    frame = np.full((100, 200, 3), 200, np.uint8)
    det = Detection(x=0, y=10, w=40, h=20, score=0.9, detector="t")
    crop = square_crop(frame, det, scale=1.5, size=32)
    assert crop.shape == (32, 32, 3)
    # the 60x60 square centred on (20, 20) leaves the frame on the left and top: black padding there
    assert crop[0, 0].sum() == 0 and crop[-1, -1].sum() > 0


def test_tiles_cover_long_axis():
    from engine.faces.detector import tiles

    levels = tiles(1080, 1920)
    assert [len(level) for level in levels] == [3, 21]
    first = levels[0]
    assert all(side == 1080 for _, _, side in first)
    assert first[0][1] == 0 and first[-1][1] + 1080 == 1920  # covers both ends
    assert tiles(512, 512)[0][0][2] == 256  # near-square frames: only the finer grid


# --- the detector on real face footage ----------------------------------------------------
def test_detector_finds_astronaut_face(blazeface_models):
    from testkit.media import astronaut

    with _finder(blazeface_models, tiling="off") as f:
        det = f.find(astronaut())
    assert det is not None and det.score > 0.7 and det.detector == "short_range/whole"
    assert abs(det.x + det.w / 2 - 224) < 20 and abs(det.y + det.h / 2 - 130) < 25


@pytest.mark.parametrize("frame", [(1920, 1080), (720, 1280)])
def test_small_faces_found_by_tiling(blazeface_models, frame):
    from testkit.media import astronaut, place

    W, H = frame
    canvas = place(np.full((H, W, 3), 120, np.uint8), astronaut(), 90, 0.7 * W, 0.4 * H)
    with _finder(blazeface_models, tiling="off") as f:
        assert f.find(canvas) is None  # the short-range model alone misses a small face
    with _finder(blazeface_models, tiling="auto") as f:
        det = f.find(canvas)
    assert det is not None and "tiles" in det.detector
    assert abs(det.x + det.w / 2 - 0.7 * W) < 25 and abs(det.y + det.h / 2 - 0.4 * H) < 25


# --- whole videos --------------------------------------------------------------------------
def _extract(ws, rows, faces=None, **kw):
    from engine.faces import extract_faces

    kw.setdefault("executor", "inline")
    return extract_faces(ws, rows, faces or FacesSection(frames_per_video=6, crop_size=96), progress=False, **kw)


def _status(ws):
    df = ws.store().df("SELECT * FROM face_videos ORDER BY video_id")
    return {r.video_id: r for r in df.itertuples()}


def test_moving_face_video_crops_and_rows(workspace, blazeface_models, tmp_path):
    from engine.faces import read_crops
    from engine.store.faces import face_rows, settings_record, status_by_class, thumbnails, video_faces

    root = tmp_path / "db"
    paths = [face_video(root / "clip.avi", n_frames=30),
             face_video(root / "grey.avi", n_frames=30, grey=True),
             face_video(root / "short.avi", n_frames=4),
             face_video(root / "portrait.avi", size=(360, 640), n_frames=20, face_px=60, centre=(0.5, 0.7)),
             rotated_video(root / "rotated.mp4")]
    rows = video_rows(workspace.store(), "astro", root, paths)
    faces = FacesSection(frames_per_video=6, crop_size=96)
    summary = _extract(workspace, rows, faces)
    assert summary.processed == 5 and summary.counts["ok"] == 5, _status(workspace)
    st = _status(workspace)
    assert st["astro/clip.avi"].n_sampled == 6 and st["astro/clip.avi"].n_faces == 6
    assert st["astro/grey.avi"].n_faces == 6
    assert st["astro/short.avi"].n_sampled == 4 and "only 4 frames" in st["astro/short.avi"].reason
    assert st["astro/portrait.avi"].n_faces >= 5
    # rotation metadata is applied: frames come upright, 360 wide and 640 high, the face where it shows
    rot = st["astro/rotated.mp4"]
    assert (rot.width, rot.height, rot.n_faces) == (360, 640, 6)
    rbox = workspace.store().df("SELECT box_x + box_w / 2 AS cx, box_y + box_h / 2 AS cy FROM faces "
                                "WHERE video_id = 'astro/rotated.mp4'")
    assert (abs(rbox.cx - 180) < 25).all() and (abs(rbox.cy - 300) < 25).all()
    key = faces.settings_key()
    got = face_rows(workspace.store(), key, ["astro/clip.avi"]).to_pydict()
    assert got["frame_index"] == [0, 6, 12, 17, 23, 29]
    assert got["face_id"][0] == f"astro/clip.avi#0@{key}"
    assert all(p.startswith(f"faces/{key}/astro/clip.avi/") for p in got["crop_path"])
    crops = read_crops(workspace, got["crop_path"])
    assert crops.shape == (6, 96, 96, 3) and crops.dtype == np.uint8
    # The crop is centred on the face: the centre is skin-toned (red > blue), not the grey background.
    centre = crops[:, 40:56, 40:56].reshape(-1, 3).mean(0)
    assert centre[0] > centre[2] + 20
    boxes = video_faces(workspace.store(), "astro/clip.avi", key).to_pandas()
    assert boxes.frame_index.tolist() == got["frame_index"] and boxes.face_id.tolist() == got["face_id"]
    cx = boxes.box_x + boxes.box_w / 2
    assert (abs(cx - 320) < 30).all() and (abs(boxes.box_w - 150) < 40).all()
    thumb = bytes(boxes.thumbnail[0])
    assert thumbnails(workspace.store(), [got["face_id"][1], "no/such#0@x", got["face_id"][0]]) == [
        bytes(boxes.thumbnail[1]), b"", thumb]
    assert thumb[:2] == b"\xff\xd8" and len(thumb) < 8000  # a JPEG
    import cv2

    assert cv2.imdecode(np.frombuffer(thumb, np.uint8), cv2.IMREAD_COLOR).shape[:2] == (64, 64)
    assert (boxes.score > 0.5).all() and set(boxes.detector) <= {"short_range/whole"}
    params = settings_record(workspace.store(), key)
    assert params["frames_per_video"] == 6 and params["models"]["short_range"]["sha256"].startswith("bbff11ce")
    by_class = status_by_class(workspace.store(), key, ["astro/clip.avi", "astro/short.avi"])
    assert by_class.to_dict("records") == [{"class": "real", "status": "ok", "videos": 2, "faces": 10, "frames": 10}]


def test_bad_inputs_each_get_one_status_row(workspace, blazeface_models, tmp_path):
    """Process pool with 2 workers; every bad file ends as one row with a reason."""
    root = tmp_path / "db"
    good = face_video(root / "dir with spaces/vidéo été 1.avi", n_frames=12)
    zero = root / "zero.avi"
    zero.write_bytes(b"")
    text = root / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    full = face_video(root / "full.avi", n_frames=40)
    trunc = root / "truncated.avi"
    trunc.write_bytes(full.read_bytes()[: int(full.stat().st_size * 0.4)])
    noface = face_video(root / "noface.avi", n_frames=8, noface=True)
    several = face_video(root / "several.avi", n_frames=8, faces=[(70, (0.2, 0.4)), (160, (0.7, 0.5))])
    paths = [good, zero, text, trunc, noface, several]
    rows = video_rows(workspace.store(), "bad", root, paths)
    faces = FacesSection(frames_per_video=5, crop_size=64, tiling="off")
    summary = _extract(workspace, rows, faces, executor="process", workers=2)
    st = _status(workspace)
    assert len(st) == len(paths) == summary.processed
    assert st["bad/dir with spaces/vidéo été 1.avi"].status == "ok"
    assert st["bad/zero.avi"].status == "unreadable" and "zero-byte" in st["bad/zero.avi"].reason
    assert st["bad/notes.mp4"].status == "unreadable" and "not a video" in st["bad/notes.mp4"].reason
    t = st["bad/truncated.avi"]
    assert t.status == "ok" and "stream ended" in t.reason and 0 < t.n_frames < 40 and t.n_sampled == 5
    assert st["bad/noface.avi"].status == "no_face" and "no face" in st["bad/noface.avi"].reason
    assert st["bad/several.avi"].status == "ok"
    # several faces: one crop per frame, the most confident face
    n = workspace.store().scalar("SELECT count(*) FROM faces WHERE video_id = 'bad/several.avi'")
    assert n == st["bad/several.avi"].n_faces == 5
    assert summary.counts == {"ok": 3, "no_face": 1, "unreadable": 2, "too_short": 0, "error": 0}
    crop = workspace.store().scalar("SELECT crop_path FROM faces WHERE video_id LIKE 'bad/dir with%' LIMIT 1")
    assert (workspace.root / crop).is_file() and "vidéo été 1.avi" in crop


def test_resume_skips_and_new_settings_get_new_key(workspace, blazeface_models, tmp_path):
    root = tmp_path / "db"
    paths = [face_video(root / f"v{i}.avi", n_frames=10) for i in range(3)]
    rows = video_rows(workspace.store(), "r", root, paths)
    a = FacesSection(frames_per_video=4, crop_size=64)
    first = _extract(workspace, rows, a)
    assert first.processed == 3
    again = _extract(workspace, rows, a)
    assert again.processed == 0 and again.skipped == 3
    b = dataclasses.replace(a, crop_size=48)
    assert b.settings_key() != a.settings_key()
    second = _extract(workspace, rows, b)
    assert second.processed == 3
    store = workspace.store()
    counts = store.df("SELECT settings_key, count(*) AS n FROM faces GROUP BY 1").set_index("settings_key").n
    assert counts[a.settings_key()] == 12 and counts[b.settings_key()] == 12
    assert store.scalar("SELECT count(*) FROM face_settings") == 2
    # Errors are retried on the next run; finished statuses are not.
    store.execute("UPDATE face_videos SET status = 'error' WHERE video_id = 'r/v1.avi' AND settings_key = ?",
                  [a.settings_key()])
    retry = _extract(workspace, rows, a)
    assert retry.processed == 1 and retry.skipped == 2
    assert store.scalar("SELECT count(*) FROM faces WHERE settings_key = ?", [a.settings_key()]) == 12


def test_interrupted_run_leaves_no_duplicates(workspace, blazeface_models, tmp_path):
    """kill -9 in the middle of a batch's transaction (after its face rows, before its status
    rows): the batch vanishes whole, and the re-run completes without duplicates."""
    root = tmp_path / "db"
    paths = [face_video(root / f"k{i}.avi", n_frames=8) for i in range(4)]
    rows = video_rows(workspace.store(), "k", root, paths)
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from engine.config import FacesSection
        from engine.store import Store
        from engine.workspace import resolve_workspace
        from engine.faces import extract_faces
        ws = resolve_workspace({str(workspace.root)!r})
        real_insert = Store.insert
        calls = {{"n": 0}}
        def insert(self, table, data, replace=False, con=None):
            n = real_insert(self, table, data, replace=replace, con=con)
            if table == "face_videos":
                calls["n"] += 1
            if table == "faces" and calls["n"] == 2:
                os.kill(os.getpid(), signal.SIGKILL)   # inside the third batch's transaction
            return n
        Store.insert = insert
        rows = ws.store().df("SELECT video_id, path FROM videos ORDER BY video_id")
        extract_faces(ws, rows, FacesSection(frames_per_video=3, crop_size=48), executor="inline",
                      batch_videos=1, progress=False)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr[-2000:]
    store = workspace.store()
    faces = FacesSection(frames_per_video=3, crop_size=48)
    key = faces.settings_key()
    done = store.scalar("SELECT count(*) FROM face_videos WHERE settings_key = ?", [key])
    assert done == 2  # two whole batches committed, the third rolled back
    orphans = store.scalar("SELECT count(*) FROM faces f WHERE settings_key = ? AND NOT EXISTS "
                           "(SELECT 1 FROM face_videos v WHERE v.video_id = f.video_id AND v.settings_key = ?)",
                           [key, key])
    assert orphans == 0
    resumed = _extract(workspace, rows, faces)
    assert resumed.processed == 2 and resumed.skipped == 2
    assert store.scalar("SELECT count(*) FROM face_videos WHERE settings_key = ?", [key]) == 4
    assert store.scalar("SELECT count(*) FROM faces WHERE settings_key = ?", [key]) == 12
    assert store.scalar("SELECT count(DISTINCT face_id) FROM faces") == 12
    left = [p for p in (workspace.faces_dir / key).rglob("*") if p.name.startswith(".tmp-")]
    assert left == []


# --- models ----------------------------------------------------------------------------------
def test_model_resolution_order_and_errors(tmp_path, monkeypatch, blazeface_models):
    from engine.faces.model_files import ModelUnavailable, resolve_model

    real = Path(blazeface_models["short_range"].path)
    monkeypatch.delenv("DFATLAS_BLAZEFACE", raising=False)
    cache = tmp_path / "cache"
    # explicit (config) wins and its hash is recorded
    got = resolve_model("short_range", str(real), root=cache, allow_download=False, allow_wheel=False)
    assert got.source == "explicit" and got.sha256 == blazeface_models["short_range"].sha256
    # env var next
    monkeypatch.setenv("DFATLAS_BLAZEFACE", str(real))
    assert resolve_model("short_range", root=cache, allow_download=False, allow_wheel=False).source == "env"
    # an explicit path that is wrong is an error, not a silent fall-through
    monkeypatch.setenv("DFATLAS_BLAZEFACE", str(tmp_path / "nope.tflite"))
    with pytest.raises(ModelUnavailable, match="no such file"):
        resolve_model("short_range", root=cache, allow_download=False, allow_wheel=False)
    monkeypatch.delenv("DFATLAS_BLAZEFACE")
    # nothing anywhere: the message names every option
    with pytest.raises(ModelUnavailable) as err:
        resolve_model("short_range", root=cache, allow_download=False, allow_wheel=False)
    msg = str(err.value)
    for word in ("DFATLAS_BLAZEFACE", "blazeface_model", str(cache), "storage.googleapis.com", "pip download",
                 "dfatlas models fetch"):
        assert word in msg
    # a corrupt cached file is refused by its SHA-256
    cache.mkdir()
    (cache / "face_detection_short_range.tflite").write_bytes(real.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ModelUnavailable, match="SHA-256"):
        resolve_model("short_range", root=cache, allow_download=False, allow_wheel=False)
    # a good cached copy is used and says where it came from
    (cache / "face_detection_short_range.tflite").write_bytes(real.read_bytes())
    assert resolve_model("short_range", root=cache, allow_download=False, allow_wheel=False).source.startswith("cache")


def test_model_that_does_not_load_stops_the_run(workspace, blazeface_models, tmp_path, monkeypatch):
    """A broken model is a setup error (one clear message), not a per-video status."""
    from data_catalog.errors import AtlasError

    real = Path(blazeface_models["short_range"].path).read_bytes()
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(real[:8] + b"\x07" * 4000)  # TFLite header, garbage body
    root = tmp_path / "db"
    rows = video_rows(workspace.store(), "m", root, [face_video(root / "a.avi", n_frames=4)])
    faces = FacesSection(frames_per_video=2, crop_size=48, tiling="off", blazeface_model=str(bad))
    with pytest.raises(AtlasError, match="failed to load.*bad.tflite"):
        _extract(workspace, rows, faces, executor="process", workers=1)
    assert workspace.store().scalar("SELECT count(*) FROM face_videos") == 0


def test_search_plan_and_always_tiling(blazeface_models):
    from testkit.media import astronaut, place

    with _finder(blazeface_models, tiling="auto") as f:
        assert f.plan() == [("short_range", "whole"), ("short_range", "tiles"),
                            ("full_range", "whole"), ("full_range", "tiles")]
    with _finder(blazeface_models, tiling="off") as f:
        assert f.plan() == [("short_range", "whole")]
    canvas = place(np.full((1080, 1920, 3), 120, np.uint8), astronaut(), 300, 900, 500)
    with _finder(blazeface_models, tiling="always") as f:
        det = f.find(canvas)  # every pass runs; the best face wins
    assert det is not None and abs(det.x + det.w / 2 - 900) < 30


def test_read_crops_resizes(workspace, tmp_path):
    import cv2

    from engine.faces import read_crops

    for name, side in (("a.png", 32), ("b.png", 48)):
        img = np.zeros((side, side, 3), np.uint8)
        img[..., 2] = 255  # BGR red
        cv2.imwrite(str(workspace.root / name), img)
    x = read_crops(workspace, ["a.png", "b.png"], size=40)
    assert x.shape == (2, 40, 40, 3) and (x[..., 0] == 255).all()  # RGB order
    from data_catalog.errors import AtlasError

    with pytest.raises(AtlasError, match="different sizes"):
        read_crops(workspace, ["a.png", "b.png"])
    with pytest.raises(AtlasError, match="missing"):
        read_crops(workspace, ["nope.png"])


def test_worker_crash_is_pinned_on_its_video():
    """A worker that dies (a decoder segfault) costs only the video that killed it."""
    from engine.faces import FinderSpec, VideoTask
    from engine.faces.executors import run_pool
    from testkit.media import crash_on_request

    tasks = [VideoTask(f"v/{name}", "/nonexistent") for name in ("a", "crash", "b", "c")]
    results = {r.video_id: r for r in run_pool(tasks, FinderSpec(()), 2, fn=crash_on_request)}
    assert sorted(results) == sorted(t.video_id for t in tasks)
    assert results["v/crash"].status == "error" and "crashed" in results["v/crash"].reason
    assert all(r.status == "ok" for vid, r in results.items() if vid != "v/crash")
