"""Process-group set-up and teardown, rank info, device and precision.

`torch.distributed` DDP: NCCL on GPU, gloo on CPU. Every rank runs the same
`train()`; `Dist` says which rank this is and whether it is rank 0, the one
that writes files and store rows.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from data_catalog.errors import AtlasError


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
    """Rank info from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK); one process without it."""
    return Dist(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                int(os.environ.get("LOCAL_RANK", 0)))


def init_distributed(d: Dist, device: torch.device) -> None:
    if d.enabled and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        # long timeout: rank 0 alone decodes the crop cache (minutes at paper scale) while the others wait
        dist.init_process_group(backend=backend, rank=d.rank, world_size=d.world,
                                timeout=datetime.timedelta(hours=2))


def teardown() -> None:
    """Destroy the process group if one is up (end of a torchrun / --ddp worker)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def broadcast_float(value: float, d: Dist) -> float:
    """Rank 0's value on every rank (a no-op in one process)."""
    if not d.enabled:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.broadcast(t, 0)
    return float(t)


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
