"""Reliability 2: kill -9 long jobs at a random point; re-running gives the uninterrupted result.

Each test runs the job uninterrupted in one workspace (the reference), and in
a copy starts it as a real subprocess, SIGKILLs its whole process group at a
random point while it works, checks the store opens cleanly with no partial
rows, re-runs the same `dfatlas` command to completion and compares stored
counts, values and metrics with the reference.

The random kill points come from `DFATLAS_RELIABILITY_SEED` (printed; set it
to replay one). Figures go to `$DFATLAS_RELIABILITY_REPORT` (JSON lines) when set.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.reliability.reliability_util import (ROOT, assert_store_consistent, cli, cli_env, embeddings_of, face_dataset,
                              kill9_at_random, points_of, store_counts, toy_config)

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]

SEED = int(os.environ.get("DFATLAS_RELIABILITY_SEED", time.time_ns() % 100_000))


def rng_for(name: str) -> random.Random:
    print(f"kill points: DFATLAS_RELIABILITY_SEED={SEED}")
    return random.Random(f"{SEED}-{name}")


def report(case: str, **figures) -> None:
    line = json.dumps({"case": case, "seed": SEED, **figures}, default=str)
    print(line)
    path = os.environ.get("DFATLAS_RELIABILITY_REPORT")
    if path:
        with open(path, "a") as fh:
            fh.write(line + "\n")


def count(ws_root: Path, sql: str, params=None):
    from engine.store import Store

    return Store(ws_root / "atlas.duckdb", read_only=True, retry_seconds=30).scalar(sql, params or [])


def copy_ws(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("job.lock"))
    return dst


# --- faces ------------------------------------------------------------------------

FACES_HELPER = """
import sys
from engine.config import load_config
from engine.faces import extract_for_config
from engine.workspace import resolve_workspace
import time
import engine.faces.driver as P
real = P.extract_faces
import engine.faces.writer as W
write = W.write_batch
def paced(*a, **kw):  # a commit every ~0.3 s, so a random kill lands between commits
    out = write(*a, **kw)
    time.sleep(0.3)
    return out
W.write_batch = paced
def small_batches(*a, **kw):
    kw.update(batch_videos=2, batch_seconds=0.5)
    return real(*a, **kw)
P.extract_faces = small_batches
import engine.faces.stage as R
R.extract_faces = small_batches
ws = resolve_workspace(sys.argv[2])
with ws.lock("faces (reliability helper)"):
    extract_for_config(load_config(sys.argv[1]), ws, workers=1, progress=False)
"""


def test_faces_killed_mid_batch_then_resumed(tmp_path, blazeface_models):
    """kill -9 after some videos are committed (batches of 2, one pool worker): the re-run
    (`dfatlas faces`) skips them and ends with exactly the reference rows and crop files."""
    import subprocess

    from engine.config import load_config
    from engine.faces import extract_for_config
    from engine.workspace import resolve_workspace

    cfg_path = face_dataset(tmp_path / "data", n=10)
    cfg = load_config(cfg_path)
    ref = resolve_workspace(tmp_path / "ref").ensure()
    extract_for_config(cfg, ref, workers=1, executor="inline", progress=False)

    ws = tmp_path / "ws"
    rng = rng_for("faces")
    log = tmp_path / "faces.log"
    n_videos = 10
    window = (0.0, 1.2)
    cmd = [sys.executable, "-c", FACES_HELPER, str(cfg_path), str(ws)]
    proc = subprocess.Popen(cmd, stdout=open(log, "ab"), stderr=subprocess.STDOUT, cwd=str(ROOT), env=cli_env(ws),
                            start_new_session=True)
    from tests.reliability.reliability_util import kill_group, wait_for

    try:
        started = wait_for(lambda: (ws / "atlas.duckdb").exists() and
                           (count(ws, "SELECT count(*) FROM face_videos") or 0) >= 2 or proc.poll() is not None, 240)
        assert started, log.read_text()[-2000:]
        time.sleep(rng.uniform(*window))
        killed = proc.poll() is None
    finally:
        kill_group(proc)
    done_at_kill = count(ws, "SELECT count(*) FROM face_videos")
    assert_store_consistent(ws / "atlas.duckdb")

    res = cli(["faces", "--config", str(cfg_path), "--workers", "1"], ws)
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"{done_at_kill} already done" in res.stdout
    sql = ("SELECT face_id, video_id, frame_index, box_x, box_y, box_w, box_h, score, crop_path FROM faces "
           "ORDER BY face_id")
    from engine.store import Store

    a = Store(ws / "atlas.duckdb", read_only=True).df(sql)
    b = Store(ref.store_path, read_only=True).df(sql)
    assert a.equals(b)
    sa = Store(ws / "atlas.duckdb", read_only=True).df(
        "SELECT video_id, status, n_faces, n_sampled FROM face_videos ORDER BY 1")
    sb = Store(ref.store_path, read_only=True).df("SELECT video_id, status, n_faces, n_sampled FROM face_videos ORDER BY 1")
    assert sa.equals(sb) and len(sa) == n_videos
    for p in a.crop_path:
        assert (ws / p).read_bytes() == (ref.root / p).read_bytes()
    assert_store_consistent(ws / "atlas.duckdb")
    leftovers = [p for p in (ws / "faces").rglob(".tmp-*")]
    report("faces", videos=n_videos, killed=killed, committed_at_kill=done_at_kill, faces=len(a), lost=0,
           temp_files_left=len(leftovers))


# --- train, embed, project on the toy crops ------------------------------------------

@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """The toy crops and config (4 epochs) in a base workspace, and an uninterrupted reference:
    train (CLI-equivalent call) -> embed -> project, in its own copy."""
    from engine.config import load_config
    from engine.embed import embed_run
    from engine.projection import project_run
    from engine.training import train
    from engine.workspace import resolve_workspace

    tmp = tmp_path_factory.mktemp("toy")
    base = resolve_workspace(tmp / "base").ensure()
    cfg_path = toy_config(base, tmp, epochs=4)
    cfg = load_config(cfg_path)
    ref = resolve_workspace(copy_ws(base.root, tmp / "ref"))
    t0 = time.perf_counter()
    res = train(cfg, "attribution", ref, progress=False)
    train_s = time.perf_counter() - t0
    embed_run(ref, res.run_id, ["toy"])
    pid = project_run(ref.store(), res.run_id, cfg)
    return {"tmp": tmp, "base": base, "ref": ref, "cfg_path": cfg_path, "cfg": cfg, "run_id": res.run_id,
            "history": res.history, "train_s": train_s, "projection_id": pid}


def _metrics(ws_root: Path, run_id: str):
    from engine.evaluation import metrics_table
    from engine.store import Store

    df = metrics_table(Store(ws_root / "atlas.duckdb", read_only=True), [run_id], level="video")
    return df.sort_values(list(df.columns[:3])).reset_index(drop=True)


def test_train_killed_then_resumed_matches_uninterrupted(toy):
    import torch

    from engine.models import read_checkpoint

    ws = copy_ws(toy["base"].root, toy["tmp"] / "train-kill")
    run_dir = ws / "runs" / toy["run_id"]
    epoch_s = max(float(np.median([h["seconds"] for h in toy["history"]])), 0.2)
    rng = rng_for("train")
    args = ["train", "--config", str(toy["cfg_path"]), "--approach", "attribution"]
    what = kill9_at_random(args, ws, rng, after=lambda: (run_dir / "last.pt").exists(),
                           window=(0.0, 2.5 * epoch_s), log=toy["tmp"] / "train.log")
    at_kill = assert_store_consistent(ws / "atlas.duckdb")
    epochs_at_kill = at_kill["epochs"]
    res = cli(args, ws)
    assert res.returncode == 0, res.stderr[-3000:]
    assert_store_consistent(ws / "atlas.duckdb")
    ref_dir = toy["ref"].run_dir(toy["run_id"])
    for name in ("last.pt", "best.pt"):
        a, b = read_checkpoint(run_dir / name), read_checkpoint(ref_dir / name)
        assert a["epoch"] == b["epoch"] and a["best_epoch"] == b["best_epoch"], name
        for k in b["model"]:
            assert torch.equal(a["model"][k], b["model"][k]), (name, k)
    q = "SELECT epoch, train_loss, val_loss, val_accuracy FROM epochs WHERE run_id = ? ORDER BY epoch"
    from engine.store import Store

    ea = Store(ws / "atlas.duckdb", read_only=True).df(q, [toy["run_id"]])
    eb = Store(toy["ref"].store_path, read_only=True).df(q, [toy["run_id"]])
    assert ea.equals(eb) and len(ea) == toy["cfg"].train.epochs
    row = Store(ws / "atlas.duckdb", read_only=True).df(
        "SELECT status, best_epoch, epochs_done FROM runs WHERE run_id = ?", [toy["run_id"]])
    assert row.status.iloc[0] == "finished" and int(row.epochs_done.iloc[0]) == toy["cfg"].train.epochs
    report("train", killed=what["killed"], at_s=what["at_s"], epochs_stored_at_kill=epochs_at_kill,
           epochs=len(ea), lost=0, weights_equal=True)


EMBED_HELPER = """
import sys, time
from engine.embed import embed_run
from engine.workspace import resolve_workspace
ws = resolve_workspace(sys.argv[1])
def slow(done, total):
    time.sleep(0.05)
with ws.lock("embed (reliability helper)"):
    embed_run(ws, sys.argv[2], ["toy"], chunk=16, batch_size=16, progress=slow)
"""


def test_embed_killed_then_resumed_matches_uninterrupted(toy, tmp_path):
    """Chunks of 16 faces, one transaction each: kill -9 after some chunks; `dfatlas embed` finishes the rest."""
    import subprocess

    from tests.reliability.reliability_util import kill_group, wait_for

    ws = copy_ws(toy["ref"].root, tmp_path / "embed-kill")
    from engine.store import Store

    with Store(ws / "atlas.duckdb").transaction() as con:  # the trained run, nothing embedded yet
        for t in ("projection_points", "projections", "predictions", "embeddings"):
            con.execute(f"DELETE FROM {t}")
    rng = rng_for("embed")
    proc = subprocess.Popen([sys.executable, "-c", EMBED_HELPER, str(ws), toy["run_id"]],
                            stdout=open(tmp_path / "embed.log", "ab"), stderr=subprocess.STDOUT, cwd=str(ROOT),
                            env=cli_env(ws), start_new_session=True)
    try:
        assert wait_for(lambda: (count(ws, "SELECT count(*) FROM embeddings") or 0) > 0 or proc.poll() is not None,
                        240)
        time.sleep(rng.uniform(0.0, 0.4))
        killed = proc.poll() is None
    finally:
        kill_group(proc)
    n_at_kill = count(ws, "SELECT count(*) FROM embeddings")
    assert n_at_kill % 16 == 0 or not killed, "a chunk is committed whole or not at all"
    assert_store_consistent(ws / "atlas.duckdb")
    res = cli(["embed", "--config", str(toy["cfg_path"]), "--run", toy["run_id"]], ws)
    assert res.returncode == 0, res.stderr[-3000:]
    ids_a, ea = embeddings_of(ws / "atlas.duckdb", toy["run_id"])
    ids_b, eb = embeddings_of(toy["ref"].store_path, toy["run_id"])
    assert ids_a == ids_b
    np.testing.assert_allclose(ea, eb, rtol=1e-4, atol=1e-5)
    assert count(ws, "SELECT count(*) FROM predictions") == count(toy["ref"].root, "SELECT count(*) FROM predictions")
    ma, mb = _metrics(ws, toy["run_id"]), _metrics(toy["ref"].root, toy["run_id"])
    num = [c for c in mb.columns if mb[c].dtype.kind == "f"]
    np.testing.assert_allclose(ma[num].to_numpy(float), mb[num].to_numpy(float), rtol=1e-6, atol=1e-6)
    assert_store_consistent(ws / "atlas.duckdb")
    report("embed", killed=killed, embedded_at_kill=n_at_kill, faces=len(ids_a), lost=0,
           hter_equal=True)


def test_project_killed_then_resumed_matches_uninterrupted(toy, tmp_path):
    """`dfatlas project` killed after its map is stored, while it places the other datasets."""
    ws = copy_ws(toy["ref"].root, tmp_path / "project-kill")
    from engine.store import Store

    with Store(ws / "atlas.duckdb").transaction() as con:
        con.execute("DELETE FROM projection_points")
        con.execute("DELETE FROM projections")
    rng = rng_for("project")
    args = ["project", "--config", str(toy["cfg_path"]), "--run", toy["run_id"]]
    what = kill9_at_random(args, ws, rng, after=lambda: (count(ws, "SELECT count(*) FROM projections") or 0) > 0,
                           window=(0.0, 1.0), log=tmp_path / "project.log")
    at_kill = assert_store_consistent(ws / "atlas.duckdb")
    res = cli(args, ws)
    assert res.returncode == 0, res.stderr[-3000:]
    a, b = points_of(ws / "atlas.duckdb", toy["run_id"]), points_of(toy["ref"].store_path, toy["run_id"])
    assert a.face_id.tolist() == b.face_id.tolist()
    assert (a.is_reference == b.is_reference).all()
    np.testing.assert_allclose(a[["x", "y"]].to_numpy(), b[["x", "y"]].to_numpy(), rtol=1e-5, atol=1e-4)
    assert count(ws, "SELECT count(*) FROM projections") == 1
    assert_store_consistent(ws / "atlas.duckdb")
    report("project", killed=what["killed"], at_s=what["at_s"], points_at_kill=at_kill["projection_points"],
           points=len(a), lost=0)


# --- the whole demo ------------------------------------------------------------------

@pytest.mark.timeout(3600)
@pytest.mark.skipif(not os.environ.get("DFATLAS_TEST_DEMO_KILL"),
                    reason="runs `dfatlas demo --size small` twice (minutes on 2 cores): set DFATLAS_TEST_DEMO_KILL=1")
def test_demo_killed_then_resumed_matches_uninterrupted(tmp_path):
    ref, ws = tmp_path / "ref", tmp_path / "ws"
    args = ["demo", "--size", "small", "--no-serve", "--workers", "2"]
    t0 = time.monotonic()
    res = cli(args, ref, timeout=1800)
    ref_s = time.monotonic() - t0
    assert res.returncode == 0, res.stderr[-3000:]
    rng = rng_for("demo")
    what = kill9_at_random(args, ws, rng, after=lambda: True, window=(0.15 * ref_s, 0.85 * ref_s),
                           log=tmp_path / "demo.log", timeout=1800)
    at_kill = assert_store_consistent(ws / "atlas.duckdb", crops_only=()) if (ws / "atlas.duckdb").exists() else {}
    res2 = cli(args, ws, timeout=1800)
    assert res2.returncode == 0, res2.stderr[-3000:]
    ca = assert_store_consistent(ws / "atlas.duckdb", crops_only=())
    cb = store_counts(ref / "atlas.duckdb")
    for t in ("videos", "face_videos", "faces", "runs", "epochs", "embeddings", "predictions", "classifiers",
              "projections", "projection_points"):
        assert ca[t] == cb[t], (t, ca[t], cb[t])
    from engine.evaluation import metrics_table
    from engine.store import Store

    ma = metrics_table(Store(ws / "atlas.duckdb", read_only=True), level="video")
    mb = metrics_table(Store(ref / "atlas.duckdb", read_only=True), level="video")
    # run ids hash the config, whose database roots lie in each workspace: compare by approach
    ma = ma.assign(approach=ma.run_id.str.split("-").str[0])
    mb = mb.assign(approach=mb.run_id.str.split("-").str[0])
    key = ["approach", "classifier", "dataset"]
    ma, mb = ma.sort_values(key).reset_index(drop=True), mb.sort_values(key).reset_index(drop=True)
    assert ma[key].equals(mb[key])
    for c in ("auc", "hter", "fpr", "fnr"):
        if c in mb.columns:
            np.testing.assert_allclose(ma[c].to_numpy(float), mb[c].to_numpy(float), atol=1e-6)
    report("demo", killed=what["killed"], at_s=what["at_s"], reference_s=round(ref_s, 1),
           counts_at_kill=at_kill, counts=ca, lost=0)
