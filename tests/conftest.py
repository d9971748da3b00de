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
