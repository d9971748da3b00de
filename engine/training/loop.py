"""The trainable unit, one training epoch, validation, and the epoch loop.

Everything here runs on every rank; what rank 0 writes after an epoch is the
`on_epoch` callback's business (see `run_folder.RunFolder.save_epoch`).
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from data_catalog.errors import AtlasError

from ..models import AtlasModel
from .crops import BatchSource, TrainingData, epoch_batches
from .distributed import Dist, broadcast_float
from .optim import set_epoch_lr


class NonFiniteLoss(AtlasError):
    pass


class TrainUnit(nn.Module):
    """Model and loss in one module, so DDP all-reduces the ArcFaceMod weights too.

    forward(images, labels, is_real) -> (loss, output) where output is what
    accuracy needs (binary logit, attribution logits, embedding); the loss is
    the approach's `loss` hook.
    """

    def __init__(self, model: AtlasModel, criterion: nn.Module):
        super().__init__()
        self.model = model
        self.criterion = criterion

    def forward(self, images, labels, is_real, mine: bool = True):
        _, out = self.model(images)
        return self.model.kind.loss(self.criterion, out, labels, is_real, mine=mine), out


@dataclass
class TrainState:
    """What the epoch loop advances: the unit, its optimiser, the best epoch so far."""

    unit: TrainUnit
    opt: torch.optim.Optimizer
    step_fn: Callable          # the unit as the optimiser steps through it (DDP-wrapped, compiled)
    device: torch.device
    bf16: bool
    start_epoch: int = 0
    best_loss: float = math.inf
    best_epoch: int = -1
    history: list = field(default_factory=list)


def fit(state: TrainState, data: TrainingData, balance: np.ndarray | None, cfg, d: Dist, seed: int, *,
        progress: bool, step_hook=None, on_epoch: Callable[[int, dict, bool], Any] | None = None) -> None:
    """Epochs `state.start_epoch` .. `[train] epochs - 1`; after each, rank 0 calls `on_epoch(epoch, rec, improved)`."""
    for epoch in range(state.start_epoch, cfg.train.epochs):
        t_epoch = time.perf_counter()
        set_epoch_lr(state.opt, cfg.train, epoch)
        state.unit.train()
        batches = epoch_batches(len(data.train), cfg.train.batch_size, seed=seed, epoch=epoch, rank=d.rank,
                                world=d.world, balance_labels=balance, samples_per_class=cfg.train.samples_per_class)
        stats = train_epoch(state.step_fn, state.unit, state.opt, data.train, data.train_real, batches, state.device,
                            state.bf16, cfg, d, epoch, progress=progress and d.main, seed=seed, step_hook=step_hook)
        t_val = time.perf_counter()
        if d.main:
            val_loss, val_acc, criterion = validate(state.unit, data.val, data.val_real, state.device, state.bf16,
                                                    cfg, seed)
        else:
            val_loss, val_acc, criterion = 0.0, None, 0.0
        val_loss = broadcast_float(val_loss, d)
        criterion = broadcast_float(criterion, d)
        seconds = time.perf_counter() - t_epoch
        if not math.isfinite(val_loss):
            raise NonFiniteLoss(f"validation loss is {val_loss} after epoch {epoch + 1}")
        rec = {"epoch": epoch, "train_loss": stats["loss"], "val_loss": val_loss, "val_accuracy": val_acc,
               "seconds": round(seconds, 3), "images_per_s": stats["img_s"], "train_images": stats["images"],
               "data_s": stats["data_s"], "compute_s": stats["compute_s"],
               "val_s": round(time.perf_counter() - t_val, 3), "selection": criterion}
        state.history.append(rec)
        improved = criterion < state.best_loss  # best_loss: the best epoch's selection score
        if improved:
            state.best_loss, state.best_epoch = criterion, epoch
        if d.main and on_epoch is not None:
            on_epoch(epoch, rec, improved)
        d.barrier()


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


def train_epoch(step_fn, unit: TrainUnit, opt, src: BatchSource, is_real: np.ndarray, batches: list,
                device: torch.device, bf16: bool, cfg, d: Dist, epoch: int, *,
                progress: bool, seed: int, step_hook=None) -> dict:
    """One pass over this rank's `batches`: mean loss over all ranks, images/s, data/compute seconds."""
    from tqdm.auto import tqdm

    is_real_t = torch.from_numpy(is_real)
    gen = torch.Generator().manual_seed(seed * 7919 + epoch + 17 * d.rank)
    losses = torch.zeros(len(batches), dtype=torch.float64, device=device)
    n_images = 0
    data_s = compute_s = 0.0
    check_every = 10
    checked = 0
    bar = tqdm(total=len(batches), desc=f"{unit.model.spec.approach} epoch {epoch + 1}/{cfg.train.epochs}",
               unit="batch", file=sys.stderr, dynamic_ncols=True, mininterval=0.5, disable=not progress, leave=False)
    t_data = time.perf_counter()
    t_epoch = t_data
    nb = device.type == "cuda"
    for step, (idx, (x, y)) in enumerate(zip(batches, _loader(src, batches, device, cfg.train.num_workers))):
        r = is_real_t[torch.from_numpy(np.asarray(idx))]
        x = x.to(device, non_blocking=nb)
        y = y.to(device, non_blocking=nb)
        r = r.to(device, non_blocking=nb)
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
             cfg, seed: int) -> tuple[float, float | None, float]:
    """Mean validation loss, accuracy and the approach's selection score (what the best epoch minimises),
    batches in a fixed shuffled order (mixed classes).

    Accuracy is the approach's `correct_count` summed over the batches; an
    approach without a per-batch count (triplet: loss over all triplets of
    each batch, no mining) gets leave-one-out 1-NN accuracy over the
    validation embeddings (up to 4000 of them), and its selection score is
    computed on those embeddings (`Approach.selection_score`).
    """
    unit.eval()
    kind = unit.model.kind
    n = len(src)
    order = np.random.default_rng([seed, 99]).permutation(n)
    bs = kind.validation_batch_size(cfg.train.batch_size)
    is_real_t = torch.from_numpy(is_real)
    total_loss, total_n, correct = 0.0, 0, 0
    embs, labs = [], []
    nearest_neighbour = False
    for i in range(0, n, bs):
        idx = order[i:i + bs]
        x, y = src[idx]
        x, y = x.to(device), y.to(device)
        r = is_real_t[torch.from_numpy(idx)].to(device)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
            loss, out = unit(x, y, r, mine=False)
        total_loss += float(loss) * len(idx)
        total_n += len(idx)
        count = kind.correct_count(unit.criterion, out, y, r)
        if count is None:
            nearest_neighbour = True
            if sum(len(e) for e in embs) < 4000:
                embs.append(out.float().cpu())
                labs.append(y.cpu())
        else:
            correct += count
    unit.train()
    if nearest_neighbour:
        e = torch.cat(embs)
        lab = torch.cat(labs)
        loss = total_loss / max(total_n, 1)
        if len(e) < 2:
            return loss, None, loss
        dmat = torch.cdist(e, e)
        dmat.fill_diagonal_(float("inf"))
        acc = float((lab[dmat.argmin(1)] == lab).float().mean())
        return loss, acc, float(kind.selection_score(loss, e.numpy(), lab.numpy()))
    loss = total_loss / max(total_n, 1)
    return loss, correct / max(total_n, 1), float(kind.selection_score(loss, None, None))
