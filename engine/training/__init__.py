"""Training: one backbone, one approach, checkpoints every epoch.

    dfatlas train --config CONFIG --approach attribution
    torchrun --nproc_per_node=N -m engine.training --config CONFIG --approach attribution

Utilities in the style of `timm.utils`, one concern a module:

- `trainer`: `train()` as a short sequence of steps, `check_request`, `apply_overrides`;
- `crops`: which faces a run trains on, the uint8 crop cache, batch plans and sampling;
- `distributed`: process-group set-up/teardown, rank info, device and precision;
- `rng`: RNG state capture/restore as plain values (bit-exact resume);
- `optim`: optimiser and the epoch learning-rate schedule;
- `loop`: `TrainUnit`, one epoch, validation, the epoch loop;
- `run_folder`: run.json, train_log.jsonl, checkpoints, the store's runs/epochs rows, `TrainResult`;
- `launch`: `--ddp N` spawning and the `python -m engine.training` entry.

Approach-specific behaviour (head, loss, accuracy, sampling, checkpointed
criterion state) comes from the approach object (`engine.approaches`).
Scale-out is `torch.distributed` DDP (NCCL on GPU, gloo on CPU); see
docs/TRAINING.md for how BatchNorm, the ArcFaceMod weights and triplet mining
are handled across ranks.
"""

from .crops import BatchSource, FaceSet, balance_labels, epoch_batches, training_faces
from .distributed import Dist, dist_from_env, pick_device, use_bf16
from .launch import run_ddp
from .loop import NonFiniteLoss, TrainUnit, train_epoch, validate
from .optim import epoch_lr
from .run_folder import BEST, LAST, LOG_FILE, RUN_FILE, TrainResult, finished_result, retrain_run
from .trainer import apply_overrides, check_request, train

__all__ = ["BEST", "LAST", "LOG_FILE", "RUN_FILE", "BatchSource", "Dist", "FaceSet", "NonFiniteLoss", "TrainResult",
           "TrainUnit", "apply_overrides", "balance_labels", "check_request", "dist_from_env", "epoch_batches",
           "epoch_lr", "finished_result", "pick_device", "retrain_run", "run_ddp", "train", "train_epoch", "training_faces",
           "use_bf16", "validate"]
