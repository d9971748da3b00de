"""The dashboard's Analyse page (Streamlit AppTest) and its input-safety helpers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from tests.helpers.analyze_fixture import RUN_ID, build_store, run_config
from dashboard.uploads import save_uploads
from engine import analysis as an
from engine.store.projections import points_table, write_points

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "dashboard" / "pages" / "analyse.py"

SCRIPT = f"""
import runpy
import streamlit as st
from dashboard import controls, queries

path = queries.store_path()
sig = queries.signature(path)
ov = queries.overview(path, sig)
st.session_state["_view"] = controls.sidebar(path, sig, ov)
runpy.run_path({str(PAGE)!r}, run_name="__analyse_page__")
"""


def _store_with_dashboard(ws_root: Path, allowed: list[str], max_mb: int = 1):
    store = build_store(ws_root)
    cfg = run_config() | {"dashboard": {"allowed_roots": allowed, "max_upload_mb": max_mb}}
    store.execute("UPDATE runs SET config_json = ? WHERE run_id = ?", [json.dumps(cfg), RUN_ID])
    return store


def _app(timeout=60):
    from streamlit.testing.v1 import AppTest

    return AppTest.from_string(SCRIPT, default_timeout=timeout)


def _texts(at) -> str:
    parts = []
    for kind in ("markdown", "caption", "info", "error", "warning", "success", "subheader", "header"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


@pytest.fixture
def page_ws(workspace, tmp_path):
    allowed = tmp_path / "allowed"
    (allowed / "case-a" / "inner").mkdir(parents=True)
    (allowed / "case-a" / "v1.avi").write_bytes(b"RIFF\0\0\0\0AVI LIST")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.avi").write_bytes(b"RIFF\0\0\0\0AVI LIST")
    os.symlink(outside, allowed / "escape")
    store = _store_with_dashboard(workspace.root, [str(allowed)])
    return workspace, store, allowed, outside


def test_folder_under_allowed_roots_starts_a_background_job(page_ws, monkeypatch):
    ws, store, allowed, _ = page_ws
    started = []
    from engine import jobs

    monkeypatch.setattr(jobs, "start_background", lambda w, job_id, argv: started.append((job_id, argv)))
    at = _app().run()
    assert not at.exception, at.exception
    sub = at.selectbox(key="an_sub")
    assert "case-a" in sub.options and "case-a/inner" in sub.options
    sub.set_value("case-a")
    at.text_input(key="an_name").set_value("Case A")
    at.button(key="an_go").click().run()
    assert not at.exception
    assert len(started) == 1
    job_id, argv = started[0]
    assert argv[argv.index("--input") + 1] == str((allowed / "case-a").resolve())
    assert argv[argv.index("--run") + 1] == RUN_ID and argv[argv.index("--name") + 1] == "case-a"  # the checked name
    assert at.session_state["analyse_job"]["job_id"] == job_id
    assert "Starting analysis job" in _texts(at)


def test_symlink_out_of_the_allowed_roots_is_refused(page_ws, monkeypatch):
    ws, store, allowed, outside = page_ws
    from engine import jobs

    started = []
    monkeypatch.setattr(jobs, "start_background", lambda *a: started.append(a))
    at = _app().run()
    at.selectbox(key="an_sub").set_value("escape").run()
    assert "outside the folders this dashboard may read" in _texts(at)
    at.button(key="an_go").click().run()
    assert started == []
    # the helper itself: resolved symlinks, prefixes that only look alike
    with pytest.raises(an.AnalysisError):
        an.resolve_under_roots(allowed / "escape" / "secret.avi", [allowed])
    with pytest.raises(an.AnalysisError):
        an.resolve_under_roots(str(allowed) + "-evil", [allowed])
    with pytest.raises(an.AnalysisError):
        an.resolve_under_roots(allowed / ".." / "outside", [allowed])
    assert an.resolve_under_roots(allowed / "case-a" / "..", [allowed]) == allowed.resolve()


def test_job_progress_and_failure_are_shown(page_ws):
    ws, store, *_ = page_ws
    store.insert("jobs", pa.table({"job_id": ["j-run", "j-bad"], "kind": ["analyze"] * 2,
                                   "status": ["running", "failed"], "progress": [0.42, 0.1],
                                   "message": ["faces: 5/12", "no face was found in any of the 3 videos"],
                                   "pid": [os.getpid(), os.getpid()]}))
    at = _app()
    at.session_state["analyse_job"] = {"job_id": "j-run", "run_id": RUN_ID, "name": "x"}
    at.run()
    assert not at.exception
    bars = at.get("progress")
    assert len(bars) == 1 and bars[0].proto.value == 42
    assert "faces: 5/12" in bars[0].proto.text
    at2 = _app()
    at2.session_state["analyse_job"] = {"job_id": "j-bad", "run_id": RUN_ID, "name": "x"}
    at2.run()
    assert "The analysis failed: no face was found" in _texts(at2)


def test_results_map_table_and_evidence(page_ws):
    ws, store, *_ = page_ws
    from tests.integration.test_analyze import _add_unknown_set

    _add_unknown_set(store, name="case")
    ids = store.df("SELECT face_id FROM embeddings WHERE dataset = 'unknown/case'")["face_id"].tolist()
    xy = np.stack([np.arange(len(ids), dtype=float), np.zeros(len(ids))], axis=1)
    write_points(store, points_table("proj1", "unknown/case", ids, xy, is_reference=False))
    from data_catalog.databases import Problem
    from engine.store.catalog import problems_table

    store.insert("catalog_problems", problems_table(  # an input file the analysis did not use: shown, plain
        [("unknown", Problem("refused_image", "/in/[x](http://evil.example).gif", "a GIF: not read"))], "unknown/case"))
    at = _app().run()
    assert not at.exception, at.exception
    text = _texts(at)
    assert "1 input problem(s): files not used" in [e.label for e in at.expander]
    assert "a GIF: not read" in text and "](http" not in text
    assert "Results: `unknown/case`" in text
    assert "resemble no known class" in text
    assert "one per identity" in text and "t-SNE" in text
    frames = [df.value for df in at.dataframe]
    per_video = [f for f in frames if "verdict" in f.columns]
    assert per_video and len(per_video[0]) == 12
    assert (per_video[0]["verdict"] == an.OPEN_SET_LABEL).sum() == 3
    assert "of the nearest identities of any class are of the predicted class" in text and "Verdict:" in text
    verdicts = [f for f in frames if "video %" in f.columns]
    assert verdicts and verdicts[0]["class"].iloc[-1] == an.OPEN_SET_LABEL


def test_uploads_are_checked_and_sanitised(workspace):
    good = b"\0\0\0\x18ftypmp42" + b"\0" * 100
    res = save_uploads(workspace, "My Upload", [("../../evil name.MP4", good), ("x.mp4", b"hello world!!!!!"),
                                                   ("big.avi", b"RIFF\0\0\0\0AVI " + b"\0" * 2_000_000),
                                                   ("doc.txt", good)], max_upload_mb=1)
    assert res.saved == ["evil_name.mp4"]
    assert res.folder.parent == workspace.uploads_dir and res.folder.name.startswith("my-upload-")
    assert (res.folder / "evil_name.mp4").read_bytes() == good
    assert len(res.refused) == 3 and any("over the 1" in r for r in res.refused)
    with pytest.raises(an.AnalysisError, match="no video to analyse"):
        save_uploads(workspace, "x", [("a.mp4", b"not a video at all")], max_upload_mb=1)
    assert an.looks_like_video(b"RIFF\0\0\0\0AVI LIST", "a.avi")
    assert not an.looks_like_video(b"RIFF\0\0\0\0WAVEfmt ", "a.avi")
    assert an.sanitize_filename("..\\..\\.hidden.Mp4") == "hidden.mp4"


def test_page_is_in_the_apps_navigation(page_ws):
    from streamlit.testing.v1 import AppTest

    from dashboard.app import PAGES

    assert any(f == "analyse.py" for f, *_ in PAGES)
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60).run()
    at.switch_page("dashboard/pages/analyse.py").run()
    assert not at.exception, at.exception
    assert "Analyse an unknown set" in _texts(at)
