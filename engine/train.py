"""The training loop: one backbone, one approach, checkpoints every epoch.

    dfatlas train --config CONFIG --approach attribution
    torchrun --nproc_per_node=N -m engine.train --config CONFIG --approach attribution

Paper defaults (config [train]): Adam, lr 2e-4, batch 16, 20 epochs, best
epoch by validation loss. The run id is `cfg.run_id(approach)`, so the same
command resumes the same run from its last finished epoch (and says so); a
finished run is a cache hit. Checkpoints (`last.pt`, `best.pt` in the run
folder) hold tensors and plain values only — `torch.load(weights_only=True)`
reads them — including the RNG states, so a resumed CPU run continues bit for
bit. Every epoch appends a line to `train_log.jsonl` and a row to the store's
`epochs` table; the `runs` row tracks status, best epoch and timings.

Scale-out is `torch.distributed` DDP (NCCL on GPU, gloo on CPU); see
docs/TRAINING.md for how BatchNorm, the ArcFaceMod weights and triplet mining
are handled across ranks.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import platform
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from data_catalog.errors import AtlasError

from .config import APPROACHES, ExperimentConfig, load_config
from .data import BatchSource, build_crop_cache, epoch_batches, sampler_labels, training_faces
from .models import (CHECKPOINT_FORMAT, METRIC_APPROACHES, AtlasModel, build_criterion,
                     build_model, check_backbone, model_spec, read_checkpoint)
from .workspace import Workspace

RUN_FILE = "run.json"
LOG_FILE = "train_log.jsonl"
LAST = "last.pt"
BEST = "best.pt"


class NonFiniteLoss(AtlasError):
    pass


# --- configuration ------------------------------------------------------------

def apply_overrides(cfg: ExperimentConfig, backbone: str | None = None, epochs: int | None = None) -> ExperimentConfig:
    """--backbone / --epochs applied to the config, so the run id follows them."""
    if backbone:
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, backbone=backbone))
    if epochs is not None:
        if epochs < 1:
            raise AtlasError(f"--epochs must be at least 1, got {epochs}")
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=epochs))
    return cfg


def check_request(cfg: ExperimentConfig, approach: str) -> None:
    """Bad input found before anything is loaded."""
    if approach not in APPROACHES:
        raise AtlasError(f"unknown approach {approach!r} (choose from {', '.join(APPROACHES)})")
    check_backbone(cfg.model.backbone)
    t = cfg.train
    if t.batch_size < 2:
        raise AtlasError(f"{cfg.path}: [train] batch_size must be at least 2 (BatchNorm), got {t.batch_size}")
    if t.epochs < 1:
        raise AtlasError(f"{cfg.path}: [train] epochs must be at least 1")
    if t.lr <= 0:
        raise AtlasError(f"{cfg.path}: [train] lr must be positive")
    if approach == "triplet" and t.samples_per_class < 2:
        raise AtlasError(f"{cfg.path}: [train] samples_per_class must be >= 2 for triplet mining")
    if cfg.taxonomy.n_classes < 2:
        raise AtlasError("the taxonomy needs real and at least one fake class")


# --- distributed helpers -------------------------------------------------------

@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def dist_from_env() -> Dist:
    return Dist(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                int(os.environ.get("LOCAL_RANK", 0)))


def init_distributed(d: Dist, device: torch.device) -> None:
    if d.enabled and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        # long timeout: rank 0 alone decodes the crop cache (minutes at paper scale) while the others wait
        dist.init_process_group(backend=backend, rank=d.rank, world_size=d.world,
                                timeout=datetime.timedelta(hours=2))


# --- device / precision ------------------------------------------------------------

def pick_device(setting: str, d: Dist) -> torch.device:
    if setting == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", d.local_rank % torch.cuda.device_count())
        return torch.device("cpu")
    dev = torch.device(setting)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise AtlasError(f"[train] device = {setting!r} but CUDA is not available here")
        if dev.index is None:
            dev = torch.device("cuda", d.local_rank % torch.cuda.device_count())
    return dev


def use_bf16(setting: str, device: torch.device) -> bool:
    if setting == "fp32":
        return False
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return setting == "bf16"  # CPU: only when asked (slow on most CPUs)


# --- RNG state as plain values -------------------------------------------------------

def rng_state() -> dict:
    np_state = np.random.get_state()
    out = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


# --- the trainable unit -------------------------------------------------------------

class TrainUnit(nn.Module):
    """Model and loss in one module, so DDP all-reduces the ArcFaceMod weights too.

    forward(images, labels, is_real) -> (loss, output) where output is what
    accuracy needs (binary logit, attribution logits, embedding).
    """

    def __init__(self, model: AtlasModel, criterion: nn.Module):
        super().__init__()
        self.model = model
        self.criterion = criterion

    def forward(self, images, labels, is_real, mine: bool = True):
        _, out = self.model(images)
        approach = self.model.spec.approach
        if approach == "binary":
            loss = self.criterion(out.float(), is_real.float())
        elif approach == "attribution":
            loss = self.criterion(out.float(), labels)
        elif approach == "triplet":
            loss = self.criterion(out, labels, mine=mine)
        else:
            loss = self.criterion(out, labels)
        return loss, out


def correct_count(approach: str, out: torch.Tensor, labels: torch.Tensor, is_real: torch.Tensor,
                  criterion: nn.Module) -> int:
    if approach == "binary":
        return int(((out.float() > 0) == is_real.bool()).sum())
    if approach == "attribution":
        return int((out.argmax(1) == labels).sum())
    if approach == "arcfacemod":
        return int((criterion.logits(out).argmax(1) == labels).sum())
    return 0  # triplet: nearest-neighbour accuracy over the whole split, see validate()


# --- the run folder ---------------------------------------------------------------

def _code_revision() -> str | None:
    try:
        root = Path(__file__).resolve().parents[1]
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=3)
        return out.stdout.strip() or None
    except Exception:
        return None


def _versions() -> dict:
    import timm
    import pytorch_metric_learning

    return {"python": platform.python_version(), "torch": torch.__version__, "timm": timm.__version__,
            "pytorch_metric_learning": pytorch_metric_learning.__version__, "numpy": np.__version__}


def check_run_folder(run_dir: Path, run_id: str, approach: str) -> dict | None:
    """The run.json of an existing run folder; errors for a folder that is not this run."""
    if not run_dir.exists():
        return None
    if not run_dir.is_dir():
        raise AtlasError(f"{run_dir} exists and is not a run folder")
    meta_file = run_dir / RUN_FILE
    if not meta_file.is_file():
        if any(run_dir.iterdir()):
            raise AtlasError(f"{run_dir} is not a dfatlas run (no {RUN_FILE}); move it away or use another workspace")
        return None
    try:
        meta = json.loads(meta_file.read_text())
    except (OSError, ValueError) as exc:
        raise AtlasError(f"{meta_file}: unreadable run metadata ({exc}); move the folder away to start over") from None
    if meta.get("run_id") != run_id or meta.get("approach") != approach:
        raise AtlasError(f"{run_dir} holds run {meta.get('run_id')!r} ({meta.get('approach')}), not {run_id!r}")
    return meta


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True, default=str))
    os.replace(tmp, path)


def _save_checkpoint(path: Path, ckpt: dict) -> None:
    tmp = path.with_suffix(".pt.tmp")
    torch.save(ckpt, tmp)
    os.replace(tmp, path)


# --- store rows ---------------------------------------------------------------------------

def _runs_row(meta: dict) -> dict:
    cols = ["run_id", "approach", "backbone", "config_json", "config_hash", "classes", "taxonomy_json",
            "settings_key", "embedding_dim", "pretrained_source", "seed", "status", "message", "best_epoch",
            "epochs_done", "synthetic", "train_seconds", "timings_json", "code_revision", "versions_json"]
    row = {c: meta.get(c) for c in cols}
    row["timings_json"] = json.dumps(meta.get("timings", {}))
    row["versions_json"] = json.dumps(meta.get("versions", {}))
    return row


def write_run_row(ws: Workspace, meta: dict) -> None:
    import pyarrow as pa

    row = _runs_row(meta)
    schema = pa.schema([
        ("run_id", pa.string()), ("approach", pa.string()), ("backbone", pa.string()), ("config_json", pa.string()),
        ("config_hash", pa.string()), ("classes", pa.list_(pa.string())), ("taxonomy_json", pa.string()),
        ("settings_key", pa.string()), ("embedding_dim", pa.int32()), ("pretrained_source", pa.string()),
        ("seed", pa.int32()), ("status", pa.string()), ("message", pa.string()), ("best_epoch", pa.int32()),
        ("epochs_done", pa.int32()), ("synthetic", pa.bool_()), ("train_seconds", pa.float64()),
        ("timings_json", pa.string()), ("code_revision", pa.string()), ("versions_json", pa.string()),
    ])
    table = pa.Table.from_pylist([row], schema=schema)
    store = ws.store()
    with store.transaction() as con:
        con.execute("DELETE FROM runs WHERE run_id = ?", [meta["run_id"]])
        store.insert("runs", table, con=con)
        con.execute("UPDATE runs SET updated_at = current_timestamp, created_at = ? WHERE run_id = ?",
                    [meta["created_at"], meta["run_id"]])


def write_epoch_row(ws: Workspace, run_id: str, rec: dict) -> None:
    import pyarrow as pa

    table = pa.table({
        "run_id": pa.array([run_id]), "epoch": pa.array([rec["epoch"]], pa.int32()),
        "train_loss": pa.array([rec["train_loss"]], pa.float64()), "val_loss": pa.array([rec["val_loss"]], pa.float64()),
        "val_accuracy": pa.array([rec.get("val_accuracy")], pa.float64()),
        "seconds": pa.array([rec["seconds"]], pa.float64()), "images_per_s": pa.array([rec["images_per_s"]], pa.float64()),
    })
    ws.store().insert("epochs", table, replace=True)


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


# --- training ------------------------------------------------------------------------------------

def train(cfg: ExperimentConfig, approach: str, ws: Workspace, *, resume_only: bool = False,
          dist_info: Dist | None = None, progress: bool = True, log=None, step_hook=None) -> TrainResult:
    """Train (or resume, or return the finished) run `cfg.run_id(approach)`.

    Call under the workspace lock (the CLI takes it). In DDP every rank calls
    this; rank 0 alone writes files and store rows. `step_hook(epoch, step,
    batch_indices, unit, loss)` runs after every optimiser step (tests, probes).
    """
    d = dist_info or Dist()
    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    if not d.main:
        say = lambda msg: None  # noqa: E731
    check_request(cfg, approach)
    run_id = cfg.run_id(approach)
    run_dir = ws.run_dir(run_id)
    meta = check_run_folder(run_dir, run_id, approach)
    if meta and meta.get("status") == "finished" and (run_dir / BEST).is_file():
        say(f"run {run_id} already finished (best epoch {meta.get('best_epoch')}): cached, nothing to do")
        if d.main:  # a kill between run.json and the store row: the run folder is the record
            write_run_row(ws, meta)
        return TrainResult(run_id, approach, "cached", meta.get("best_epoch", -1), meta.get("epochs_done", 0),
                           meta.get("train_seconds", 0.0), meta.get("pretrained_source", ""),
                           _read_log(run_dir), run_dir)
    last_path = run_dir / LAST
    resuming = meta is not None and last_path.is_file()
    if resume_only and not resuming:
        raise AtlasError(f"--resume: run {run_id} has no checkpoint to resume from in {run_dir}")
    ckpt = read_checkpoint(last_path) if resuming else None
    if ckpt is not None and (ckpt.get("approach") != approach or ckpt.get("run_id") != run_id):
        raise AtlasError(f"{last_path}: checkpoint of {ckpt.get('approach')!r} run {ckpt.get('run_id')!r}, "
                         f"not of this {approach!r} run {run_id!r}")

    device = pick_device(cfg.train.device, d)
    init_distributed(d, device)
    seed = cfg.train.seed + 1000 * cfg.experiment.seed
    seed_everything(seed)
    t_start = time.perf_counter()

    # data
    train_set, val_set = training_faces(ws, cfg)
    spec = model_spec(cfg, approach, cfg.taxonomy.n_classes)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if d.main:
        all_faces = _concat(train_set.frame, val_set.frame)
        cache = build_crop_cache(ws, all_faces, spec.input_size, progress=progress)
    d.barrier()
    if not d.main:
        from .data import cache_path

        cache = cache_path(ws, _concat(train_set.frame, val_set.frame)["face_id"].tolist(), spec.input_size)
    timings["cache_s"] = round(time.perf_counter() - t0, 3)
    n_train = len(train_set)
    train_src = BatchSource(cache, train_set.labels, np.arange(n_train))
    val_src = BatchSource(cache, val_set.labels, np.arange(n_train, n_train + len(val_set)))
    train_real = np.array(train_set.frame["is_real"], dtype=bool)
    val_real = np.array(val_set.frame["is_real"], dtype=bool)

    # model
    model, pretrained_source = build_model(spec, pretrained=cfg.model.pretrained and ckpt is None,
                                           checkpoint=cfg.model.checkpoint if ckpt is None else "",
                                           quiet=not d.main)
    if ckpt is not None:
        pretrained_source = ckpt.get("pretrained_source", pretrained_source)
    criterion = build_criterion(spec, cfg.train, real_class=0)
    unit = TrainUnit(model, criterion).to(device)
    if device.type == "cuda" and cfg.train.channels_last:
        model.channels_last = True
        unit = unit.to(memory_format=torch.channels_last)
    if d.enabled and device.type == "cuda":
        unit = nn.SyncBatchNorm.convert_sync_batchnorm(unit)
    params = [p for p in unit.parameters() if p.requires_grad]
    opt = _optimizer(cfg, params)
    start_epoch, best_loss, best_epoch, history = 0, math.inf, -1, []
    if ckpt is not None:
        unit.model.load_state_dict(ckpt["model"])
        if ckpt.get("criterion"):
            unit.criterion.load_state_dict(ckpt["criterion"])
        opt.load_state_dict(ckpt["optimizer"])
        set_rng_state(ckpt["rng"])
        start_epoch = int(ckpt["epoch"]) + 1
        best_loss = float(ckpt["best_val_loss"])
        best_epoch = int(ckpt["best_epoch"])
        history = list(ckpt.get("history", []))
        if d.main:  # a kill between the checkpoint and its epoch row: the rows come from the checkpoint
            for rec in history:
                write_epoch_row(ws, run_id, rec)
        say(f"resuming run {run_id} from epoch {start_epoch + 1}/{cfg.train.epochs} "
            f"(checkpoint of epoch {start_epoch}, best so far epoch {best_epoch + 1})")
    else:
        say(f"starting run {run_id}: {approach} on {spec.backbone}@{spec.input_size}px"
            f"{' + residual' if spec.residual_input else ''}, {n_train} train / {len(val_set)} val faces, "
            f"{cfg.train.epochs} epochs, device {device}{f' x{d.world}' if d.enabled else ''}; weights: {pretrained_source}")

    ddp_unit = unit
    if d.enabled:
        ddp_unit = nn.parallel.DistributedDataParallel(
            unit, device_ids=[device.index] if device.type == "cuda" else None)  # buffers: rank 0's, every forward
    step_fn = ddp_unit
    if cfg.train.compile:
        step_fn = torch.compile(ddp_unit)
    bf16 = use_bf16(cfg.train.precision, device)

    created = (meta or {}).get("created_at") or time.strftime("%Y-%m-%d %H:%M:%S")
    meta = {
        "run_id": run_id, "approach": approach, "backbone": spec.backbone, "config_json": cfg.to_json(),
        "config_hash": cfg.config_hash(), "classes": cfg.taxonomy.ids,
        "taxonomy_json": json.dumps(cfg.taxonomy.to_dict()), "settings_key": cfg.faces.settings_key(),
        "embedding_dim": spec.embedding_dim if approach in METRIC_APPROACHES else model.num_features,
        "pretrained_source": pretrained_source, "seed": seed, "status": "training", "message": None,
        "best_epoch": best_epoch if best_epoch >= 0 else None, "epochs_done": start_epoch,
        "synthetic": bool(cfg.synthetic), "train_seconds": (meta or {}).get("train_seconds", 0.0),
        "timings": timings, "code_revision": _code_revision(), "versions": _versions(), "created_at": created,
        "spec": spec.to_dict(), "world_size": d.world, "device": str(device), "bf16": bf16,
        "n_train": n_train, "n_val": len(val_set),
    }
    prior_seconds = float(meta["train_seconds"] or 0.0)
    if d.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        _write_json(run_dir / RUN_FILE, meta)
        write_run_row(ws, meta)

    balance = None
    if approach == "triplet" or cfg.train.balanced_sampling:
        balance = sampler_labels(approach, train_set.labels, train_real)

    def checkpoint_dict(epoch: int) -> dict:
        return {
            "format": CHECKPOINT_FORMAT, "run_id": run_id, "approach": approach, "backbone": spec.backbone,
            "classes": list(cfg.taxonomy.ids), "spec": spec.to_dict(), "epoch": epoch,
            "model": unit.model.state_dict(),
            "criterion": unit.criterion.state_dict() if approach == "arcfacemod" else {},
            "optimizer": opt.state_dict(), "rng": rng_state(), "best_val_loss": best_loss, "best_epoch": best_epoch,
            "history": history, "pretrained_source": pretrained_source,
        }

    epoch = start_epoch - 1
    try:
        for epoch in range(start_epoch, cfg.train.epochs):
            t_epoch = time.perf_counter()
            for group in opt.param_groups:
                group["lr"] = epoch_lr(cfg.train, epoch)
            unit.train()
            batches = epoch_batches(n_train, cfg.train.batch_size, seed=seed, epoch=epoch, rank=d.rank,
                                    world=d.world, balance_labels=balance,
                                    samples_per_class=cfg.train.samples_per_class)
            stats = _train_epoch(step_fn, unit, opt, train_src, train_real, batches, device, bf16, cfg, d, epoch,
                                 progress=progress and d.main, seed=seed, step_hook=step_hook)
            t_val = time.perf_counter()
            if d.main:
                val_loss, val_acc = validate(unit, val_src, val_real, device, bf16, cfg, seed)
            else:
                val_loss, val_acc = 0.0, None
            if d.enabled:
                t = torch.tensor([val_loss], dtype=torch.float64)
                dist.broadcast(t, 0)
                val_loss = float(t)
            seconds = time.perf_counter() - t_epoch
            if not math.isfinite(val_loss):
                raise NonFiniteLoss(f"validation loss is {val_loss} after epoch {epoch + 1}")
            rec = {"epoch": epoch, "train_loss": stats["loss"], "val_loss": val_loss, "val_accuracy": val_acc,
                   "seconds": round(seconds, 3), "images_per_s": stats["img_s"], "train_images": stats["images"],
                   "data_s": stats["data_s"], "compute_s": stats["compute_s"],
                   "val_s": round(time.perf_counter() - t_val, 3)}
            history.append(rec)
            improved = val_loss < best_loss
            if improved:
                best_loss, best_epoch = val_loss, epoch
            if d.main:
                ck = checkpoint_dict(epoch)
                # best before last: a kill between the two re-runs this epoch (last.pt still holds the
                # previous one), so best.pt never lags behind the best_epoch that last.pt records
                if improved:
                    _save_checkpoint(run_dir / BEST, ck)
                _save_checkpoint(run_dir / LAST, ck)
                with open(run_dir / LOG_FILE, "a") as fh:
                    fh.write(json.dumps(rec) + "\n")
                write_epoch_row(ws, run_id, rec)
                meta.update(epochs_done=epoch + 1, best_epoch=best_epoch,
                            train_seconds=round(prior_seconds + time.perf_counter() - t_start, 3))
                meta["timings"] = timings | {"last_epoch_s": rec["seconds"], "data_s": rec["data_s"],
                                             "compute_s": rec["compute_s"], "val_s": rec["val_s"]}
                _write_json(run_dir / RUN_FILE, meta)
                write_run_row(ws, meta)
                acc = f", val acc {val_acc:.3f}" if val_acc is not None else ""
                say(f"epoch {epoch + 1}/{cfg.train.epochs}: train loss {stats['loss']:.4f}, val loss {val_loss:.4f}"
                    f"{acc}, {stats['img_s']:.0f} img/s{'  *best' if improved else ''}")
            d.barrier()
    except NonFiniteLoss as exc:
        if d.main:
            kept = (f"; last good checkpoint: epoch {history[-1]['epoch'] + 1} ({run_dir / LAST})" if history
                    else "; no epoch finished, no checkpoint")
            meta.update(status="failed", message=str(exc))
            _write_json(run_dir / RUN_FILE, meta)
            write_run_row(ws, meta)
            raise NonFiniteLoss(f"run {run_id}: {exc}{kept} (lower [train] lr, or check the data)") from None
        raise
    except BaseException as exc:
        if d.main and run_dir.exists():
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            meta.update(status=status, message=str(exc)[:500] or type(exc).__name__)
            _write_json(run_dir / RUN_FILE, meta)
            try:
                write_run_row(ws, meta)
            except Exception:
                pass
        raise

    total = prior_seconds + time.perf_counter() - t_start
    if d.main:
        meta.update(status="finished", best_epoch=best_epoch, epochs_done=cfg.train.epochs,
                    train_seconds=round(total, 3), message=None)
        _write_json(run_dir / RUN_FILE, meta)
        write_run_row(ws, meta)
        say(f"run {run_id} finished: best epoch {best_epoch + 1} (val loss {best_loss:.4f}), {total:.0f} s")
    return TrainResult(run_id, approach, "finished", best_epoch, cfg.train.epochs, total, pretrained_source,
                       history, run_dir)


def _concat(a, b):
    import pandas as pd

    return pd.concat([a, b], ignore_index=True)


def _read_log(run_dir: Path) -> list:
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


def epoch_lr(t, epoch: int) -> float:
    """The learning rate of an epoch: a function of the epoch alone, so a
    resumed run continues exactly (no scheduler state to checkpoint)."""
    if t.lr_schedule == "cosine" and t.epochs > 1:
        return t.lr * 0.5 * (1.0 + math.cos(math.pi * epoch / t.epochs))
    return t.lr


def _optimizer(cfg: ExperimentConfig, params):
    t = cfg.train
    if t.optimizer == "adam":
        return torch.optim.Adam(params, lr=t.lr, weight_decay=t.weight_decay)
    if t.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)
    return torch.optim.SGD(params, lr=t.lr, momentum=0.9, weight_decay=t.weight_decay)


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Horizontal flips and +-1/8 translations (reflect padding), per sample, seeded."""
    n, _, h, w = x.shape
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip.to(x.device)[:, None, None, None], x.flip(3), x)
    pad = max(1, h // 8)
    xp = torch.nn.functional.pad(x.float(), (pad, pad, pad, pad), mode="reflect")
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen).tolist()
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen).tolist()
    return torch.stack([xp[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)]).to(x.dtype)


def _loader(src: BatchSource, batches: list, device: torch.device, workers: int):
    """Batches from the cache; on CUDA through pinned-memory DataLoader workers."""
    if device.type != "cuda" or workers == 0:
        for b in batches:
            yield src[b]
        return
    loader = torch.utils.data.DataLoader(src, sampler=batches, batch_size=None, num_workers=workers,
                                         pin_memory=True, persistent_workers=False, prefetch_factor=4)
    yield from loader


def _train_epoch(step_fn, unit: TrainUnit, opt, src: BatchSource, is_real: np.ndarray, batches: list,
                 device: torch.device, bf16: bool, cfg: ExperimentConfig, d: Dist, epoch: int, *,
                 progress: bool, seed: int, step_hook=None) -> dict:
    from tqdm.auto import tqdm

    approach = unit.model.spec.approach
    is_real_t = torch.from_numpy(is_real)
    gen = torch.Generator().manual_seed(seed * 7919 + epoch + 17 * d.rank)
    losses = torch.zeros(len(batches), dtype=torch.float64, device=device)
    n_images = 0
    data_s = compute_s = 0.0
    check_every = 10
    checked = 0
    bar = tqdm(total=len(batches), desc=f"{approach} epoch {epoch + 1}/{cfg.train.epochs}", unit="batch",
               file=sys.stderr, dynamic_ncols=True, mininterval=0.5, disable=not progress, leave=False)
    t_data = time.perf_counter()
    t_epoch = t_data
    nb = non_blocking = device.type == "cuda"
    for step, (idx, (x, y)) in enumerate(zip(batches, _loader(src, batches, device, cfg.train.num_workers))):
        r = is_real_t[torch.from_numpy(np.asarray(idx))]
        x = x.to(device, non_blocking=nb)
        y = y.to(device, non_blocking=nb)
        r = r.to(device, non_blocking=non_blocking)
        if cfg.train.augment:
            x = _augment(x, gen)
        t_compute = time.perf_counter()
        data_s += t_compute - t_data
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
            loss, _ = step_fn(x, y, r)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses[step] = loss.detach().double()
        n_images += len(idx)
        if step_hook is not None:
            step_hook(epoch, step, idx, unit, loss.detach())
        if (step + 1) % check_every == 0 or step == len(batches) - 1:
            _check_finite(losses, checked, step + 1, d, epoch)
            checked = step + 1
            elapsed = time.perf_counter() - t_epoch
            bar.set_postfix(loss=f"{float(losses[max(0, step - check_every + 1):step + 1].mean()):.4f}",
                            img_s=f"{n_images * d.world / max(elapsed, 1e-9):.0f}")
        bar.update(1)
        t_data = time.perf_counter()
        compute_s += t_data - t_compute
    bar.close()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - t_epoch
    total = torch.stack([losses.sum(), torch.tensor(float(len(batches)), dtype=torch.float64, device=device)])
    if d.enabled:
        dist.all_reduce(total)
    mean_loss = float(total[0] / total[1]) if float(total[1]) else float("nan")
    return {"loss": mean_loss, "images": n_images * d.world, "img_s": n_images * d.world / max(elapsed, 1e-9),
            "data_s": round(data_s, 3), "compute_s": round(compute_s, 3)}


def _check_finite(losses: torch.Tensor, start: int, end: int, d: Dist, epoch: int) -> None:
    window = losses[start:end]
    bad = (~torch.isfinite(window)).nonzero()
    first = torch.tensor([int(bad[0]) + start if len(bad) else -1], dtype=torch.int64)
    if d.enabled:
        # every rank stops at the same step: take the smallest bad step over ranks
        flag = torch.where(first < 0, torch.tensor([1 << 60]), first)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        first = torch.where(flag == (1 << 60), torch.tensor([-1]), flag)
    if int(first) >= 0:
        raise NonFiniteLoss(f"training loss became non-finite at epoch {epoch + 1}, step {int(first) + 1}")


@torch.no_grad()
def validate(unit: TrainUnit, src: BatchSource, is_real: np.ndarray, device: torch.device, bf16: bool,
             cfg: ExperimentConfig, seed: int) -> tuple[float, float | None]:
    """Mean validation loss and accuracy, batches in a fixed shuffled order (mixed classes).

    Triplet: loss over all triplets of each batch (no mining), accuracy =
    leave-one-out 1-NN over the validation embeddings (up to 4000 of them).
    """
    unit.eval()
    approach = unit.model.spec.approach
    n = len(src)
    order = np.random.default_rng([seed, 99]).permutation(n)
    bs = max(cfg.train.batch_size, 64 if approach == "triplet" else cfg.train.batch_size * 4)
    is_real_t = torch.from_numpy(is_real)
    total_loss, total_n, correct = 0.0, 0, 0
    embs, labs = [], []
    for i in range(0, n, bs):
        idx = order[i:i + bs]
        x, y = src[idx]
        x, y = x.to(device), y.to(device)
        r = is_real_t[torch.from_numpy(idx)].to(device)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
            loss, out = unit(x, y, r, mine=False)
        total_loss += float(loss) * len(idx)
        total_n += len(idx)
        if approach == "triplet":
            if sum(len(e) for e in embs) < 4000:
                embs.append(out.float().cpu())
                labs.append(y.cpu())
        else:
            correct += correct_count(approach, out, y, r, unit.criterion)
    unit.train()
    if approach == "triplet":
        e = torch.cat(embs)
        lab = torch.cat(labs)
        if len(e) < 2:
            return total_loss / max(total_n, 1), None
        dmat = torch.cdist(e, e)
        dmat.fill_diagonal_(float("inf"))
        acc = float((lab[dmat.argmin(1)] == lab).float().mean())
        return total_loss / max(total_n, 1), acc
    return total_loss / max(total_n, 1), correct / max(total_n, 1)


# --- entry points ------------------------------------------------------------------

def run_training(config: str | Path | ExperimentConfig, approach: str, workspace: Workspace, *,
                 backbone: str | None = None, epochs: int | None = None, resume_only: bool = False,
                 progress: bool = True) -> TrainResult:
    """Single-process entry (what `dfatlas train` calls; hold the workspace lock around it)."""
    cfg = config if isinstance(config, ExperimentConfig) else load_config(config)
    cfg = apply_overrides(cfg, backbone, epochs)
    return train(cfg, approach, workspace, resume_only=resume_only, progress=progress)


def finished_result(ws: Workspace, run_id: str) -> TrainResult:
    """The TrainResult of a run from its folder (after a DDP run in other processes)."""
    run_dir = ws.run_dir(run_id)
    meta = json.loads((run_dir / RUN_FILE).read_text())
    return TrainResult(run_id, meta["approach"], meta.get("status", "?"),
                       -1 if meta.get("best_epoch") is None else int(meta["best_epoch"]),
                       meta.get("epochs_done", 0), meta.get("train_seconds", 0.0), meta.get("pretrained_source", ""),
                       _read_log(run_dir), run_dir)


def _ddp_worker(rank: int, world: int, port: int, config_path: str, approach: str, ws_root: str,
                backbone: str | None, epochs: int | None, resume_only: bool) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    from .workspace import resolve_workspace

    cfg = apply_overrides(load_config(config_path), backbone, epochs)
    try:
        train(cfg, approach, resolve_workspace(ws_root), resume_only=resume_only, dist_info=dist_from_env())
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def run_ddp(config_path: str | Path, approach: str, workspace: Workspace, world: int, *,
            backbone: str | None = None, epochs: int | None = None, resume_only: bool = False) -> None:
    """`dfatlas train --ddp N`: N local processes (one per GPU, or gloo on CPU)."""
    import socket

    import torch.multiprocessing as mp

    if world < 1:
        raise AtlasError(f"--ddp must be at least 1, got {world}")
    if torch.cuda.is_available() and world > torch.cuda.device_count():
        raise AtlasError(f"--ddp {world}: only {torch.cuda.device_count()} GPU(s) here")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(_ddp_worker, args=(world, port, str(config_path), approach, str(workspace.root), backbone,
                                          epochs, resume_only), nprocs=world, join=True, start_method="spawn")


def main(argv: list[str] | None = None) -> int:
    """`torchrun --nproc_per_node=N -m engine.train --config C --approach A` (or plain python)."""
    from .workspace import resolve_workspace

    p = argparse.ArgumentParser(prog="python -m engine.train", description="train one approach (DDP under torchrun)")
    p.add_argument("--config", required=True)
    p.add_argument("--approach", required=True, choices=APPROACHES)
    p.add_argument("--workspace")
    p.add_argument("--backbone")
    p.add_argument("--epochs", type=int)
    p.add_argument("--resume", action="store_true")
    args = p.parse_args(argv)
    d = dist_from_env()
    try:
        cfg = apply_overrides(load_config(args.config), args.backbone, args.epochs)
        ws = resolve_workspace(args.workspace)
        if d.main:
            ws.ensure()
            with ws.lock(f"train {args.approach}", wait=True):
                train(cfg, args.approach, ws, resume_only=args.resume, dist_info=d)
        else:
            train(cfg, args.approach, ws, resume_only=args.resume, dist_info=d)
    except AtlasError as exc:
        print(f"engine.train: error (rank {d.rank}): {exc}", file=sys.stderr)
        return exc.exit_code
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
