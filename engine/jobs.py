"""Background jobs: a row in the store's `jobs` table that a subprocess keeps current.

The dashboard never computes: it starts `dfatlas <command> ... --job-id ID` as a
detached subprocess (`start_background`), and polls the `jobs` row (`read_job`)
read-only. The subprocess creates the row (`create_job`), and updates it through
the store as it goes (`update_job`: one short unit of work per update, so a
reader is never blocked for long), then `finish_job`. Its stdout/stderr go to
`<workspace>/jobs/<job_id>.log` so a failure can be shown in full.

A job whose process died without finishing (kill -9, power loss) is reported as
`failed` by `read_job` when its pid no longer runs. A job whose process ended
before it could create its row (its arguments refused, the store unwritable)
is reported as `failed` by `read_started_job`, with the last line the process
wrote to its log as the reason, as soon as the process has exited.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pandas as pd

from data_catalog.errors import AtlasError

from .store import Store
from .store import jobs as job_table
from .workspace import Workspace

_JOB_ID = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")
# Updates closer together than this are skipped (except the final ones), so a
# fast loop does not hammer the store with writes.
MIN_UPDATE_INTERVAL_S = 0.5


def new_job_id(kind: str) -> str:
    return f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


def check_job_id(job_id: str) -> str:
    if not _JOB_ID.match(job_id or ""):
        raise AtlasError(f"job id {job_id!r}: use letters, digits, '.', '_' or '-' (at most 80)")
    return job_id


def create_job(store: Store, job_id: str, kind: str, params: dict | None = None) -> None:
    """Insert (or reset) the job's row as `running` with this process's pid."""
    check_job_id(job_id)
    job_table.write_job(store, job_table.jobs_table(job_id, kind, params, os.getpid()))


class JobUpdater:
    """A callable `(fraction, message)` that writes the job row, rate-limited."""

    def __init__(self, store: Store, job_id: str):
        self.store = store
        self.job_id = job_id
        self._last = 0.0
        self._last_message = None

    def __call__(self, fraction: float, message: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and message == self._last_message and now - self._last < MIN_UPDATE_INTERVAL_S:
            return
        self._last, self._last_message = now, message
        job_table.update_progress(self.store, self.job_id, float(min(max(fraction, 0.0), 1.0)), message[:2000])


def finish_job(store: Store, job_id: str, ok: bool, message: str) -> None:
    """The job's final row: finished (progress 1) or failed."""
    job_table.finish(store, job_id, ok, message[:4000])


def _pid_alive(pid) -> bool:
    if pid is None or pd.isna(pid):
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_job(store: Store, job_id: str) -> dict | None:
    """The job's row as a dict (None if it does not exist yet).

    A `running` job whose process is gone is returned as `failed`.
    """
    if not store.path.exists():
        return None
    row = job_table.job_row(store, job_id)
    if row is None:
        return None
    if row["status"] in ("queued", "running") and not _pid_alive(row.get("pid")):
        row["status"] = "failed"
        row["message"] = f"the job's process (pid {row.get('pid')}) ended without finishing: {row.get('message')}"
    return row


def job_log_path(workspace: Workspace, job_id: str) -> Path:
    return workspace.jobs_dir / f"{check_job_id(job_id)}.log"


# The processes this process started, by job id: polled (which also reaps them) to tell a job that
# ended before creating its row from one still starting.
_STARTED: dict[str, subprocess.Popen] = {}


def start_background(workspace: Workspace, job_id: str, argv: list[str]) -> subprocess.Popen:
    """Start `dfatlas ARGV --job-id JOB_ID` detached; output goes to the job's log file.

    `argv` is a list (never a shell string), so no user text is ever parsed by a shell. A workspace
    that cannot take the log (read-only, full) or a process that cannot start is an AtlasError.
    """
    log_path = job_log_path(workspace, job_id)
    try:
        workspace.jobs_dir.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "ab")
    except OSError as exc:
        raise AtlasError(f"cannot start the job: cannot write its log {log_path} "
                         f"({exc.strerror or exc}); is the workspace writable?") from None
    cmd = [sys.executable, "-m", "engine.cli", *argv, "--workspace", str(workspace.root), "--job-id", job_id]
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    try:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=root, env=env)
    except OSError as exc:
        raise AtlasError(f"cannot start the job's process {sys.executable} ({exc.strerror or exc})") from None
    finally:
        log.close()
    _STARTED[job_id] = proc
    return proc


def read_started_job(workspace: Workspace, store: Store, job_id: str) -> dict | None:
    """`read_job` for a job this process started: None while its process is still starting, and a
    `failed` row (the log's last line as the message) when the process ended without creating its row."""
    proc = _STARTED.get(job_id)
    code = proc.poll() if proc is not None else None  # also reaps it, so a dead job's pid reads as gone
    row = read_job(store, job_id)
    if row is not None or code is None:
        return row
    last = last_log_line(workspace, job_id) or "(it wrote nothing)"
    return {"job_id": job_id, "status": "failed", "progress": 0.0, "pid": proc.pid,
            "message": f"the job stopped before it started (exit code {code}): {last}"}


def last_log_line(workspace: Workspace, job_id: str) -> str:
    """The last non-empty line of the job's log ('' if none): a refused argument, an error, an exception."""
    lines = [ln.strip() for ln in read_log_tail(workspace, job_id, 2000).splitlines()]
    return next((ln for ln in reversed(lines) if ln), "")


def read_log_tail(workspace: Workspace, job_id: str, n_chars: int = 4000) -> str:
    path = job_log_path(workspace, job_id)
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - n_chars))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
