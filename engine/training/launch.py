"""Entry points for several processes: `dfatlas train --ddp N` (local spawn) and
`torchrun --nproc_per_node=N -m engine.training --config C --approach A`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

from data_catalog.errors import AtlasError

from ..approaches import approach_names
from ..config import load_config
from ..workspace import Workspace, resolve_workspace
from .distributed import dist_from_env, teardown
from .trainer import apply_overrides, train


def _ddp_worker(rank: int, world: int, port: int, config_path: str, approach: str, ws_root: str,
                backbone: str | None, epochs: int | None, resume_only: bool) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    cfg = apply_overrides(load_config(config_path), backbone, epochs)
    try:
        train(cfg, approach, resolve_workspace(ws_root), resume_only=resume_only, dist_info=dist_from_env())
    finally:
        teardown()


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
    """`torchrun --nproc_per_node=N -m engine.training --config C --approach A` (or plain python)."""
    p = argparse.ArgumentParser(prog="python -m engine.training",
                                description="train one approach (DDP under torchrun)")
    p.add_argument("--config", required=True)
    p.add_argument("--approach", required=True, choices=approach_names(trainable_only=True))
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
        print(f"engine.training: error (rank {d.rank}): {exc}", file=sys.stderr)
        return exc.exit_code
    finally:
        teardown()
    return 0
