"""Reliability 5: five concurrent dashboard sessions changing controls, no errors.

The short version of bench/bench_dashboard_load.py (which reports the median and
95th-percentile script times over a minute): five AppTest sessions in threads on
one fixture store, each changing random sidebar controls for a few seconds.
"""

from __future__ import annotations

import importlib.util
import logging

import pytest

from tests.reliability.reliability_util import ROOT

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]
pytest.importorskip("streamlit")


def _bench():
    spec = importlib.util.spec_from_file_location("bench_dashboard_load", ROOT / "bench" / "bench_dashboard_load.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_five_sessions_change_controls_without_errors(tmp_path, monkeypatch):
    from testkit.dashboard_store import build_fixture_store

    ws = tmp_path / "ws"
    build_fixture_store(ws, n_points=400)
    monkeypatch.setenv("DFATLAS_WORKSPACE", str(ws))
    logging.disable(logging.WARNING)
    try:
        res = _bench().run_load(ws, sessions=5, seconds=8, seed=1)
    finally:
        logging.disable(logging.NOTSET)
    print({k: v for k, v in res.items() if k != "errors"})
    assert res["n_errors"] == 0, res["errors"][:5]
    assert res["alive"] == 0, "a session hung"
    assert len(res["steps"]) == 5 and min(res["steps"]) >= 2, res["steps"]
