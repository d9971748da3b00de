"""Face detection that refuses non-faces (issue 16): title cards end no_face, real faces stay.

Small generated cases; the rates on the frozen corpora are bench/bench_face_confirm.py's.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.config import FacesSection
from testkit.face_corpus import paste_face, real_face, sky, title_card, title_card_video
from testkit.media import face_video, video_rows

pytestmark = pytest.mark.timeout(300)


def _spec(models, confirm="landmarks"):
    from engine.faces import FinderSpec

    return FinderSpec(tuple(sorted((n, m.path) for n, m in models.items())), confirm=confirm)


def test_title_card_video_ends_no_face_with_a_reason(blazeface_models, tmp_path):
    from engine.faces import VideoTask, process_video

    path = title_card_video(tmp_path / "title.avi")
    task = VideoTask("title", str(path), frames_per_video=6, crop_size=64)
    before = process_video(task, _spec(blazeface_models, confirm="off"))
    assert before.status == "ok" and before.n_faces == 6  # the reported failure: letters taken for faces
    assert all("tiles" in f.detector for f in before.faces)
    after = process_video(task, _spec(blazeface_models))
    assert after.status == "no_face" and after.n_faces == 0
    assert after.n_refused >= 6
    assert after.reason.startswith(f"{after.n_refused} candidate faces in 6 frames refused by the confirmation check")


def test_face_leaving_the_frame_keeps_only_confirmed_faces(blazeface_models, tmp_path):
    from engine.faces import VideoTask, process_video

    path = title_card_video(tmp_path / "leaves.avi", face_frames=3)
    res = process_video(VideoTask("leaves", str(path), frames_per_video=6, crop_size=64), _spec(blazeface_models))
    assert res.status == "ok"
    assert [f.frame_index for f in res.faces] == [0, 1, 2]
    assert all(abs(f.box[0] + f.box[2] / 2 - 0.8 * 640) < 30 for f in res.faces)  # the face, not the text
    assert "face found in 3 of 6 sampled frames" in res.reason and "refused by the confirmation check" in res.reason


def test_small_real_photo_found_by_tiling_and_confirmed(blazeface_models):
    from engine.faces import FaceFinder

    img, box = real_face("grace_hopper")  # matplotlib's sample photo, public domain
    canvas = sky(np.random.default_rng(1), (1920, 1080))
    placed = paste_face(canvas, img, box, 110, 1300, 420)
    with FaceFinder({n: m.path for n, m in blazeface_models.items()}) as finder:
        found = finder.search(canvas)
        assert found.face is not None and "tiles" in found.face.detector
        assert finder.confirm.evidence(canvas, found.face).confirmed
    x, y, w, h = placed
    assert abs(found.face.x + found.face.w / 2 - (x + w / 2)) < w / 3
    assert abs(found.face.y + found.face.h / 2 - (y + h / 2)) < h / 3


def test_title_card_frame_refused_without_confirmation_model_no_fallback(blazeface_models):
    """Without the landmark model there is no way to confirm, so no fall-back pass runs at all."""
    from engine.faces import FaceFinder

    paths = {n: m.path for n, m in blazeface_models.items() if n != "face_landmark"}
    card = title_card(np.random.default_rng(8), (640, 360), "GOOD MORNING")
    with FaceFinder(paths) as finder:
        assert finder.plan() == [("short_range", "whole")]
        assert finder.find(card) is None
    with FaceFinder(paths, confirm="off") as finder:
        assert len(finder.plan()) == 4 and finder.find(card) is not None


def test_store_and_summary_record_refusals(workspace, blazeface_models, tmp_path):
    from engine.faces import extract_faces
    from engine.store.faces import face_video_rows

    root = tmp_path / "videos"
    title = title_card_video(root / "title.avi")
    face = face_video(root / "face.avi", n_frames=6)
    rows = video_rows(workspace.store(), "mixed", root, [title, face])
    faces = FacesSection(frames_per_video=6, crop_size=64, crop_format="jpg")
    summary = extract_faces(workspace, rows, faces, executor="inline", progress=False, models=blazeface_models)
    assert summary.counts["ok"] == 1 and summary.counts["no_face"] == 1
    assert summary.refused >= 6 and summary.refused_videos == 1 and summary.refused_no_face == 1
    status = face_video_rows(workspace.store(), summary.settings_key).set_index("video_id")
    assert status.loc["mixed/title.avi", "status"] == "no_face"
    assert "refused by the confirmation check" in status.loc["mixed/title.avi", "reason"]
    assert status.loc["mixed/face.avi", "status"] == "ok" and status.loc["mixed/face.avi", "n_faces"] == 6
    assert faces.settings_key() != FacesSection(frames_per_video=6, crop_size=64, crop_format="jpg",
                                                confirm="off").settings_key()


def test_faces_command_prints_refusals(tmp_path, workspace, blazeface_models, capfd):
    from engine.cli import main

    root = tmp_path / "cards"
    title_card_video(root / "title.avi")
    cfg = tmp_path / "exp.toml"
    cfg.write_text(f"""
[experiment]
name = "cards"

[sources]
cross_db = ["cards"]

[sources.cards]
adapter = "generic"
root = "{root.as_posix()}"

[faces]
frames_per_video = 6
crop_size = 64
""")
    assert main(["faces", "--config", str(cfg), "--workers", "1"]) == 0
    out = capfd.readouterr().out
    assert "were refused by the confirmation check in 1 video(s); 1 of them ended no_face" in out
    row = next(ln.split() for ln in out.splitlines() if ln.split()[:1] == ["(unlabelled)"])
    assert row[1:3] == ["0", "1"]  # ok 0, no_face 1
