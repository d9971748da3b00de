"""End to end on tiny crops: a trained triplet run (engine.train), its embeddings (engine.embed),
classifiers (engine.classify) and map (engine.projection, computed by the analysis because the run has
none yet), then `analyze` on an unknown set. Only face extraction is replaced: it writes toy crops
instead of running BlazeFace on videos (tests/test_faces*.py cover extraction)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from testkit.toy_training import make_toy, toy_image


def novel_image(rng, size):
    """A look no class has: green tint + vertical stripes."""
    img = np.full((size, size, 3), rng.integers(90, 160), dtype=np.float32) + rng.normal(0, 6, (size, size, 3))
    img[..., 1] += 60
    img += ((np.arange(size)[None, :] // 3 % 2) * 50)[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from engine.classify import classify_run
    from engine.config import load_config
    from engine.embed import embed_run
    from engine.training import train
    from engine.workspace import resolve_workspace

    tmp = tmp_path_factory.mktemp("e2e")
    ws = resolve_workspace(tmp / "ws").ensure()
    # 8 epochs: with k = 14 over 16 validation faces per class, kNN needs tight clusters
    cfg_path = make_toy(ws, tmp, epochs=8, videos_per_class={"train": 6, "val": 4, "test": 3})
    # one openTSNE thread: on a loaded 2-core machine its threads contend badly (0.5 s vs 70 s measured)
    cfg_path.write_text(cfg_path.read_text() + "\n[projection]\nn_jobs = 1\nn_iter = 300\n")
    cfg = load_config(cfg_path)
    res = train(cfg, "triplet", ws, progress=False)
    embed_run(ws, res.run_id, ["toy"], device="cpu")
    classify_run(ws.store(), res.run_id, cfg.classifiers)
    return ws, cfg, res.run_id, tmp


def test_analyze_end_to_end(trained, monkeypatch):
    import cv2

    import engine.faces as faces_mod
    from engine import analysis as an

    ws, cfg, run_id, tmp = trained
    assert ws.store().scalar("SELECT count(*) FROM projections WHERE run_id = ?", [run_id]) == 0
    src = tmp / "incoming"
    src.mkdir(exist_ok=True)
    names = [f"a{i}.avi" for i in range(3)] + [f"b{i}.avi" for i in range(2)] + [f"n{i}.avi" for i in range(3)]
    for n in names:
        (src / n).write_bytes(b"RIFF\0\0\0\0AVI ")

    def fake_extract(w, videos, faces, *, on_progress=None, **kw):
        key = faces.settings_key()
        rng = np.random.default_rng(7)
        recs = list(videos)
        fv, fr = [], []
        for r in recs:
            kind = Path(r.path).name[0]
            for k in range(4):
                img = novel_image(rng, 32) if kind == "n" else toy_image(rng, 1 if kind == "a" else 2, 32)
                rel = f"faces/{key}/{r.video_id}/{k:06d}.png"
                (w.root / rel).parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(w.root / rel), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
                fr.append((f"{r.video_id}#{k}@{key}", r.video_id, key, k, rel))
            fv.append((r.video_id, key, "ok", 4))
        s = w.store()
        with s.transaction() as con:
            s.insert("face_videos", pa.table({"video_id": [x[0] for x in fv], "settings_key": [x[1] for x in fv],
                                              "status": [x[2] for x in fv], "n_faces": [x[3] for x in fv]}), con=con)
            s.insert("faces", pa.table({"face_id": [x[0] for x in fr], "video_id": [x[1] for x in fr],
                                        "settings_key": [x[2] for x in fr], "frame_index": [x[3] for x in fr],
                                        "crop_path": [x[4] for x in fr]}), con=con)

    monkeypatch.setattr(faces_mod, "extract_faces", fake_extract)
    stages = []
    rep = an.analyze(ws, cfg, run_id, src, name="incoming", progress=lambda s, d, t: stages.append(s))
    store = ws.store()
    # the map was computed first, then the set placed into it; known sets keep their coordinates
    assert "project" in stages
    pid = rep.projection_id
    assert pid and store.scalar("SELECT count(*) FROM projection_points WHERE projection_id = ? AND dataset = ?",
                                [pid, "unknown/incoming"]) == 32
    assert rep.n_faces == 32 and rep.classifier == "knn"
    assert set(store.df("SELECT DISTINCT classifier FROM predictions WHERE dataset = 'unknown/incoming'")["classifier"]) \
        == {"knn", "lr", "svm"}
    v = rep.videos.set_index("relpath")
    # the fake-a / fake-b look-alikes are attributed to their classes
    assert (v.loc[[f"incoming/a{i}.avi" for i in range(3)], "pred_class"] == "fake-a").all()
    assert (v.loc[[f"incoming/b{i}.avi" for i in range(2)], "pred_class"] == "fake-b").all()
    # the novel look is judged unlike every known class (at least most of its videos)
    novel = v.loc[[f"incoming/n{i}.avi" for i in range(3)], "verdict"]
    assert (novel == an.OPEN_SET_LABEL).sum() >= 2, v[["verdict", "open_ratio"]]
    ev = an.video_evidence(store, run_id, "unknown/incoming/a0.avi", k=5)
    assert ev.verdict == v.loc["incoming/a0.avi", "verdict"]
    if ev.verdict == "fake-a":  # evidence: the nearest fake-a faces, one per identity
        assert len(ev.faces) >= 1 and (ev.faces["true_class"] == "fake-a").all()
