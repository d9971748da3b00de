"""Reliability: full disks and missing crop files.

- A full disk while writing crops, checkpoints or a store commit: one line naming the file and the space
  it needed, no temp file left behind, the run marked `failed`, and the same command resumes once there
  is space. Each case runs twice: on a real small tmpfs (`mount -t tmpfs`, root only; skipped with the
  reason elsewhere) and with ENOSPC injected, so the code path is covered everywhere.
- Deleted or damaged crops: `dfatlas faces` extracts their videos again (`--verify` also decodes).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from data_catalog.errors import AtlasError
from engine.diskspace import DiskFull, write_atomic
from engine.store import Store
from engine.workspace import Workspace
from tests.reliability.reliability_util import assert_store_consistent, cli, face_dataset

pytestmark = pytest.mark.timeout(600)


# --- a small disk -------------------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A 24 MB tmpfs of its own (only root may mount one: skipped elsewhere, with the reason)."""
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mnt)], capture_output=True,
                           text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"cannot mount a tmpfs here ({exc}); the injected-ENOSPC tests cover the same code")
    if r.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or 'not permitted'}); "
                    "the injected-ENOSPC tests cover the same code")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=30)


def fill(disk: Path, leave: int) -> Path:
    """A file that leaves about `leave` bytes free on `disk`."""
    filler = disk / "filler"
    free = shutil.disk_usage(disk).free
    with open(filler, "ab") as fh:
        try:
            os.posix_fallocate(fh.fileno(), fh.tell(), max(0, free - leave))
        except OSError:
            pass
    return filler


def temp_files(root: Path) -> list[str]:
    return sorted(str(p) for p in root.rglob("*") if p.name.startswith(".tmp-") or p.name.endswith(".tmp"))


def one_clear_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [ln for ln in stderr.splitlines() if ln.startswith("dfatlas: error:")]
    assert len(lines) == 1, stderr
    return lines[0]


def no_space(path) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


# --- the helper every writer uses ----------------------------------------------------------------

def test_write_atomic_on_a_full_disk_removes_its_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "d" / "best.pt"
    real_replace = os.replace

    def full(src, dst):
        if Path(dst) == target:
            raise no_space(src)
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(DiskFull) as err:
        write_atomic(target, b"x" * 300_000)
    monkeypatch.undo()
    msg = str(err.value)
    assert "disk full: cannot write" in msg and str(target) in msg and "needs about 0.3 MB" in msg
    assert "free there" in msg and "\n" not in msg
    assert list(target.parent.iterdir()) == []  # no temp file, no half file


# --- crops ----------------------------------------------------------------------------------------

def test_crops_on_a_full_tmpfs_one_line_nothing_half_written_then_resume(small_disk, tmp_path, blazeface_models):
    cfg = face_dataset(tmp_path / "clips", n=8)
    ws = small_disk / "ws"
    r = cli(["catalog", "show", "--config", str(cfg)], ws)
    assert r.returncode == 0, r.stderr
    filler = fill(small_disk, leave=60_000)
    r = cli(["faces", "--config", str(cfg), "--workers", "1"], ws)
    assert r.returncode == 2, r.stdout + r.stderr
    line = one_clear_line(r.stderr)
    assert "disk full: cannot write" in line and str(ws) in line and "needs about" in line, line
    assert temp_files(ws) == []
    assert_store_consistent(ws / "atlas.duckdb", crops_only=())
    filler.unlink()
    r = cli(["faces", "--config", str(cfg), "--workers", "1"], ws)
    assert r.returncode == 0, r.stderr
    counts = assert_store_consistent(ws / "atlas.duckdb", crops_only=())
    assert counts["face_videos"] == 8 and counts["faces"] > 0


def test_crops_on_a_full_disk_injected(workspace, tmp_path, blazeface_models, monkeypatch):
    """ENOSPC on the 5th crop of a batch: the batch's crops written so far are removed, no rows."""
    import engine.faces.writer as W
    from engine.config import load_config
    from engine.faces import extract_for_config
    from engine.store.faces import face_rows

    cfg = load_config(face_dataset(tmp_path / "clips", n=4))
    real = W.write_atomic
    calls = []

    def fifth_fails(path, data):
        calls.append(path)
        if len(calls) == 5:
            raise DiskFull("disk full", Path(path), len(data))
        return real(path, data)

    monkeypatch.setattr(W, "write_atomic", fifth_fails)
    with pytest.raises(DiskFull) as err:
        extract_for_config(cfg, workspace, executor="inline", progress=False)
    assert "disk full: cannot write" in str(err.value) and "needs about" in str(err.value)
    assert all(not Path(p).exists() for p in calls)
    assert face_rows(workspace.store(), cfg.faces.settings_key()).num_rows == 0
    monkeypatch.setattr(W, "write_atomic", real)
    summary, _ = extract_for_config(cfg, workspace, executor="inline", progress=False)
    assert summary.processed == 4 and summary.counts["ok"] == 4


# --- checkpoints ------------------------------------------------------------------------------------

def _train_until_full(ws, tmp_path, on_epoch_1):
    from engine.config import load_config
    from engine.training import train
    from testkit.toy_training import make_toy

    cfg = load_config(make_toy(ws, tmp_path, epochs=3))
    fired = []

    def hook(epoch, step, *_):
        if epoch == 1 and not fired:
            fired.append(1)
            on_epoch_1(ws.run_dir(cfg.run_id("binary")))

    with pytest.raises(DiskFull) as err:
        train(cfg, "binary", ws, progress=False, step_hook=hook)
    return cfg, err.value


def _failed_and_resumable(ws, cfg, err):
    from engine.runs import read_run
    from engine.training import LAST, RUN_FILE, train

    run_id = cfg.run_id("binary")
    run_dir = ws.run_dir(run_id)
    msg = str(err)
    print(msg)
    assert msg.startswith(f"run {run_id} failed: disk full: cannot write {run_dir}") and "needs about" in msg, msg
    assert "its last checkpoint (epoch 1, " in msg and "\n" not in msg
    assert temp_files(run_dir) == []
    assert json.loads((run_dir / RUN_FILE).read_text())["status"] == "failed"
    assert read_run(ws.store(), run_id).status == "failed"
    assert (run_dir / LAST).is_file()
    res = train(cfg, "binary", ws, progress=False)
    assert res.status == "finished" and [h["epoch"] for h in res.history] == [0, 1, 2]


def test_checkpoint_on_a_full_tmpfs_removes_its_temp_file_and_marks_the_run_failed(small_disk, tmp_path):
    ws = Workspace(small_disk / "ws").ensure()
    state = {}

    def fill_to_half_a_checkpoint(run_dir):
        size = (run_dir / "last.pt").stat().st_size
        state["filler"] = fill(small_disk, leave=size // 2)

    cfg, err = _train_until_full(ws, tmp_path, fill_to_half_a_checkpoint)
    state["filler"].unlink()
    _failed_and_resumable(ws, cfg, err)


def test_checkpoint_on_a_full_disk_injected(workspace, tmp_path, monkeypatch):
    real_replace = os.replace
    full = []

    def replace(src, dst):
        if full and str(dst).endswith(".pt"):
            raise no_space(src)
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    cfg, err = _train_until_full(workspace, tmp_path, lambda run_dir: full.append(1))
    full.clear()
    _failed_and_resumable(workspace, cfg, err)


# --- the store's commit --------------------------------------------------------------------------------

def _rows(n: int, start: int = 0) -> pa.Table:
    return pa.table({"job_id": [f"j{i}" for i in range(start, start + n)], "kind": ["analyze"] * n,
                     "status": ["finished"] * n, "message": ["x" * 400] * n})


def test_store_commit_on_a_full_tmpfs_is_one_line_and_keeps_the_store(small_disk):
    store = Store(small_disk / "atlas.duckdb")
    store.insert("jobs", _rows(10))
    filler = fill(small_disk, leave=200_000)
    with pytest.raises(DiskFull) as err:
        store.insert("jobs", _rows(40_000, start=10))
    msg = str(err.value)
    assert "disk full: cannot write" in msg and str(small_disk) in msg and "needs about" in msg, msg
    filler.unlink()
    assert Store(small_disk / "atlas.duckdb", read_only=True).scalar("SELECT count(*) FROM jobs") == 10
    store.insert("jobs", _rows(5, start=10))
    assert Store(small_disk / "atlas.duckdb", read_only=True).scalar("SELECT count(*) FROM jobs") == 15


def test_store_commit_on_a_full_disk_injected(tmp_path, monkeypatch):
    store = Store(tmp_path / "atlas.duckdb")
    store.insert("jobs", _rows(3))
    wal = tmp_path / "atlas.duckdb.wal"

    def full_commit(self, table, data, replace=False, con=None):
        raise duckdb.IOException(f'IO Error: Could not write file "{wal}": No space left on device')

    monkeypatch.setattr(Store, "insert", full_commit)
    with pytest.raises(DiskFull) as err:
        with store.transaction() as con:
            store.insert("jobs", _rows(2, start=3), con=con)
    assert f"disk full: cannot write {wal}" in str(err.value)
    monkeypatch.undo()
    assert Store(tmp_path / "atlas.duckdb", read_only=True).scalar("SELECT count(*) FROM jobs") == 3


# --- deleted and damaged crops --------------------------------------------------------------------------

def test_faces_restores_deleted_crops_and_verify_finds_damaged_ones(tmp_path, blazeface_models):
    from engine.faces import read_crops

    cfg = face_dataset(tmp_path / "clips", n=6)
    ws = tmp_path / "ws"
    assert cli(["faces", "--config", str(cfg), "--workers", "1"], ws).returncode == 0
    crops = sorted((ws / "faces").rglob("*.png"))
    deleted, truncated = crops[0], crops[-1]
    deleted.unlink()
    with pytest.raises(AtlasError, match="run `dfatlas faces`"):  # what train / embed say
        read_crops(ws, [str(deleted.relative_to(ws))])
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])

    r = cli(["faces", "--config", str(cfg), "--workers", "1"], ws)
    assert r.returncode == 0, r.stderr
    assert "1 video(s) had missing or damaged crop files: extracted again" in r.stdout
    assert deleted.is_file()
    assert truncated.stat().st_size < len(data)  # exists and is not empty: the cheap check passes it

    r = cli(["faces", "--config", str(cfg), "--workers", "1", "--verify"], ws)
    assert r.returncode == 0, r.stderr
    assert "1 video(s) had missing or damaged crop files: extracted again" in r.stdout
    assert truncated.read_bytes() == data
    r = cli(["faces", "--config", str(cfg), "--workers", "1", "--verify"], ws)
    assert "6 already done, 0 processed" in r.stdout and "extracted again" not in r.stdout
    assert_store_consistent(ws / "atlas.duckdb", crops_only=())
