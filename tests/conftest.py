"""Shared fixtures: every test makes its own tiny data in tmp_path."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Keep tests on one thread per process and away from any user workspace.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    from engine.workspace import resolve_workspace

    ws = resolve_workspace(tmp_path / "ws").ensure()
    monkeypatch.setenv("DFATLAS_WORKSPACE", str(ws.root))
    return ws


@pytest.fixture(scope="session")
def blazeface_models():
    """The face stage's models (BlazeFace short and full range, the face-landmark model that confirms
    fall-back faces) through the project's own resolver (offline after the first run: the first run
    may `pip download` the mediapipe 0.10.21 wheel once into ~/.cache/dfatlas)."""
    from engine.faces import resolve_models

    return resolve_models(["short_range", "full_range", "face_landmark"], allow_download=False)


# --- leave nothing running --------------------------------------------------------------------------
# A dashboard server that outlives its test (re-parented to init when the `dfatlas serve` above it died)
# holds a port for ever: the session fails if any Streamlit server of this checkout started during it
# is still alive at the end (and stops it, so one leak does not become many).

_SESSION_START = None


def pytest_sessionstart(session):
    global _SESSION_START
    import time

    _SESSION_START = time.time() - 1.0


def leaked_servers() -> list:
    import psutil

    entry = str(ROOT / "streamlit_app.py")
    out = []
    for p in psutil.process_iter(["pid", "cmdline", "create_time"]):
        cmd = p.info.get("cmdline") or []
        if _SESSION_START and p.info["create_time"] >= _SESSION_START and "streamlit" in " ".join(cmd[:4]) \
                and entry in cmd:
            out.append(p)
    return out


def pytest_sessionfinish(session, exitstatus):
    import psutil

    leaks = leaked_servers()
    if not leaks:
        return
    for p in leaks:
        try:
            p.kill()
        except psutil.Error:
            pass
    lines = [f"pid {p.pid}: {' '.join(p.info['cmdline'])[:160]}" for p in leaks]
    session.config.get_terminal_writer().line(
        "\nleft running by the test session (now killed):\n  " + "\n  ".join(lines), red=True)
    session.exitstatus = 1


@pytest.fixture(autouse=True)
def restore_main_module():
    """Streamlit's script runner installs each script as `sys.modules["__main__"]` and never puts the
    old one back, so after an in-process AppTest a spawn-context pool (face extraction) would re-run
    that script in every worker and lose them all. Each test gets the `__main__` it started with."""
    main = sys.modules.get("__main__")
    yield
    if main is not None:
        sys.modules["__main__"] = main
