"""Reliability 1: a corpus of bad inputs through catalog, faces, embed and analyse.

Every item ends with a recorded status and reason; the good videos beside the
bad ones come out exactly as they do alone; a bad manifest is refused naming
its file and line and leaves the recorded catalog as it was; decoding a
3840x2160 video keeps memory bounded (frames are decoded one at a time).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reliability.bad_inputs import GOOD_FRAMES, big_video, make_bad_corpus, make_bad_manifests, unlock
from tests.reliability.reliability_util import ROOT, assert_store_consistent, cli, toy_config

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad") / "corpus"
    items = make_bad_corpus(root)
    yield root, items
    unlock(root)


@pytest.fixture(scope="module")
def pipeline(corpus, blazeface_models, tmp_path_factory):
    """A toy workspace with the corpus as a cross-db source: catalog + faces over the corpus,
    a tiny attribution run trained on the toy crops."""
    from engine.catalog import record_catalog
    from engine.config import load_config
    from engine.faces import extract_for_config
    from engine.training import train
    from engine.workspace import resolve_workspace

    root, items = corpus
    tmp = tmp_path_factory.mktemp("badws")
    ws = resolve_workspace(tmp / "ws").ensure()
    cfg = load_config(toy_config(ws, tmp, epochs=1, corpus=root))
    report = record_catalog(cfg, ws, databases=["corpus"])
    summary, videos = extract_for_config(cfg, ws, db="corpus", workers=2, progress=False)
    run = train(cfg, "attribution", ws, progress=False)
    return {"ws": ws, "cfg": cfg, "report": report, "summary": summary, "videos": videos, "run_id": run.run_id,
            "items": items, "root": root, "tmp": tmp}


def test_catalog_lists_every_item_once_and_records_the_loop(pipeline):
    store = pipeline["ws"].store(read_only=True)
    rel = store.df("SELECT relpath FROM videos WHERE database = 'corpus'").relpath.tolist()
    assert sorted(rel) == sorted(pipeline["items"]), "every file with a video suffix is catalogued exactly once"
    problems = store.df("SELECT kind, path, message FROM catalog_problems WHERE database = 'corpus'")
    assert "symlink_loop" in set(problems.kind), problems
    assert all("loop" not in r for r in rel), "nothing is catalogued twice through the loop"


def test_faces_give_every_item_a_status_and_reason(pipeline):
    store = pipeline["ws"].store(read_only=True)
    key = pipeline["cfg"].faces.settings_key()
    st = store.df("SELECT v.relpath, fv.status, fv.reason, fv.n_faces, fv.n_sampled FROM face_videos fv "
                  "JOIN videos v USING (video_id) WHERE v.database = 'corpus' AND fv.settings_key = ?", [key])
    assert len(st) == len(set(st.relpath)) == len(pipeline["items"])
    for row in st.sort_values("relpath").itertuples():
        print(f"{pipeline['items'][row.relpath].kind:38} {row.status:10} faces {row.n_faces}  {row.reason or ''}")
    for row in st.itertuples():
        item = pipeline["items"][row.relpath]
        assert row.status in item.statuses, (item.kind, row.status, row.reason)
        assert row.status != "error", (item.kind, row.reason)
        if row.status != "ok":
            assert row.reason, f"{item.kind}: status {row.status} without a reason"
        if "FIFO" in item.kind:
            assert "not a regular file" in row.reason, row.reason
        if item.good:
            assert row.status == "ok" and row.n_faces == min(GOOD_FRAMES, pipeline["cfg"].faces.frames_per_video)
    assert pipeline["summary"].counts.get("error", 0) == 0
    assert_store_consistent(pipeline["ws"].store_path)


def test_good_videos_unaffected_by_bad_neighbours(pipeline, tmp_path):
    """The good videos extracted alone give the same faces (frames, boxes, scores, crop bytes)."""
    from engine.faces import extract_faces
    from engine.workspace import resolve_workspace

    ws, cfg = pipeline["ws"], pipeline["cfg"]
    key = cfg.faces.settings_key()
    good = [r for r, it in pipeline["items"].items() if it.good]
    rows = ws.store(read_only=True).df(
        "SELECT video_id, path, true_class FROM videos WHERE database = 'corpus' AND relpath IN (SELECT unnest(?))",
        [good])
    alone = resolve_workspace(tmp_path / "alone").ensure()
    extract_faces(alone, rows, cfg.faces, workers=1, executor="inline", progress=False)
    sql = ("SELECT face_id, frame_index, box_x, box_y, box_w, box_h, score, crop_path FROM faces "
           "WHERE settings_key = ? AND video_id IN (SELECT unnest(?)) ORDER BY face_id")
    a = ws.store(read_only=True).df(sql, [key, rows.video_id.tolist()])
    b = alone.store(read_only=True).df(sql, [key, rows.video_id.tolist()])
    assert len(a) == len(good) * min(GOOD_FRAMES, cfg.faces.frames_per_video)
    assert a.drop(columns="crop_path").equals(b.drop(columns="crop_path"))
    for p in a.crop_path:
        assert (ws.root / p).read_bytes() == (alone.root / p).read_bytes()


def test_embed_covers_exactly_the_faces_found(pipeline):
    from engine.embed import embed_run

    ws = pipeline["ws"]
    res = embed_run(ws, pipeline["run_id"], ["toy", "corpus"])
    store = ws.store(read_only=True)
    key = pipeline["cfg"].faces.settings_key()
    n_faces = store.scalar("SELECT count(*) FROM faces f JOIN videos v USING (video_id) WHERE v.database IN "
                           "('toy', 'corpus') AND f.settings_key = ?", [key])
    n_emb = store.scalar("SELECT count(*) FROM embeddings WHERE run_id = ?", [pipeline["run_id"]])
    assert res["embedded"] == n_faces == n_emb
    by_item = store.df("""SELECT v.relpath, count(e.face_id) AS n_emb, any_value(fv.n_faces) AS n_faces
                          FROM videos v JOIN face_videos fv USING (video_id)
                          LEFT JOIN faces f ON f.video_id = v.video_id AND f.settings_key = fv.settings_key
                          LEFT JOIN embeddings e ON e.face_id = f.face_id AND e.run_id = ?
                          WHERE v.database = 'corpus' GROUP BY v.relpath""", [pipeline["run_id"]])
    assert (by_item.n_emb == by_item.n_faces).all(), by_item
    again = embed_run(ws, pipeline["run_id"], ["toy", "corpus"])
    assert again["embedded"] == 0
    assert_store_consistent(ws.store_path)


def test_analyse_a_folder_of_bad_inputs(pipeline):
    """`dfatlas analyze` on the corpus as an unknown set: every video gets a verdict or a no-face
    status with its reason; the loop is reported; the set is stored whole."""
    from engine.analysis import analyze
    from engine.embed import embed_run

    ws = pipeline["ws"]
    embed_run(ws, pipeline["run_id"], ["toy"])  # the run's validation embeddings (open-set calibration)
    rep = analyze(ws, pipeline["cfg"], pipeline["run_id"], pipeline["root"], name="bad corpus", workers=2)
    store = ws.store(read_only=True)
    vids = store.df("SELECT v.relpath, fv.status, fv.reason FROM videos v LEFT JOIN face_videos fv USING (video_id) "
                    "WHERE v.dataset = 'unknown/bad-corpus'")
    assert len(vids) == len(pipeline["items"])
    assert vids.status.notna().all(), vids
    for row in vids.itertuples():
        item = pipeline["items"][row.relpath.split("/", 1)[1]]
        assert row.status in item.statuses, (item.kind, row.status, row.reason)
    assert len(rep.videos) == len(pipeline["items"])
    assert any("symlink_loop" in p for p in rep.problems)
    n_faces = store.scalar("SELECT count(*) FROM faces f JOIN videos v USING (video_id) "
                           "WHERE v.dataset = 'unknown/bad-corpus'")
    n_emb = store.scalar("SELECT count(*) FROM embeddings WHERE dataset = 'unknown/bad-corpus'")
    assert n_faces == n_emb > 0
    assert store.scalar("SELECT count(*) FROM datasets WHERE dataset = 'unknown/bad-corpus'") == 1
    assert_store_consistent(ws.store_path)


def test_bad_manifests_are_refused_naming_file_and_line(corpus, tmp_path):
    from data_catalog.databases import ADAPTERS
    from data_catalog.errors import ConfigError
    from data_catalog.taxonomy import paper_taxonomy

    root, _ = corpus
    manifests = make_bad_manifests(tmp_path)
    generic = ADAPTERS["generic"]
    for name, (path, expect) in manifests.items():
        if not expect:
            res = generic.scan(root, name="m", options={"manifest": str(path)}, taxonomy=paper_taxonomy())
            assert [r.relpath for r in res.records] == ["real/good_a.avi"]
            assert [p.kind for p in res.problems] == ["missing_video"]
            continue
        with pytest.raises(ConfigError) as exc:
            generic.scan(root, name="m", options={"manifest": str(path)}, taxonomy=paper_taxonomy())
        assert name in str(exc.value) and expect in str(exc.value), str(exc.value)
    # the CLI: one line, exit 2, no traceback
    res = cli(["catalog", "scan", "--db", "generic", "--root", str(root), "--option",
               f"manifest={manifests['escape.csv'][0]}"], None)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr and "escapes the database root" in res.stderr


def test_bad_manifest_leaves_the_recorded_catalog_intact(pipeline, tmp_path):
    from data_catalog.errors import ConfigError
    from engine.catalog import record_catalog
    from engine.config import load_config

    ws = pipeline["ws"]
    before = ws.store(read_only=True).df("SELECT video_id FROM videos WHERE database = 'corpus' ORDER BY 1")
    bad = tmp_path / "bad.toml"
    manifest = make_bad_manifests(tmp_path)["wrong_label.csv"][0]
    bad.write_text(pipeline["cfg"].path.read_text().replace(
        f'root = "{pipeline["root"]}"', f'root = "{pipeline["root"]}"\nmanifest = "{manifest}"'))
    with pytest.raises(ConfigError, match="line 3"):
        record_catalog(load_config(bad), ws, databases=["corpus"])
    after = ws.store(read_only=True).df("SELECT video_id FROM videos WHERE database = 'corpus' ORDER BY 1")
    assert before.equals(after)


RSS_PROBE = """
import json, resource, sys
from engine.faces.extract import FinderSpec, VideoTask, process_video
from engine.faces import resolve_models
m = resolve_models(["short_range", "full_range"], allow_download=False)
spec = FinderSpec(tuple((k, v.path) for k, v in m.items()))
r = process_video(VideoTask("v", sys.argv[1], frames_per_video=int(sys.argv[2]), crop_size=64), spec)
def peak_mb():
    # VmHWM: this process's own peak (ru_maxrss can carry the forking parent's peak across exec)
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"status": r.status, "faces": r.n_faces, "frames": r.n_frames, "w": r.width, "h": r.height,
                  "rss_mb": peak_mb()}))
"""


def _probe(path: Path, frames: int) -> dict:
    res = subprocess.run([sys.executable, "-c", RSS_PROBE, str(path), str(frames)], capture_output=True, text=True,
                         cwd=str(ROOT), timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_large_frames_are_decoded_one_at_a_time(tmp_path, blazeface_models):
    """A 3840x2160 video of 24 frames is ~600 MB decoded; extracting 8 faces from it must stay
    within a few frames' worth of memory above the same extraction on a small video."""
    from testkit.media import face_video

    n = 24
    frame_mb = 3840 * 2160 * 3 / 2**20
    big = big_video(tmp_path / "big.avi", frames=n)
    small = face_video(tmp_path / "small.avi", size=(320, 240), n_frames=n, face_px=110)
    b, s = _probe(big, 8), _probe(small, 8)
    assert (b["w"], b["h"], b["frames"]) == (3840, 2160, n)
    assert b["status"] == "ok" and b["faces"] >= 1
    extra = b["rss_mb"] - s["rss_mb"]
    # whole-video decoding would need n * frame_mb (~570 MB) more; allow 12 frames' worth
    assert extra < 12 * frame_mb, (b, s)
    (tmp_path / "rss.json").write_text(json.dumps({"big": b, "small": s, "frame_mb": frame_mb}))
    print(f"peak RSS: 4K {b['rss_mb']:.0f} MiB, small {s['rss_mb']:.0f} MiB, extra {extra:.0f} MiB "
          f"(whole video would be {n * frame_mb:.0f} MiB)")


UNPRIVILEGED_PROBE = """
import json, os, sys
import cv2  # imported while still root: the interpreter lives under /root
from engine.faces.extract import FinderSpec, VideoTask, process_video
os.setgid(65534)
os.setuid(65534)  # nobody: now chmod 000 means unreadable
assert not os.access(sys.argv[1], os.R_OK)
r = process_video(VideoTask("locked", sys.argv[1], frames_per_video=4, crop_size=32), FinderSpec(()))
print(json.dumps({"status": r.status, "reason": r.reason}))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="as a normal user the corpus itself holds a chmod 000 file")
def test_unreadable_file_when_running_unprivileged(tmp_path):
    """Root reads a chmod 000 file anyway, so drop to `nobody` after the imports and try again."""
    import tempfile

    from testkit.media import face_video

    folder = Path(tempfile.mkdtemp(prefix="dfatlas-unreadable-", dir="/tmp"))
    try:
        folder.chmod(0o755)
        locked = face_video(folder / "locked.avi", size=(160, 120), n_frames=3, face_px=60)
        locked.chmod(0)
        res = subprocess.run([sys.executable, "-c", UNPRIVILEGED_PROBE, str(locked)], capture_output=True, text=True,
                             cwd=str(ROOT), timeout=120)
        assert res.returncode == 0, res.stderr[-2000:]
        out = json.loads(res.stdout.strip().splitlines()[-1])
        assert out["status"] == "unreadable" and "permission denied" in out["reason"], out
    finally:
        shutil.rmtree(folder, ignore_errors=True)
