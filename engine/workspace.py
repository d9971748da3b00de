"""The workspace: one folder that holds the store, face crops, runs and models.

Resolution order: `--workspace DIR`, else `$DFATLAS_WORKSPACE`, else
`./dfatlas-workspace`. Jobs that write take an exclusive lock file there so
two jobs never write the same workspace at once.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from data_catalog.errors import AtlasError

ENV_VAR = "DFATLAS_WORKSPACE"
DEFAULT_DIR = "dfatlas-workspace"
STORE_FILE = "atlas.duckdb"
LOCK_FILE = "job.lock"


class WorkspaceBusy(AtlasError):
    """Another job holds the workspace lock."""


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def store_path(self) -> Path:
        return self.root / STORE_FILE

    @property
    def faces_dir(self) -> Path:
        return self.root / "faces"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def uploads_dir(self) -> Path:
        return self.root / "uploads"

    @property
    def jobs_dir(self) -> Path:
        return self.root / "jobs"

    @property
    def lock_path(self) -> Path:
        return self.root / LOCK_FILE

    def run_dir(self, run_id: str) -> Path:
        return self.runs_dir / run_id

    def ensure(self) -> "Workspace":
        """Create the folder tree; a clear error if the disk refuses."""
        try:
            for d in (self.root, self.faces_dir, self.runs_dir, self.models_dir):
                d.mkdir(parents=True, exist_ok=True)
            probe = self.root / ".write-probe"
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            raise AtlasError(f"workspace {self.root}: cannot write there ({exc.strerror or exc})") from None
        return self

    def store(self, read_only: bool = False):
        from .store import Store

        return Store(self.store_path, read_only=read_only)

    @contextmanager
    def lock(self, job: str, wait: bool = False, timeout: float | None = None):
        """Hold the workspace's job lock for the duration of a writing job.

        The lock is an `flock` on a file, so it is released by the kernel when
        the process dies (kill -9 included): a stale lock never blocks.
        """
        self.ensure()
        fh = open(self.lock_path, "a+")
        start = time.monotonic()
        announced = False
        try:
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    holder = _read_holder(self.lock_path)
                    if not wait or (timeout is not None and time.monotonic() - start > timeout):
                        raise WorkspaceBusy(
                            f"workspace {self.root} is in use by another dfatlas job ({holder}); "
                            "wait for it to finish, or pass --wait to queue behind it"
                        ) from None
                    if not announced:
                        print(f"waiting for the workspace lock held by {holder} ...", file=sys.stderr)
                        announced = True
                    time.sleep(0.5)
            fh.seek(0)
            fh.truncate()
            fh.write(json.dumps({"pid": os.getpid(), "job": job, "since": time.strftime("%Y-%m-%d %H:%M:%S")}))
            fh.flush()
            yield self
        finally:
            try:
                fcntl.flock(fh, fcntl.LOCK_UN)
            finally:
                fh.close()


def _read_holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
        return f"'{info.get('job', '?')}', pid {info.get('pid', '?')}, since {info.get('since', '?')}"
    except (OSError, ValueError):
        return "unknown job"


def resolve_workspace(arg: str | os.PathLike | None = None) -> Workspace:
    """`--workspace`, else the environment variable, else ./dfatlas-workspace."""
    if arg:
        root = Path(arg)
    elif os.environ.get(ENV_VAR):
        root = Path(os.environ[ENV_VAR])
    else:
        root = Path.cwd() / DEFAULT_DIR
    root = root.expanduser().absolute()
    if root.exists() and not root.is_dir():
        raise AtlasError(f"workspace {root}: exists and is not a folder")
    return Workspace(root)
