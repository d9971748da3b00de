"""`dfatlas demo` orchestration: benchmark reuse and bad input (the full run is CI's smoke step)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from data_catalog.errors import AtlasError
from engine import demo
from engine.workspace import resolve_workspace

ROOT = Path(__file__).resolve().parents[2]


def test_benchmark_is_reused_only_when_seed_and_size_match(tmp_path, monkeypatch):
    calls = []

    class FakeSummary:
        n_videos, n_frames = 3, 24

        def __init__(self, out):
            self.config = Path(out) / "demo.toml"

    def fake_generate(out, seed, size, progress=None, force=True):
        calls.append((seed, size))
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "demo.toml").write_text("")
        return FakeSummary(out)

    import data_catalog.synthetic as synthetic

    monkeypatch.setattr(synthetic, "generate", fake_generate)
    ws = resolve_workspace(tmp_path / "ws").ensure()
    path, note = demo.ensure_benchmark(ws, "small", 0)
    assert calls == [(0, "small")] and "videos" in note and path == ws.root / "demo-data" / "demo.toml"
    assert json.loads((ws.root / "demo-data" / demo.MARKER).read_text()) == {
        "size": "small", "seed": 0, "generator": synthetic.GENERATOR_VERSION}
    assert demo.ensure_benchmark(ws, "small", 0)[1] == "cache hit" and len(calls) == 1
    demo.ensure_benchmark(ws, "small", 1)  # another seed: generated again
    assert calls[-1] == (1, "small")
    marker = ws.root / "demo-data" / demo.MARKER  # written by an older generator: generated again
    marker.write_text(json.dumps({"size": "small", "seed": 1}))
    demo.ensure_benchmark(ws, "small", 1)
    assert len(calls) == 3


def test_unknown_size_is_a_clear_error(tmp_path):
    with pytest.raises(AtlasError, match="--size"):
        demo.run_demo(resolve_workspace(tmp_path / "ws"), size="huge")


def test_demo_refuses_a_busy_workspace(tmp_path):
    ws = resolve_workspace(tmp_path / "ws")
    with ws.lock("another job"):
        proc = subprocess.run([sys.executable, "-m", "engine.cli", "demo", "--workspace", str(ws.root),
                               "--size", "small", "--no-serve"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and "in use by another dfatlas job" in proc.stderr
    assert "Traceback" not in proc.stderr
