"""Reliability 3: Analyse jobs that die at start, and page actions that fail, are explained on the page.

- one set-name rule (`engine.analysis.sanitize_name`) for the page and `dfatlas analyze --name`: a name
  starting with `-` used to pass the page and be refused by the job's argument parser, leaving the page at
  "Starting analysis job…" forever;
- a job whose process ends before it creates its row shows "the job stopped before it started" with the
  last line of its log, as soon as the process has exited (`engine.jobs.read_started_job`);
- a job killed after creating its row reads as failed even while it is an unreaped child of the server;
- a workspace that refuses the job's log or the upload (read-only, full) is a one-line `st.error`, not
  Streamlit's error page.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from engine import analysis as an
from engine import jobs
from engine.cli import build_parser
from tests.helpers.analyze_fixture import RUN_ID
from tests.integration.test_analyze_page import _app, _store_with_dashboard
from tests.integration.test_analyze_page import _texts as _rendered
from tests.reliability.reliability_util import wait_for

pytestmark = pytest.mark.timeout(300)

NAMES = ["Case A", "-x", "--help", "-leading-dash", "..hidden", "x; rm -rf /", "ünïcödé 42", "a" * 200,
         "-", "///", "..", "  "]


def _texts(at) -> str:
    """The page's texts as a reader sees them (dashboard.plain's Markdown escapes and word joiners removed)."""
    from dashboard.plain import WORD_JOINER

    return _rendered(at).replace("\\", "").replace(WORD_JOINER, "")


def _cli_name(name: str) -> str | None:
    """What `dfatlas analyze --name NAME` makes of a name (None: refused, exit 2)."""
    try:
        return build_parser().parse_args(["analyze", "--run", "r", "--input", "x", f"--name={name}"]).name
    except SystemExit as exc:
        assert exc.code == 2
        return None


def _page_name(name: str) -> str | None:
    try:
        return an.sanitize_name(name)
    except an.AnalysisError:
        return None


@pytest.mark.parametrize("name", NAMES)
def test_one_set_name_rule_for_page_and_cli(name, capsys):
    assert _cli_name(name) == _page_name(name)
    clean = _page_name(name)
    if clean is None:
        assert "give a name with letters or digits" in capsys.readouterr().err
    else:
        assert not clean.startswith(("-", ".")) and len(clean) <= 80
        assert _page_name(clean) == clean  # the rule is idempotent: the job keeps the page's name


@pytest.fixture
def page(workspace, tmp_path):
    allowed = tmp_path / "allowed"
    (allowed / "case-a").mkdir(parents=True)
    (allowed / "case-a" / "v1.avi").write_bytes(b"RIFF\0\0\0\0AVI LIST")
    store = _store_with_dashboard(workspace.root, [str(allowed)])
    return workspace, store, allowed


def _click_analyse(name: str):
    at = _app().run()
    assert not at.exception, at.exception
    at.selectbox(key="an_sub").set_value("case-a")
    at.text_input(key="an_name").set_value(name)
    at.button(key="an_go").click().run()
    assert not at.exception, at.exception
    return at


def test_a_leading_dash_name_reaches_the_job_as_an_accepted_argument(page, monkeypatch):
    ws, *_ = page
    started = []
    monkeypatch.setattr(jobs, "start_background", lambda w, job_id, argv: started.append((job_id, argv)))
    _click_analyse("-Case 7")
    (job_id, argv), = started
    args = build_parser().parse_args([*argv, "--workspace", str(ws.root), "--job-id", job_id])  # no exit 2
    assert args.name == "case-7" and args.run == RUN_ID
    started.clear()
    at = _click_analyse("///")
    assert started == [] and "give a name with letters or digits" in _texts(at)


def test_a_job_that_dies_at_start_shows_its_reason(page, monkeypatch):
    """The job's own argument parser refuses it (here: an injected bad number): the page says why."""
    ws, *_ = page
    real_start = jobs.start_background
    monkeypatch.setattr(jobs, "start_background",
                        lambda w, job_id, argv: real_start(w, job_id, [*argv, "--workers", "-1"]))
    at = _click_analyse("case a")
    job_id = at.session_state["analyse_job"]["job_id"]
    assert "Starting analysis job" in _texts(at)
    proc = jobs._STARTED[job_id]
    proc.wait(timeout=120)
    at.run()
    assert not at.exception, at.exception
    text = _texts(at)
    assert "The analysis failed: the job stopped before it started (exit code 2)" in text, text
    assert "argument --workers: -1 is out of range" in text
    assert "Starting analysis job" not in text


def test_a_workspace_that_refuses_the_job_is_explained(page):
    ws, *_ = page
    ws.jobs_dir.rmdir() if ws.jobs_dir.is_dir() else None
    ws.jobs_dir.write_text("not a folder")  # refuses mkdir even as root (chmod does not)
    at = _click_analyse("case a")
    text = _texts(at)
    assert "Could not start the analysis: cannot start the job: cannot write its log" in text, text
    assert "analyse_job" not in at.session_state


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder anyway")
def test_a_read_only_workspace_is_explained(page):
    ws, *_ = page
    os.chmod(ws.root, 0o500)
    try:
        at = _click_analyse("case a")
        assert "Could not start the analysis:" in _texts(at)
    finally:
        os.chmod(ws.root, 0o700)


def test_an_oserror_from_any_start_step_is_one_line(page, monkeypatch):
    ws, *_ = page

    def refuse(*_):
        raise PermissionError(13, "Permission denied", str(ws.jobs_dir))

    monkeypatch.setattr(jobs, "start_background", refuse)
    at = _click_analyse("case a")
    assert f"Could not start the analysis: Permission denied: {ws.jobs_dir}" in _texts(at)


def test_an_upload_the_workspace_refuses_leaves_nothing(workspace):
    from dashboard.uploads import save_uploads

    workspace.uploads_dir.write_text("not a folder")
    good = b"\0\0\0\x18ftypmp42" + b"\0" * 100
    with pytest.raises(an.AnalysisError, match="cannot save the upload under .*is the workspace writable"):
        save_uploads(workspace, "case", [("a.mp4", good)], max_upload_mb=1)
    assert workspace.uploads_dir.read_text() == "not a folder"


def test_read_started_job_reports_an_early_exit_and_a_killed_job(page, tmp_path):
    ws, store, allowed = page
    # dies before its row: the log's last line is the reason
    proc = jobs.start_background(ws, "early", ["analyze", "--run", RUN_ID, "--input", "x", "--no-such-flag"])
    proc.wait(timeout=120)
    job = jobs.read_started_job(ws, store, "early")
    assert job["status"] == "failed" and "unrecognized arguments: --no-such-flag" in job["message"], job
    # creates its row, then waits for the workspace lock; killed there, it stays an unreaped child
    # of this process (a zombie, whose pid still answers kill 0) until read_started_job polls it
    with ws.lock("test holds the workspace"):
        proc = jobs.start_background(ws, "killed", ["analyze", "--run", RUN_ID, "--input", str(allowed)])
        assert wait_for(lambda: (jobs.read_job(store, "killed") or {}).get("status") == "running", timeout=120), \
            jobs.read_log_tail(ws, "killed")
        assert jobs.read_started_job(ws, store, "killed")["status"] == "running"
        os.killpg(proc.pid, signal.SIGKILL)
        time.sleep(0.5)
        assert jobs.read_job(store, "killed")["status"] == "running"  # the zombie: what the page used to show
        assert wait_for(lambda: jobs.read_started_job(ws, store, "killed")["status"] == "failed", timeout=30)
    job = jobs.read_started_job(ws, store, "killed")
    assert "ended without finishing" in job["message"]
    assert proc.returncode == -signal.SIGKILL


def test_a_slow_start_is_still_starting(page):
    """While the process runs without a row, the page keeps "Starting" (no false failure)."""
    ws, store, _ = page
    with ws.lock("test holds the workspace"):
        proc = jobs.start_background(ws, "slow", ["analyze", "--run", RUN_ID, "--input", "/nonexistent"])
        seen = jobs.read_started_job(ws, store, "slow")
        assert seen is None or seen["status"] == "running"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    job = jobs.read_started_job(ws, store, "slow")  # killed with or without its row: failed either way
    assert job["status"] == "failed"
