"""The Ray executor runs the same per-video function as the process pool (local Ray, 2 CPUs)."""

from __future__ import annotations

import pytest

from engine.config import FacesSection
from testkit.media import face_video, video_rows

ray = pytest.importorskip("ray")

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def test_ray_executor_matches_process_pool(tmp_path, blazeface_models, local_ray):
    from engine.faces import extract_faces
    from engine.workspace import resolve_workspace

    root = tmp_path / "db"
    paths = [face_video(root / "a.avi", n_frames=10), face_video(root / "b.avi", n_frames=6, noface=True)]
    (root / "c.avi").write_bytes(b"")
    paths.append(root / "c.avi")
    results = {}
    for executor in ("ray", "process"):
        ws = resolve_workspace(tmp_path / f"ws-{executor}").ensure()
        rows = video_rows(ws.store(), "r", root, paths)
        faces = FacesSection(frames_per_video=4, crop_size=48, tiling="off")
        summary = extract_faces(ws, rows, faces, workers=2, executor=executor, progress=False)
        assert summary.processed == 3
        results[executor] = ws.store().df(
            "SELECT video_id, status, n_faces FROM face_videos ORDER BY video_id").to_dict("records")
        crops = ws.store().df("SELECT face_id, crop_path FROM faces ORDER BY face_id")
        assert len(crops) == 4 and all((ws.root / p).is_file() for p in crops.crop_path)
    assert results["ray"] == results["process"]
    assert [r["status"] for r in results["ray"]] == ["ok", "no_face", "unreadable"]
