"""Shared helpers for the reliability tests (tests/test_reliability*.py).

- `toy_config(ws, tmp, ...)`: the training tests' tiny learnable crops
  (tests/train_fixtures.make_toy: test_resnet at 32 px), optionally with a
  generic-adapter cross-db source, and a fast [projection] section.
- `face_dataset(root, n)`: a tiny generic dataset of real face videos.
- `cli(...)` / `start_cli(...)`: `dfatlas` in a real subprocess.
- `kill9_at_random(...)`: start a job, SIGKILL it at a random point.
- `store_counts(path)` / `assert_store_consistent(path)`: the store opens
  cleanly and holds no partial rows.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
TABLES = ("videos", "datasets", "catalog_problems", "face_settings", "face_videos", "faces", "runs", "epochs",
          "embeddings", "classifiers", "predictions", "projections", "projection_points", "jobs")

PROJECTION = """
[projection]
perplexity = 5.0
n_iter = 120
early_exaggeration_iter = 60
n_jobs = 1
"""


def toy_config(workspace, tmp_path: Path, *, epochs: int = 2, corpus: Path | None = None,
               corpus_name: str = "corpus", **kw) -> Path:
    """make_toy's workspace + config; `corpus` adds a generic cross-db source (same face settings)."""
    from testkit.toy_training import make_toy

    cfg_path = make_toy(workspace, tmp_path, epochs=epochs, **kw)
    text = cfg_path.read_text()
    if corpus is not None:
        text = text.replace('superset = ["toy"]', f'superset = ["toy"]\ncross_db = ["{corpus_name}"]')
        text += f'\n[sources.{corpus_name}]\nadapter = "generic"\nroot = "{corpus}"\n'
    text += PROJECTION
    cfg_path.write_text(text)
    return cfg_path


FACES_CONFIG = """
[experiment]
name = "faces-reliability"
seed = 0

[sources]
superset = []
cross_db = ["clips"]

[sources.clips]
adapter = "generic"
root = "{root}"

[[taxonomy.class]]
id = "real"
name = "Real"
color = "#0072B2"

[[taxonomy.class]]
id = "m"
name = "Method m"
color = "#E69F00"
sources = ["clips:m"]

[faces]
frames_per_video = {frames}
crop_size = 32
thumbnail_size = 16
workers = 1
"""


def face_dataset(root: Path, n: int = 8, frames: int = 6) -> Path:
    """`n` small face videos in real/ and fake/m/ and a config for them; returns the config path."""
    from testkit.media import face_video

    root = Path(root)
    for i in range(n):
        sub = "real" if i % 2 == 0 else "fake/m"
        face_video(root / "data" / sub / f"clip_{i:02d}.avi", size=(240, 180), n_frames=frames, face_px=70 + 4 * i,
                   centre=(0.4 + 0.02 * i, 0.45))
    cfg = root / "faces.toml"
    cfg.write_text(FACES_CONFIG.format(root=root / "data", frames=frames))
    return cfg


# --- subprocesses -------------------------------------------------------------

def cli_env(workspace_root: Path | None = None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("OMP_NUM_THREADS", "1")
    env["PYTHONUNBUFFERED"] = "1"
    env["TQDM_DISABLE"] = "1"
    if workspace_root is not None:
        env["DFATLAS_WORKSPACE"] = str(workspace_root)
    return env


def start_cli(args: list[str], workspace_root: Path, log: Path | None = None, **kw) -> subprocess.Popen:
    """`python -m engine.cli ARGS --workspace WS` in its own session (so kill -9 takes its children too)."""
    cmd = [sys.executable, "-m", "engine.cli", *args, "--workspace", str(workspace_root)]
    out = open(log, "ab") if log else subprocess.PIPE
    try:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT if log else subprocess.PIPE,
                                stdin=subprocess.DEVNULL, cwd=str(ROOT), env=cli_env(workspace_root),
                                start_new_session=True, **kw)
    finally:
        if log:
            out.close()


def cli(args: list[str], workspace_root: Path | None, timeout: float = 300) -> subprocess.CompletedProcess:
    """`dfatlas ARGS [--workspace WS]` to completion, output captured."""
    ws = ["--workspace", str(workspace_root)] if workspace_root is not None else []
    cmd = [sys.executable, "-m", "engine.cli", *args, *ws]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=str(ROOT), env=cli_env(workspace_root),
                          timeout=timeout, stdin=subprocess.DEVNULL)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process and its session (pool workers included)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def kill9_at_random(args: list[str], workspace_root: Path, rng: random.Random, after, window: tuple[float, float],
                    log: Path, timeout: float = 240) -> dict:
    """Start `dfatlas ARGS`, wait until `after()` is true (the job is doing work), then SIGKILL it
    after a random delay drawn from `window` seconds. Returns what happened (for the report)."""
    proc = start_cli(args, workspace_root, log=log)
    t0 = time.monotonic()
    while not after():
        if proc.poll() is not None:
            break
        if time.monotonic() - t0 > timeout:
            kill_group(proc)
            raise AssertionError(f"{args[0]} never reached its kill window; log:\n{Path(log).read_text()[-3000:]}")
        time.sleep(0.05)
    delay = rng.uniform(*window)
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    finished_first = proc.poll() is not None
    at = time.monotonic() - t0
    if not finished_first:
        kill_group(proc)
    return {"killed": not finished_first, "at_s": round(at, 2), "delay_s": round(delay, 2),
            "returncode": proc.returncode}


def wait_for(cond, timeout: float = 60, every: float = 0.05) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():
            return True
        time.sleep(every)
    return False


# --- the store ------------------------------------------------------------------

def store_counts(path: Path) -> dict[str, int]:
    """Row counts of every table, read-only (the store must open cleanly)."""
    from engine.store import Store

    s = Store(path, read_only=True, retry_seconds=30)

    def q(con):
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}

    return s.with_retry(q)


def assert_store_consistent(path: Path, crops_only: tuple = ("toy",)) -> dict[str, int]:
    """The store opens read-only, and holds no partial rows: every face belongs to a finished
    video status row with the same number of faces; every embedding/prediction/map point has its face.
    `crops_only`: databases whose face rows a fixture wrote directly (no face_videos rows)."""
    from engine.store import Store

    s = Store(path, read_only=True, retry_seconds=30)
    counts = store_counts(path)

    def q(con):
        return {
            "faces_without_status": con.execute("""
                SELECT count(*) FROM faces f LEFT JOIN face_videos fv USING (video_id, settings_key)
                WHERE fv.video_id IS NULL AND f.video_id NOT IN
                  (SELECT video_id FROM videos WHERE database IN (SELECT unnest(?::VARCHAR[])))""",
                [list(crops_only)]).fetchone()[0],
            "status_face_mismatch": con.execute("""
                SELECT count(*) FROM face_videos fv LEFT JOIN
                  (SELECT video_id, settings_key, count(*) AS n FROM faces GROUP BY ALL) f USING (video_id, settings_key)
                WHERE coalesce(f.n, 0) <> coalesce(fv.n_faces, 0)""").fetchone()[0],
            "embeddings_without_face": con.execute("""
                SELECT count(*) FROM embeddings e LEFT JOIN faces f USING (face_id) WHERE f.face_id IS NULL
                """).fetchone()[0],
            "points_without_projection": con.execute("""
                SELECT count(*) FROM projection_points p LEFT JOIN projections r USING (projection_id)
                WHERE r.projection_id IS NULL""").fetchone()[0],
            "native_without_embedding": con.execute("""
                SELECT count(*) FROM predictions p LEFT JOIN embeddings e USING (run_id, face_id)
                WHERE e.face_id IS NULL""").fetchone()[0],
        }

    bad = s.with_retry(q)
    assert not any(bad.values()), bad
    return counts


def embeddings_of(path: Path, run_id: str):
    """face_id -> embedding (float32 matrix rows), sorted by face id."""
    from engine.store import Store, arrow_to_matrix

    t = Store(path, read_only=True).arrow(
        "SELECT face_id, embedding FROM embeddings WHERE run_id = ? ORDER BY face_id", [run_id])
    return t["face_id"].to_pylist(), arrow_to_matrix(t["embedding"])


def points_of(path: Path, run_id: str):
    from engine.store import Store

    return Store(path, read_only=True).df(
        "SELECT p.face_id, p.dataset, p.x, p.y, p.is_reference FROM projection_points p "
        "JOIN projections r USING (projection_id) WHERE r.run_id = ? ORDER BY face_id", [run_id])


def peak_rss_mb_of_children() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0


__all__ = [n for n in dir() if not n.startswith("_")] + ["np"]
