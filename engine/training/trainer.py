"""`train()`: one backbone, one approach, checkpoints every epoch.

Paper defaults (config [train]): Adam, lr 2e-4, batch 16, 20 epochs, best
epoch by validation loss. The run id is `cfg.run_id(approach)`, so the same
command resumes the same run from its last finished epoch (and says so); a
finished run is a cache hit. A resumed CPU run continues bit for bit (the
checkpoints hold the RNG states, see `rng.py`).
"""

from __future__ import annotations

import dataclasses
import sys
import time

import torch
from torch import nn

from data_catalog.errors import AtlasError

from ..approaches import get_approach
from ..config import ExperimentConfig
from ..models import build_model, check_backbone, model_spec
from ..workspace import Workspace
from .crops import balance_labels, training_data, training_faces
from .distributed import Dist, init_distributed, pick_device, use_bf16
from .loop import TrainState, TrainUnit, fit
from .optim import build_optimizer
from .rng import run_seed, seed_everything, set_rng_state
from .run_folder import RunFolder, TrainResult, checkpoint, retrain_run, run_meta


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
    kind = get_approach(approach)  # unknown name: an error listing the registered ones
    if not kind.trains:
        raise AtlasError(f"approach {approach!r} does not train (its embeddings come from outside)")
    check_backbone(cfg.model.backbone)
    t = cfg.train
    if t.batch_size < 2:
        raise AtlasError(f"{cfg.path}: [train] batch_size must be at least 2 (BatchNorm), got {t.batch_size}")
    if t.epochs < 1:
        raise AtlasError(f"{cfg.path}: [train] epochs must be at least 1")
    if t.lr <= 0:
        raise AtlasError(f"{cfg.path}: [train] lr must be positive")
    if kind.needs_class_batches and t.samples_per_class < 2:
        raise AtlasError(f"{cfg.path}: [train] samples_per_class must be >= 2 for {kind.label}'s class-balanced "
                         "batches (triplet mining)")
    if cfg.taxonomy.n_classes < 2:
        raise AtlasError("the taxonomy needs real and at least one fake class")


def train(cfg: ExperimentConfig, approach: str, ws: Workspace, *, resume_only: bool = False, retrain: bool = False,
          discard_old: bool = False, dist_info: Dist | None = None, progress: bool = True, log=None,
          step_hook=None) -> TrainResult:
    """Train (or resume, or return the finished) run `cfg.run_id(approach)`.

    Call under the workspace lock (the CLI takes it). In DDP every rank calls
    this; rank 0 alone writes files and store rows. `retrain`: a finished (or damaged) run is trained
    anew — its folder moved aside (deleted with `discard_old`), its stored results dropped
    (`retrain_run`; with DDP the launcher does that once, before the ranks start). `step_hook(epoch, step,
    batch_indices, unit, loss)` runs after every optimiser step (tests, probes).
    """
    d = dist_info or Dist()
    say = _reporter(log, d)
    check_request(cfg, approach)
    run_id = cfg.run_id(approach)
    if retrain:
        if d.enabled:
            raise AtlasError("retrain: call retrain_run once before the ranks start")
        moved = retrain_run(ws, run_id, discard_old)
        say(f"retraining run {run_id}: " + (f"the earlier run folder is now {moved}" if moved
                                            else "the earlier run folder was deleted"))
    folder = RunFolder(ws, run_id, approach, main=d.main)
    if folder.finished:
        best = folder.meta.get("best_epoch")
        say(f"run {run_id} already finished (best epoch {'?' if best is None else int(best) + 1} of "
            f"{folder.meta.get('epochs_done', '?')}, counted from 1): cached, nothing to do "
            "(--retrain trains it anew)")
        return folder.cached_result()
    ckpt = folder.resume_checkpoint(resume_only)

    device = pick_device(cfg.train.device, d)
    init_distributed(d, device)
    seed = run_seed(cfg)
    seed_everything(seed)
    t_start = time.perf_counter()

    train_set, val_set = training_faces(ws, cfg)
    spec = model_spec(cfg, approach, cfg.taxonomy.n_classes)
    data = training_data(ws, train_set, val_set, spec.input_size, main=d.main, barrier=d.barrier, progress=progress)
    state, pretrained_source = _build_state(cfg, spec, device, d, ckpt)
    if ckpt is not None:
        folder.restore_epoch_rows(state.history)
        say(f"resuming run {run_id} from epoch {state.start_epoch + 1}/{cfg.train.epochs} "
            f"(checkpoint of epoch {state.start_epoch}, best so far epoch {state.best_epoch + 1})")
    else:
        say(f"starting run {run_id}: {approach} on {spec.backbone}@{spec.input_size}px"
            f"{' + residual' if spec.residual_input else ''}, {len(train_set)} train / {len(val_set)} val faces, "
            f"{cfg.train.epochs} epochs, device {device}{f' x{d.world}' if d.enabled else ''}; weights: {pretrained_source}")
    _wrap_for_steps(state, cfg, d)

    kind = state.unit.model.kind
    meta = run_meta(cfg, approach, spec, kind.embedding_dim(spec.embedding_dim, state.unit.model.num_features),
                    prior=folder.meta, pretrained_source=pretrained_source, seed=seed, state=state,
                    timings={"cache_s": data.cache_s}, world=d.world, n_train=len(train_set), n_val=len(val_set))
    prior_seconds = float(meta["train_seconds"] or 0.0)
    folder.start(meta)

    def on_epoch(epoch: int, rec: dict, improved: bool) -> None:
        folder.save_epoch(checkpoint(meta, cfg, spec, state, epoch), rec, improved,
                          round(prior_seconds + time.perf_counter() - t_start, 3))
        acc = f", val acc {rec['val_accuracy']:.3f}" if rec["val_accuracy"] is not None else ""
        say(f"epoch {epoch + 1}/{cfg.train.epochs}: train loss {rec['train_loss']:.4f}, val loss {rec['val_loss']:.4f}"
            f"{acc}, {rec['images_per_s']:.0f} img/s{'  *best' if improved else ''}")

    with folder.failures_recorded(state.history):
        fit(state, data, balance_labels(kind, cfg.train, train_set), cfg, d, seed, progress=progress,
            step_hook=step_hook, on_epoch=on_epoch)

    total = prior_seconds + time.perf_counter() - t_start
    folder.finish(state.best_epoch, cfg.train.epochs, round(total, 3))
    say(f"run {run_id} finished: best epoch {state.best_epoch + 1} (by {kind.selection_name}: "
        f"{state.best_loss:.4f}), {total:.0f} s")
    return TrainResult(run_id, approach, "finished", state.best_epoch, cfg.train.epochs, total, pretrained_source,
                       state.history, folder.dir)


def _reporter(log, d: Dist):
    """Where progress lines go: `log`, else stderr; nowhere on ranks other than 0."""
    if not d.main:
        return lambda msg: None
    return log or (lambda msg: print(msg, file=sys.stderr, flush=True))


def _build_state(cfg: ExperimentConfig, spec, device: torch.device, d: Dist, ckpt: dict | None):
    """Model, criterion, optimiser (and, resuming, their checkpointed state and the RNG states)."""
    model, pretrained_source = build_model(spec, pretrained=cfg.model.pretrained and ckpt is None,
                                           checkpoint=cfg.model.checkpoint if ckpt is None else "",
                                           quiet=not d.main)
    if ckpt is not None:
        pretrained_source = ckpt.get("pretrained_source", pretrained_source)
    criterion = model.kind.build_criterion(spec, cfg.train, real_class=0)
    unit = TrainUnit(model, criterion).to(device)
    if device.type == "cuda" and cfg.train.channels_last:
        model.channels_last = True
        unit = unit.to(memory_format=torch.channels_last)
    if d.enabled and device.type == "cuda":
        unit = nn.SyncBatchNorm.convert_sync_batchnorm(unit)
    opt = build_optimizer(cfg.train, [p for p in unit.parameters() if p.requires_grad])
    state = TrainState(unit, opt, unit, device, use_bf16(cfg.train.precision, device))
    if ckpt is not None:
        unit.model.load_state_dict(ckpt["model"])
        if ckpt.get("criterion"):
            unit.criterion.load_state_dict(ckpt["criterion"])
        opt.load_state_dict(ckpt["optimizer"])
        set_rng_state(ckpt["rng"])
        state.start_epoch = int(ckpt["epoch"]) + 1
        state.best_loss = float(ckpt["best_val_loss"])
        state.best_epoch = int(ckpt["best_epoch"])
        state.history = list(ckpt.get("history", []))
    return state, pretrained_source


def _wrap_for_steps(state: TrainState, cfg: ExperimentConfig, d: Dist) -> None:
    """DDP around the unit (several ranks), then torch.compile when `[train] compile` asks for it."""
    step_fn = state.unit
    if d.enabled:
        step_fn = nn.parallel.DistributedDataParallel(  # buffers: rank 0's, every forward
            state.unit, device_ids=[state.device.index] if state.device.type == "cuda" else None)
    if cfg.train.compile:
        step_fn = torch.compile(step_fn)
    state.step_fn = step_fn

