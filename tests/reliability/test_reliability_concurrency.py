"""Reliability 3: concurrent use of one workspace, with real processes.

One scenario, several checks: a `dfatlas train` job writes the store while
- a dashboard reader process loops the dashboard's own read path
  (`dashboard.queries.overview` + an uncached read-only query) — it must keep
  answering, see the job's progress as it happens, and never fail;
- a second job (`dfatlas embed`) is refused with the workspace-lock message
  (exit 2, no traceback), and a third (`dfatlas train --wait`) waits and then
  completes;
and afterwards the store opens cleanly with every row of both runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.reliability.reliability_util import ROOT, assert_store_consistent, cli, cli_env, start_cli, toy_config, wait_for

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]

READER = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
import logging
logging.disable(logging.WARNING)
from pathlib import Path
import dashboard.queries as d
path, stop = sys.argv[1], Path(sys.argv[2])
n = 0; errors = []; epochs_seen = []; lat = []
t_end = time.monotonic() + 300
while not stop.exists() and time.monotonic() < t_end:
    t0 = time.perf_counter()
    try:
        ov = d.overview(path, d.signature(path))
        e = int(d.read_store(path).scalar("SELECT count(*) FROM epochs"))
        n += 1
        if not epochs_seen or epochs_seen[-1] != e:
            epochs_seen.append(e)
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
    lat.append(time.perf_counter() - t0)
    time.sleep(0.02)
lat.sort()
print(json.dumps({"reads": n, "errors": errors[:5], "n_errors": len(errors), "epochs_seen": epochs_seen,
                  "median_s": lat[len(lat) // 2] if lat else None,
                  "p95_s": lat[int(0.95 * (len(lat) - 1))] if lat else None, "max_s": lat[-1] if lat else None}))
"""


A_EPOCHS = 16  # the first job runs long enough for the other two to start while it holds the lock


def _lock_holder(ws_root) -> dict:
    try:
        return json.loads((ws_root / "job.lock").read_text() or "{}")
    except (OSError, ValueError):
        return {}


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    from engine.config import load_config
    from engine.workspace import resolve_workspace

    tmp = tmp_path_factory.mktemp("conc")
    ws = resolve_workspace(tmp / "ws").ensure()
    cfg_path = toy_config(ws, tmp, epochs=6)
    cfg = load_config(cfg_path)
    out: dict = {"ws": ws, "cfg": cfg, "tmp": tmp}
    stop = tmp / "stop-reader"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(ws.store_path), str(stop)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=str(ROOT), env=cli_env(ws.root))
    job_a = start_cli(["train", "--config", str(cfg_path), "--approach", "attribution", "--epochs", str(A_EPOCHS)],
                      ws.root, log=tmp / "a.log")
    job_c = None
    try:
        assert wait_for(lambda: _lock_holder(ws.root).get("pid") == job_a.pid or job_a.poll() is not None, 240)
        out["a_held_lock"] = _lock_holder(ws.root).get("pid") == job_a.pid
        # while it runs: a second writing job (refused with the lock message) and a third with --wait
        job_c = start_cli(["train", "--config", str(cfg_path), "--approach", "binary", "--wait"], ws.root,
                          log=tmp / "c.log")
        out["b"] = cli(["embed", "--config", str(cfg_path)], ws.root, timeout=240)
        out["a_running_when_b_refused"] = job_a.poll() is None
        out["a_rc"] = job_a.wait(timeout=400)
        out["c_rc"] = job_c.wait(timeout=400)
        out["c_waited"] = "waiting for the workspace lock held by 'train attribution'" in (tmp / "c.log").read_text(
            errors="replace")
    finally:
        for p in (job_a, job_c):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
        stop.write_text("stop")
        rout, rerr = reader.communicate(timeout=120)
    assert reader.returncode == 0, rerr[-3000:]
    out["reader"] = json.loads(rout.strip().splitlines()[-1])
    out["a_log"] = (tmp / "a.log").read_text(errors="replace")
    out["c_log"] = (tmp / "c.log").read_text(errors="replace")
    return out


def test_dashboard_read_path_stays_usable_while_a_job_writes(scenario):
    r = scenario["reader"]
    print("reader:", r)
    assert r["n_errors"] == 0, r["errors"]
    assert r["reads"] >= 20, r
    # it saw the job's epochs arrive one by one, not only once the job ended
    assert len(r["epochs_seen"]) >= 3 and r["epochs_seen"] == sorted(r["epochs_seen"]), r


def test_second_job_gets_the_lock_message_and_waiter_completes(scenario):
    b = scenario["b"]
    assert scenario["a_held_lock"] and scenario["a_running_when_b_refused"]
    assert b.returncode == 2, (b.returncode, b.stderr[-2000:])
    assert "Traceback" not in b.stderr
    assert "is in use by another dfatlas job" in b.stderr and "train attribution" in b.stderr and "--wait" in b.stderr
    assert scenario["c_waited"], scenario["c_log"][-2000:]
    assert scenario["a_rc"] == 0, scenario["a_log"][-3000:]
    assert scenario["c_rc"] == 0, scenario["c_log"][-3000:]


def test_store_intact_after_concurrent_use(scenario):
    ws, cfg = scenario["ws"], scenario["cfg"]
    counts = assert_store_consistent(ws.store_path)
    runs = ws.store(read_only=True).df("SELECT run_id, status, epochs_done FROM runs ORDER BY run_id")
    from engine.training import apply_overrides

    a_id = apply_overrides(cfg, None, A_EPOCHS).run_id("attribution")
    assert sorted(runs.run_id) == sorted([a_id, cfg.run_id("binary")])
    assert (runs.status == "finished").all()
    assert dict(zip(runs.run_id, runs.epochs_done)) == {a_id: A_EPOCHS, cfg.run_id("binary"): cfg.train.epochs}
    assert counts["epochs"] == A_EPOCHS + cfg.train.epochs


def test_connection_discipline_in_the_source():
    """Only engine/store.py opens the DuckDB file, and every `.connect()` elsewhere is the
    context of a `with` (one unit of work); nothing cached across reruns holds a connection."""
    import ast

    offenders = []
    files = [ROOT / "streamlit_app.py"] + sorted((ROOT / "engine").rglob("*.py")) + sorted(
        (ROOT / "dashboard").rglob("*.py")) + sorted((ROOT / "data_catalog").rglob("*.py"))
    for f in files:
        rel = f.relative_to(ROOT).as_posix()
        tree = ast.parse(f.read_text(), rel)
        with_ctx = {id(item.context_expr) for n in ast.walk(tree) if isinstance(n, (ast.With, ast.AsyncWith))
                    for item in n.items}
        for n in ast.walk(tree):
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "connect":
                target = ast.unparse(n.func.value)
                if target == "duckdb" and rel != "engine/store/connection.py":
                    offenders.append(f"{rel}:{n.lineno}: duckdb.connect outside engine/store/connection.py")
                elif target not in ("duckdb", "s", "socket") and rel != "engine/store/connection.py" and id(n) not in with_ctx:
                    offenders.append(f"{rel}:{n.lineno}: {target}.connect() outside a with block")
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(
                    "cache_resource" in ast.unparse(d) for d in n.decorator_list):
                body = ast.unparse(n)
                if "connect(" in body or "duckdb" in body:
                    offenders.append(f"{rel}:{n.lineno}: cache_resource function {n.name} touches a connection")
    assert not offenders, offenders
