"""Frames as input, end to end (issue 18 items 5-6): DeepfakeBench data and frame folders catalogued and
extracted, escapes through a frame folder refused, uploaded images kept together as one video."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.catalog_trees import DFB_MACHINE, make_deepfakebench

pytestmark = pytest.mark.timeout(300)


def _png(path: Path, rgb: np.ndarray) -> Path:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def _face_frame(i: int) -> np.ndarray:
    from testkit.media import astronaut, place

    return place(np.full((360, 640, 3), 110, np.uint8), astronaut(), 150, 320 + 8 * np.sin(i / 3), 160)


def test_deepfakebench_is_catalogued_and_its_crops_extracted_without_detection(tmp_path, workspace, capfd):
    from engine.cli import main
    from engine.config import load_config
    from engine.faces.extract import CROP_INPUT
    from engine.store.faces import face_rows, face_video_rows

    root = tmp_path / "rgb"
    jsons = make_deepfakebench(root)
    cfg_path = tmp_path / "exp.toml"
    cfg_path.write_text(f"""
[sources]
superset = ["dfb"]

[sources.dfb]
adapter = "deepfakebench"
root = "{root.as_posix()}"
json = "{(jsons / 'FF-DF.json').as_posix()}"
path_prefix_from = "{DFB_MACHINE}"

[faces]
frames_per_video = 2
crop_size = 32
thumbnail_size = 16
""")
    assert main(["catalog", "show", "--config", str(cfg_path)]) == 0
    out = capfd.readouterr().out
    assert "several_splits" in out and "used in train only" in out  # the FF-real listed in two splits
    assert "recorded 24 videos" in out
    assert main(["faces", "--config", str(cfg_path), "--workers", "1"]) == 0
    assert "24 videos, 0 already done, 24 processed" in capfd.readouterr().out
    cfg = load_config(cfg_path)
    key = cfg.faces.settings_key()
    store = workspace.store()
    status = face_video_rows(store, key)
    assert set(status.status) == {"ok"} and set(status.n_frames) == {3} and set(status.n_sampled) == {2}
    faces = face_rows(store, key)
    assert faces.num_rows == 48 and set(faces.column("detector").to_pylist()) == {CROP_INPUT}
    assert set(faces.column("frame_index").to_pylist()) == {0, 2}  # 2 of 3 frames, evenly, in name order
    from engine.faces import read_crop

    crop = read_crop(workspace.root / faces.column("crop_path")[0].as_py())
    assert crop.shape == (32, 32, 3)  # the 20x24 crop squared (black sides) and resized: not re-detected
    assert crop[:, 0].max() == 0 and crop[:, -1].max() == 0
    # detecting in them instead is another face setting; the option is checked at load
    assert dataclasses.replace(cfg.faces, pre_cropped="detect").settings_key() != key
    from data_catalog.errors import ConfigError

    bad = tmp_path / "bad.toml"
    bad.write_text('[faces]\npre_cropped = "maybe"\n')
    with pytest.raises(ConfigError, match=r"\[faces\] pre_cropped: expected one of use, detect"):
        load_config(bad)
    assert main(["faces", "--config", str(cfg_path), "--workers", "1"]) == 0
    assert "24 already done, 0 processed" in capfd.readouterr().out


def test_a_frame_folder_is_one_video_sampled_in_name_order_and_detected(tmp_path, workspace, blazeface_models):
    from engine.catalog import record_catalog
    from engine.config import load_config
    from engine.faces import extract_for_config
    from engine.store.faces import face_rows, face_video_rows

    root = tmp_path / "set"
    clip = root / "fake" / "clip"
    for i in (0, 1, 3, 4):
        _png(clip / f"frame{i}.png", _face_frame(i))
    (clip / "frame2.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)  # damaged
    (clip / "frame10.png").write_bytes((clip / "frame4.png").read_bytes())   # natural order: last
    (root / "fake" / "anim.gif").write_bytes(b"GIF89a")
    cfg_path = tmp_path / "exp.toml"
    cfg_path.write_text(f"""
[sources]
cross_db = ["set"]
[sources.set]
adapter = "generic"
root = "{root.as_posix()}"
[faces]
frames_per_video = 3
crop_size = 48
tiling = "off"
""")
    cfg = load_config(cfg_path)
    report = record_catalog(cfg, workspace)
    (rec,) = report.records
    assert rec.relpath == "fake/clip" and [p.name for p in rec.frames][-2:] == ["frame4.png", "frame10.png"]
    assert [p.kind for p in report.scans[0].result.problems] == ["missing_folder", "refused_image"]  # no real/
    summary, _ = extract_for_config(cfg, workspace, executor="inline", progress=False)
    assert summary.counts["ok"] == 1
    (row,) = face_video_rows(workspace.store(), summary.settings_key).itertuples()
    # 3 of 6 frames in natural order: frame0, frame2 (damaged: noted), frame10
    assert (row.n_frames, row.n_sampled, row.n_faces) == (6, 2, 2)
    assert "1 of 3 sampled frames unreadable (frame frame2.png: not an image" in row.reason
    faces = face_rows(workspace.store(), summary.settings_key)
    assert faces.column("frame_index").to_pylist() == [0, 5]
    assert all(d.startswith("short_range") for d in faces.column("detector").to_pylist())


def test_escapes_through_a_frame_folder_are_refused(tmp_path):
    from data_catalog import paper_taxonomy
    from engine.analysis import AnalysisError, collect_videos
    from engine.faces import FinderSpec, VideoTask, process_video

    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    secret = _png(outside / "secret.png", np.zeros((8, 8, 3), np.uint8))
    _png(outside / "dir" / "1.png", np.zeros((8, 8, 3), np.uint8))
    case = allowed / "case"
    _png(case / "ok" / "1.png", np.zeros((8, 8, 3), np.uint8))
    _png(case / "mixed" / "1.png", np.zeros((8, 8, 3), np.uint8))
    (case / "mixed" / "2.png").symlink_to(secret)                   # one frame links out
    (case / "linked").symlink_to(outside / "dir", target_is_directory=True)  # the whole folder links out
    inp = collect_videos(case, "case", None, paper_taxonomy(), roots=[str(allowed)])
    assert [r.relpath for r in inp.records] == ["case/ok"]
    refused = {(p.kind, Path(p.path).name) for p in inp.problems}
    assert refused == {("outside_allowed_roots", "2.png"), ("outside_allowed_roots", "linked")}
    # the face stage checks every frame again (the decoder's rule): the whole video is refused
    frames = (str(case / "mixed" / "1.png"), str(case / "mixed" / "2.png"))
    res = process_video(VideoTask("v", str(case / "mixed"), frames=frames, face_crops=True,
                                  allowed_roots=(str(allowed),)), FinderSpec(()))
    assert res.status == "unreadable" and "outside the allowed roots" in res.reason and not res.faces
    res = process_video(VideoTask("v", str(case / "ok"), frames=(str(case / "ok" / "1.png"),), face_crops=True,
                                  crop_size=16, allowed_roots=(str(allowed),)), FinderSpec(()))
    assert res.status == "ok" and res.n_faces == 1
    # one image given alone is a one-frame video; a GIF is refused with the reason
    (single,) = collect_videos(case / "ok" / "1.png", None, None, paper_taxonomy()).records
    assert single.frames == (case / "ok" / "1.png",) and single.relpath == "1/1.png"
    (case / "a.gif").write_bytes(b"GIF89a")
    with pytest.raises(AnalysisError, match="GIF"):
        collect_videos(case / "a.gif", None, None, paper_taxonomy())


def test_uploaded_images_are_one_video_beside_the_uploaded_videos(workspace):
    import cv2

    from data_catalog import paper_taxonomy
    from dashboard.uploads import save_uploads
    from engine.analysis import collect_videos

    png = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes()
    jpg = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))[1].tobytes()
    avi = b"RIFF\x00\x00\x00\x00AVI LIST" + b"\x00" * 64
    files = [("f10.png", png), ("f2.jpg", jpg), ("f1.png", png), ("clip.avi", avi), ("anim.gif", b"GIF89a"),
             ("fake.png", b"not an image")]
    res = save_uploads(workspace, "case", files, max_upload_mb=1)
    assert sorted(res.saved) == ["clip.avi", "frames/f1.png", "frames/f10.png", "frames/f2.jpg"]
    assert len(res.refused) == 2 and all("neither a video" in r for r in res.refused)
    inp = collect_videos(res.folder, "case", None, paper_taxonomy())
    by_rel = {r.relpath: r for r in inp.records}
    assert set(by_rel) == {"case/clip.avi", "case/frames"}
    assert [p.name for p in by_rel["case/frames"].frames] == ["f1.png", "f2.jpg", "f10.png"]


def test_a_frame_over_the_pixel_limit_is_a_reason_not_a_crash(tmp_path):
    """OpenCV raises (not returns None) above OPENCV_IO_MAX_IMAGE_PIXELS, which engine.faces sets to
    MAX_PIXELS at import; a small limit in a fresh process stands in for a decompression bomb."""
    import os
    import subprocess
    import sys

    import engine.faces.frames as frames

    assert int(os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"]) <= frames.MAX_PIXELS
    big = _png(tmp_path / "big" / "1.png", np.zeros((20, 20, 3), np.uint8))
    code = ("from engine.faces import FinderSpec, VideoTask, process_video\n"
            f"r = process_video(VideoTask('v', {str(big.parent)!r}, frames=({str(big)!r},), face_crops=True), "
            "FinderSpec(()))\nprint(r.status, '|', r.reason)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env=os.environ | {"OPENCV_IO_MAX_IMAGE_PIXELS": "100"})
    assert out.stdout.startswith("unreadable | 1 of 1 sampled frames unreadable (frame 1.png: not an image OpenCV "
                                 "can decode (damaged, wrong format or over 100 pixels))"), out.stdout + out.stderr
