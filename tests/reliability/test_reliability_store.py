"""Reliability: a damaged store, and a damaged (or unwanted) finished run.

- A store whose blocks fail DuckDB's checksums is found when it is opened (DuckDB's own errors and a quick
  probe that reads every table back): writers refuse to write into it (the file stays byte for byte as it
  was), readers stop with one line, and both say how to recover; so does the dashboard (never `dfatlas demo`).
  The damage is made as it happens on disk: random bytes over the middle of the file, moved one DuckDB
  block at a time until a block in use is hit (an unused block's damage harms nothing and is not an error).
- `dfatlas train --retrain` trains a finished run anew: the old folder is moved aside (or deleted with
  `--discard-old`) and the results of the old weights leave the store.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pytest

from data_catalog.errors import AtlasError
from engine.store import Store, StoreDamaged
from tests.reliability.reliability_util import cli, face_dataset

pytestmark = pytest.mark.timeout(600)

HEADER, BLOCK = 3 * 4096, 256 * 1024  # DuckDB's file layout: three header pages, then 256 kB blocks


def _fails_checksum(path: Path) -> bool:
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        return "checksum" in str(exc)
    try:
        tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                            "WHERE table_type = 'BASE TABLE'").fetchall()]
        for t in tables:
            con.execute(f'SELECT count(*), min(COLUMNS(*)) FROM "{t}"').fetchall()
    except duckdb.Error as exc:
        return "checksum" in str(exc)
    finally:
        con.close()  # DuckDB caches an open database per path: a later connect would see the old bytes
    return False


def damage(path: Path, seed: int = 0) -> int:
    """Overwrite 64 random bytes in the middle of the store file (random: DuckDB's checksum XORs 8-byte
    words, so two equal words cancel); returns the offset. The middle of the first block in use from the
    file's middle on, so that DuckDB's checksum check fails reliably."""
    size = path.stat().st_size
    n_blocks = (size - HEADER) // BLOCK
    middle = (size // 2 - HEADER) // BLOCK
    junk = np.random.default_rng(seed).bytes(64)
    trial = path.with_name("trial.duckdb")
    for block in [middle + k for k in range(n_blocks)] + list(range(middle)):
        block %= n_blocks
        offset = HEADER + block * BLOCK + BLOCK // 2
        shutil.copyfile(path, trial)
        with open(trial, "r+b") as fh:
            fh.seek(offset)
            fh.write(junk)
        if _fails_checksum(trial):
            os.replace(trial, path)
            return offset
    raise AssertionError(f"no block of {path} in use?")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def recovery_line(stderr: str, store: Path) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [ln for ln in stderr.splitlines() if ln.startswith("dfatlas: error:")]
    assert len(lines) == 1, stderr
    line = lines[0]
    assert f"store {store} is damaged" in line and "checksum" in line, line
    assert "restoring a copy" in line and f"mv {store} {store}.damaged" in line and "dfatlas demo" not in line
    return line


@pytest.fixture
def damaged_workspace(tmp_path, blazeface_models):
    cfg = face_dataset(tmp_path / "clips", n=6)
    ws = tmp_path / "ws"
    r = cli(["faces", "--config", str(cfg), "--workers", "1"], ws)
    assert r.returncode == 0, r.stderr
    store = ws / "atlas.duckdb"
    offset = damage(store)
    print(f"damaged {store} at offset {offset} of {store.stat().st_size}")
    return cfg, ws, store


def test_damaged_store_is_refused_by_writers_and_readers_with_recovery_advice(damaged_workspace, tmp_path):
    cfg, ws, store = damaged_workspace
    before = sha256(store)
    commands = [
        ["catalog", "show", "--config", str(cfg)],
        ["faces", "--config", str(cfg), "--workers", "1"],
        ["evaluate"],
        ["analyze", "--run", "binary-0000000000", "--input", str(tmp_path / "clips" / "data" / "real")],
    ]
    for args in commands:
        r = cli(args, ws)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        recovery_line(r.stderr, store)
        assert sha256(store) == before, f"{args[0]} wrote into the damaged store"
    with pytest.raises(StoreDamaged):
        Store(store, read_only=True).tables()

    # the advice works: a new store, the stages run again
    store.rename(store.with_name("atlas.duckdb.damaged"))
    r = cli(["faces", "--config", str(cfg), "--workers", "1"], ws)
    assert r.returncode == 0, r.stderr
    assert Store(store, read_only=True).scalar("SELECT count(*) FROM face_videos") == 6


def test_faces_verify_reads_the_whole_store(damaged_workspace):
    cfg, ws, store = damaged_workspace
    r = cli(["faces", "--config", str(cfg), "--workers", "1", "--verify"], ws)
    assert r.returncode == 2
    recovery_line(r.stderr, store)


def test_dashboard_advice_for_a_damaged_store_is_recovery_not_demo(tmp_path, monkeypatch):
    import dashboard.states as states
    from engine.store.connection import damaged

    shown = []

    class Page:
        def __getattr__(self, name):
            return lambda text, *a, **kw: shown.append((name, text))

    monkeypatch.setattr(states, "st", Page())
    ws = str(tmp_path / "ws")
    with states.guard(ws):
        raise damaged(Path(ws) / "atlas.duckdb", "Corrupt database file: computed checksum 1 does not match 2")
    with states.guard(ws):  # a query that hit a damaged block outside the store's own calls
        raise duckdb.Error("Corrupt database file: computed checksum 1 does not match stored checksum 2 in block")
    assert len(shown) == 2
    for kind, text in shown:
        assert kind == "error" and "damaged" in text and "restoring a copy" in text, text
        assert "dfatlas demo" not in text


# --- retraining a finished run ---------------------------------------------------------------------------

def test_retrain_replaces_a_run_with_a_damaged_checkpoint(workspace, tmp_path, capsys):
    from engine.config import load_config
    from engine.models import load_for_inference
    from engine.store.runs import run_rows
    from engine.store.embeddings import embedded_count
    from engine.store.faces import face_rows
    from engine.training import BEST, train
    from testkit.store_builder import StoreBuilder
    from testkit.toy_training import make_toy

    cfg_path = make_toy(workspace, tmp_path, epochs=2)
    cfg = load_config(cfg_path)
    res = train(cfg, "binary", workspace, progress=False)
    run_id, run_dir = res.run_id, res.run_dir
    ids = face_rows(workspace.store(), cfg.faces.settings_key()).column("face_id").to_pylist()[:5]
    StoreBuilder(workspace.store()).embeddings(run_id, ids, "toy/test", np.ones((5, 4), np.float32))
    assert embedded_count(workspace.store(), run_id) == 5

    best = run_dir / BEST
    best.write_bytes(best.read_bytes()[:1000])  # a damaged checkpoint
    with pytest.raises(AtlasError, match="dfatlas train --retrain"):
        load_for_inference(workspace, run_id)
    capsys.readouterr()
    assert train(cfg, "binary", workspace, progress=False).status == "cached"
    assert "--retrain trains it anew" in capsys.readouterr().err

    res = train(cfg, "binary", workspace, retrain=True, progress=False)
    assert res.status == "finished" and [h["epoch"] for h in res.history] == [0, 1]
    aside = list((workspace.runs_dir / ".replaced").iterdir())
    assert len(aside) == 1 and aside[0].name.startswith(run_id)
    assert (aside[0] / BEST).stat().st_size == 1000  # the old folder, kept as it was
    load_for_inference(workspace, run_id)  # the new checkpoint loads
    row = run_rows(workspace.store(), [run_id]).iloc[0]
    assert row.status == "finished" and "retrained on" in row.message and str(aside[0]) in row.message
    assert embedded_count(workspace.store(), run_id) == 0  # results of the old weights are gone

    r = cli(["train", "--config", str(cfg_path), "--approach", "binary", "--discard-old"], workspace.root)
    assert r.returncode == 2 and "--discard-old only goes with --retrain" in r.stderr
    r = cli(["train", "--config", str(cfg_path), "--approach", "binary", "--retrain", "--discard-old"],
            workspace.root)
    assert r.returncode == 0, r.stderr
    assert "the earlier run folder was deleted" in r.stderr
    assert len(list((workspace.runs_dir / ".replaced").iterdir())) == 1
    assert "was deleted" in run_rows(workspace.store(), [run_id]).iloc[0].message
