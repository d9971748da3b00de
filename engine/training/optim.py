"""The optimiser of `[train] optimizer` and the epoch learning-rate schedule."""

from __future__ import annotations

import math

import torch


def build_optimizer(train_cfg, params) -> torch.optim.Optimizer:
    t = train_cfg
    if t.optimizer == "adam":
        return torch.optim.Adam(params, lr=t.lr, weight_decay=t.weight_decay)
    if t.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)
    return torch.optim.SGD(params, lr=t.lr, momentum=0.9, weight_decay=t.weight_decay)


def epoch_lr(t, epoch: int) -> float:
    """The learning rate of an epoch: a function of the epoch alone, so a
    resumed run continues exactly (no scheduler state to checkpoint)."""
    if t.lr_schedule == "cosine" and t.epochs > 1:
        return t.lr * 0.5 * (1.0 + math.cos(math.pi * epoch / t.epochs))
    return t.lr


def set_epoch_lr(opt: torch.optim.Optimizer, train_cfg, epoch: int) -> None:
    for group in opt.param_groups:
        group["lr"] = epoch_lr(train_cfg, epoch)
