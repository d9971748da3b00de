"""The run folder: run.json, train_log.jsonl, the checkpoints, and the store rows.

`<workspace>/runs/<run_id>/` holds `run.json` (the run's metadata, rewritten
after every epoch), `train_log.jsonl` (one line per epoch) and `last.pt` /
`best.pt`. Checkpoints hold tensors and plain values only, so
`torch.load(weights_only=True)` reads them. The store's `runs` and `epochs`
rows are written through `engine.store.runs` (`write_run`, `write_epoch`).
Only rank 0 writes: a `RunFolder` of another rank reads but never writes.
"""

from __future__ import annotations

import io
import json
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from data_catalog.errors import AtlasError

from ..diskspace import DiskFull, remove_quietly, write_atomic
from ..models import CHECKPOINT_FORMAT, read_checkpoint
from ..provenance import code_revision, environment
from ..store import runs as run_table
from .loop import NonFiniteLoss, TrainState
from .rng import rng_state

RUN_FILE = "run.json"
LOG_FILE = "train_log.jsonl"
LAST = "last.pt"
BEST = "best.pt"
RETRAIN_NOTE = ".retrained"  # written by retrain_run into the fresh folder; becomes the run's message

_ROW_COLUMNS = [f.name for f in run_table.RUNS_SCHEMA]
_EPOCH_COLUMNS = [f.name for f in run_table.EPOCHS_SCHEMA]


# --- files ---------------------------------------------------------------------------

def check_run_folder(run_dir: Path, run_id: str, approach: str) -> dict | None:
    """The run.json of an existing run folder; errors for a folder that is not this run."""
    if not run_dir.exists():
        return None
    if not run_dir.is_dir():
        raise AtlasError(f"{run_dir} exists and is not a run folder")
    meta_file = run_dir / RUN_FILE
    if not meta_file.is_file():
        if any(not p.name.startswith(".") for p in run_dir.iterdir()):
            raise AtlasError(f"{run_dir} is not a dfatlas run (no {RUN_FILE}); move it away or use another workspace")
        return None
    try:
        meta = json.loads(meta_file.read_text())
    except (OSError, ValueError) as exc:
        raise AtlasError(f"{meta_file}: unreadable run metadata ({exc}); move the folder away to start over") from None
    if meta.get("run_id") != run_id or meta.get("approach") != approach:
        raise AtlasError(f"{run_dir} holds run {meta.get('run_id')!r} ({meta.get('approach')}), not {run_id!r}")
    return meta


def write_json(path: Path, obj: Any) -> None:
    write_atomic(path, json.dumps(obj, indent=1, sort_keys=True, default=str).encode())


def save_checkpoint(path: Path, ckpt: dict) -> None:
    """Serialised in memory first (torch.save's own errors do not say that a disk is full), then written
    through a temp file that a failure removes: a full disk is a `DiskFull` with the checkpoint's size."""
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    write_atomic(path, buf.getbuffer())


def remove_temp_files(run_dir: Path) -> None:
    """Temp files a killed process left in a run folder (a kill -9 between write and rename)."""
    for p in list(run_dir.glob(".tmp-*")) + list(run_dir.glob("*.tmp")):
        remove_quietly(p)


def read_log(run_dir: Path) -> list:
    """The epochs of train_log.jsonl, one record per epoch (the last line of a re-run epoch wins)."""
    path = run_dir / LOG_FILE
    if not path.is_file():
        return []
    out = {}
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
            out[rec["epoch"]] = rec
        except (ValueError, KeyError):
            continue
    return [out[k] for k in sorted(out)]


def retrain_run(ws, run_id: str, discard: bool = False) -> Path | None:
    """Make way for training run `run_id` anew: its folder is moved aside to `runs/.replaced/` (deleted
    with `discard`) and the store's results of its old weights are deleted. Returns where the old
    folder went (None: deleted, or there was none)."""
    import shutil

    run_dir = ws.run_dir(run_id)
    moved = None
    if run_dir.exists() or run_dir.is_symlink():
        if discard:
            if run_dir.is_dir() and not run_dir.is_symlink():
                shutil.rmtree(run_dir)
            else:
                run_dir.unlink()
        else:
            aside = ws.runs_dir / ".replaced"
            aside.mkdir(parents=True, exist_ok=True)
            moved = aside / f"{run_id}-{time.strftime('%Y%m%d-%H%M%S')}"
            n = 1
            while moved.exists():
                n += 1
                moved = aside / f"{run_id}-{time.strftime('%Y%m%d-%H%M%S')}-{n}"
            run_dir.rename(moved)
    counts = run_table.discard_run_results(ws.store(), run_id)
    dropped = ", ".join(f"{n} {t}" for t, n in counts.items() if n) or "no stored results"
    note = (f"retrained on {time.strftime('%Y-%m-%d %H:%M:%S')}: the earlier run folder "
            + (f"is at {moved}" if moved else "was deleted") + f"; its results were dropped ({dropped})")
    run_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(run_dir / RETRAIN_NOTE, note.encode())
    run_table.set_status(ws.store(), run_id, "created", note)
    return moved


# --- what is written -------------------------------------------------------------------

def run_meta(cfg, approach: str, spec, embedding_dim: int, *, prior: dict | None, pretrained_source: str, seed: int,
             state: TrainState, timings: dict, world: int, n_train: int, n_val: int) -> dict:
    """run.json of a run that (re)starts training; `prior` is the folder's earlier run.json (a resume)."""
    prior = prior or {}
    return {
        "run_id": cfg.run_id(approach), "approach": approach, "backbone": spec.backbone,
        "config_json": cfg.to_json(), "config_hash": cfg.config_hash(), "classes": cfg.taxonomy.ids,
        "taxonomy_json": json.dumps(cfg.taxonomy.to_dict()), "settings_key": cfg.faces.settings_key(),
        "embedding_dim": embedding_dim, "pretrained_source": pretrained_source, "seed": seed, "status": "training",
        "message": None, "best_epoch": state.best_epoch if state.best_epoch >= 0 else None,
        "epochs_done": state.start_epoch, "synthetic": bool(cfg.synthetic),
        "train_seconds": prior.get("train_seconds", 0.0), "timings": timings, "code_revision": code_revision(),
        "versions": environment(), "created_at": prior.get("created_at") or time.strftime("%Y-%m-%d %H:%M:%S"),
        "spec": spec.to_dict(), "world_size": world, "device": str(state.device), "bf16": state.bf16,
        "n_train": n_train, "n_val": n_val,
    }


def checkpoint(meta: dict, cfg, spec, state: TrainState, epoch: int) -> dict:
    """last.pt / best.pt: weights, the approach's criterion state, optimiser, RNG states, history."""
    unit = state.unit
    return {
        "format": CHECKPOINT_FORMAT, "run_id": meta["run_id"], "approach": meta["approach"],
        "backbone": spec.backbone, "classes": list(cfg.taxonomy.ids), "spec": spec.to_dict(), "epoch": epoch,
        "model": unit.model.state_dict(), "criterion": unit.model.kind.criterion_state(unit.criterion),
        "optimizer": state.opt.state_dict(), "rng": rng_state(), "best_val_loss": state.best_loss,
        "best_epoch": state.best_epoch, "history": state.history, "pretrained_source": meta["pretrained_source"],
    }


def store_row(meta: dict) -> dict:
    """The `runs` row of a run.json."""
    row = {c: meta.get(c) for c in _ROW_COLUMNS}
    row["timings_json"] = json.dumps(meta.get("timings", {}))
    row["versions_json"] = json.dumps(meta.get("versions", {}))
    return row


def write_run_row(ws, meta: dict) -> None:
    run_table.write_run(ws.store(), store_row(meta), meta["created_at"])


def write_epoch_row(ws, run_id: str, rec: dict) -> None:
    row = {c: rec.get(c) for c in _EPOCH_COLUMNS} | {"run_id": run_id}
    run_table.write_epoch(ws.store(), row)


# --- the folder of one run ----------------------------------------------------------------

class RunFolder:
    """One run's folder and store rows as training sees them (writes only where `main`)."""

    def __init__(self, ws, run_id: str, approach: str, *, main: bool = True):
        self.ws, self.run_id, self.approach, self.main = ws, run_id, approach, main
        self.dir = ws.run_dir(run_id)
        self.meta = check_run_folder(self.dir, run_id, approach)  # None: a new run
        self._timings: dict = {}
        self.saved_epoch: int | None = None  # the epoch last.pt holds (written by this process)

    @property
    def finished(self) -> bool:
        return bool(self.meta) and self.meta.get("status") == "finished" and (self.dir / BEST).is_file()

    def cached_result(self) -> "TrainResult":
        """A finished run; re-writes its store row (a kill between run.json and the row: the folder is the record)."""
        if self.main:
            write_run_row(self.ws, self.meta)
        m = self.meta
        return TrainResult(self.run_id, self.approach, "cached", m.get("best_epoch", -1), m.get("epochs_done", 0),
                           m.get("train_seconds", 0.0), m.get("pretrained_source", ""), read_log(self.dir), self.dir)

    def resume_checkpoint(self, resume_only: bool) -> dict | None:
        """last.pt of an earlier attempt at this run, or None for a fresh start."""
        last = self.dir / LAST
        resuming = self.meta is not None and last.is_file()
        if resume_only and not resuming:
            raise AtlasError(f"--resume: run {self.run_id} has no checkpoint to resume from in {self.dir}")
        ckpt = read_checkpoint(last) if resuming else None
        if ckpt is not None and (ckpt.get("approach") != self.approach or ckpt.get("run_id") != self.run_id):
            raise AtlasError(f"{last}: checkpoint of {ckpt.get('approach')!r} run {ckpt.get('run_id')!r}, "
                             f"not of this {self.approach!r} run {self.run_id!r}")
        return ckpt

    def restore_epoch_rows(self, history: list) -> None:
        """A kill between a checkpoint and its epoch row: the rows come from the checkpoint."""
        if self.main:
            for rec in history:
                write_epoch_row(self.ws, self.run_id, rec)

    def start(self, meta: dict) -> None:
        self.meta = meta
        self._timings = meta["timings"]
        if self.main:
            self.dir.mkdir(parents=True, exist_ok=True)
            remove_temp_files(self.dir)
            self.meta["message"] = self.retrain_note()
            self._write()

    def retrain_note(self) -> str | None:
        """What `retrain_run` recorded about the run this folder replaces (kept as the run's message)."""
        try:
            return (self.dir / RETRAIN_NOTE).read_text().strip() or None
        except OSError:
            return None

    def save_epoch(self, ckpt: dict, rec: dict, improved: bool, train_seconds: float) -> None:
        # best before last: a kill between the two re-runs this epoch (last.pt still holds the
        # previous one), so best.pt never lags behind the best_epoch that last.pt records
        if improved:
            save_checkpoint(self.dir / BEST, ckpt)
        save_checkpoint(self.dir / LAST, ckpt)
        self.saved_epoch = rec["epoch"]
        with open(self.dir / LOG_FILE, "a") as fh:
            fh.write(json.dumps(rec) + "\n")
        write_epoch_row(self.ws, self.run_id, rec)
        self.meta.update(epochs_done=rec["epoch"] + 1, best_epoch=ckpt["best_epoch"], train_seconds=train_seconds)
        self.meta["timings"] = self._timings | {"last_epoch_s": rec["seconds"], "data_s": rec["data_s"],
                                                "compute_s": rec["compute_s"], "val_s": rec["val_s"]}
        self._write()

    def finish(self, best_epoch: int, epochs_done: int, train_seconds: float) -> None:
        if self.main:
            self.meta.update(status="finished", best_epoch=best_epoch, epochs_done=epochs_done,
                             train_seconds=train_seconds, message=self.retrain_note())
            self._write()

    @contextmanager
    def failures_recorded(self, history: list):
        """Marks the run failed / interrupted when the block raises (rank 0), then re-raises."""
        try:
            yield
        except NonFiniteLoss as exc:
            if not self.main:
                raise
            kept = (f"; last good checkpoint: epoch {history[-1]['epoch'] + 1} ({self.dir / LAST})" if history
                    else "; no epoch finished, no checkpoint")
            self.meta.update(status="failed", message=str(exc))
            self._write()
            raise NonFiniteLoss(f"run {self.run_id}: {exc}{kept} (lower [train] lr, or check the data)") from None
        except BaseException as exc:
            if self.main and self.dir.exists():
                status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
                self.meta.update(status=status, message=str(exc)[:500] or type(exc).__name__)
                # best effort: on a full disk these may fail too (the temp files are gone by now); the
                # folder's last.pt is the record a re-run resumes from either way
                try:
                    write_json(self.dir / RUN_FILE, self.meta)
                except (OSError, DiskFull):
                    pass
                try:
                    write_run_row(self.ws, self.meta)
                except Exception:
                    pass
                if isinstance(exc, DiskFull):
                    kept = (f"; its last checkpoint (epoch {self.saved_epoch + 1}, {self.dir / LAST}) is kept"
                            if self.saved_epoch is not None else "")
                    raise DiskFull(f"run {self.run_id} failed: {exc}{kept}", exc.path, exc.needed) from None
            raise

    def _write(self) -> None:
        write_json(self.dir / RUN_FILE, self.meta)
        write_run_row(self.ws, self.meta)


# --- result ------------------------------------------------------------------------------------

@dataclass
class TrainResult:
    run_id: str
    approach: str
    status: str           # finished / cached
    best_epoch: int
    epochs_done: int
    train_seconds: float
    pretrained_source: str
    history: list = field(default_factory=list)
    run_dir: Path | None = None

    def summary(self) -> dict:
        last = self.history[-1] if self.history else {}
        best = next((h for h in self.history if h["epoch"] == self.best_epoch), {})
        return {"run": self.run_id, "status": self.status, "epochs": self.epochs_done,
                "best epoch": self.best_epoch + 1 if self.best_epoch >= 0 else "",
                "val_loss": _fmt(best.get("val_loss")), "val_acc": _fmt(best.get("val_accuracy")),
                "img/s": _fmt(last.get("images_per_s"), 0), "train_s": f"{self.train_seconds:.0f}"}


def _fmt(v, digits: int = 3) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def finished_result(ws, run_id: str) -> TrainResult:
    """The TrainResult of a run from its folder (after a DDP run in other processes)."""
    run_dir = ws.run_dir(run_id)
    meta = json.loads((run_dir / RUN_FILE).read_text())
    return TrainResult(run_id, meta["approach"], meta.get("status", "?"),
                       -1 if meta.get("best_epoch") is None else int(meta["best_epoch"]),
                       meta.get("epochs_done", 0), meta.get("train_seconds", 0.0), meta.get("pretrained_source", ""),
                       read_log(run_dir), run_dir)
