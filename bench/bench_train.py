"""Training throughput: model-only vs full pipeline (is data loading the bottleneck?).

    python bench/bench_train.py                       # demo model: resnet10t@64 + residual, CPU
    python bench/bench_train.py --backbone legacy_xception --size 224 --batch 32 --device cuda

Measures, in one run, on random uint8 crops written to a temporary crop
cache exactly as `engine.training` uses it:
  data-only      batches from the memory-mapped uint8 cache (engine.training.crops.BatchSource)
  png-decode     the same images decoded from PNG files each time (what the cache avoids)
  model-only     forward + backward + Adam step on one resident batch
  full pipeline  engine.training.loop.train_epoch: cache -> batch -> device -> step
  inference      forward only (no grad), what `dfatlas embed` does
The ratio full/model-only near 1.0 means the data pipeline does not starve the model.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", default="resnet10t")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--residual", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--approach", default="attribution")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    p.add_argument("--n-images", type=int, default=2048)
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers on CUDA (default: min(8, cores))")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from engine.approaches import get_approach
    from engine.models import ModelSpec, build_model, _timm_cfg
    from engine.training.crops import BatchSource
    from engine.training.distributed import Dist, pick_device, use_bf16
    from engine.training.loop import TrainUnit, train_epoch
    from engine.config import TrainSection

    device = pick_device(args.device, Dist())
    bf16 = use_bf16(args.precision, device)
    workers = args.workers if args.workers is not None else min(8, os.cpu_count() or 1)
    pcfg = _timm_cfg(args.backbone)
    spec = ModelSpec(args.backbone, args.approach, 7, 64, args.residual, args.size,
                     tuple(pcfg.get("mean", (0.485, 0.456, 0.406))), tuple(pcfg.get("std", (0.229, 0.224, 0.225))))
    tcfg = TrainSection(batch_size=args.batch, num_workers=workers if device.type == "cuda" else 0,
                        compile=args.compile, epochs=1)
    model, _ = build_model(spec, pretrained=False, quiet=True)
    unit = TrainUnit(model, get_approach(spec.approach).build_criterion(spec, tcfg)).to(device)
    if device.type == "cuda":
        model.channels_last = True
        unit = unit.to(memory_format=torch.channels_last)
    step_fn = torch.compile(unit) if args.compile else unit
    opt = torch.optim.Adam(unit.parameters(), lr=2e-4)
    rng = np.random.default_rng(0)
    n = args.n_images
    labels = rng.integers(0, 7, n)
    is_real = labels == 0
    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else f'{torch.get_num_threads()} threads'}), "
          f"{args.backbone}@{args.size}{' + residual' if args.residual else ''}, {args.approach}, batch {args.batch}, "
          f"{'bf16' if bf16 else 'fp32'}, torch {torch.__version__}")

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "crops.npy"
        arr = np.lib.format.open_memmap(cache, mode="w+", dtype=np.uint8, shape=(n, args.size, args.size, 3))
        arr[:] = rng.integers(0, 256, arr.shape, dtype=np.uint8)
        arr.flush()
        src = BatchSource(cache, labels)
        batches = [rng.permutation(n)[:args.batch] for _ in range(args.steps)]

        # data-only
        t = time.perf_counter()
        for b in batches:
            x, y = src[b]
        rows.append(("data-only (uint8 cache)", args.steps * args.batch / (time.perf_counter() - t)))

        # PNG decode, what the cache avoids
        import cv2

        from engine.training.crops import read_crop

        pngs = []
        for i in range(min(n, 256)):
            f = Path(tmp) / f"{i}.png"
            cv2.imwrite(str(f), np.asarray(arr[i]))
            pngs.append(f)
        m = min(len(pngs), args.batch * 4)
        t = time.perf_counter()
        for f in pngs[:m]:
            read_crop(f, args.size)
        rows.append(("png-decode (1 thread)", m / (time.perf_counter() - t)))

        def step(x, y, r):
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
                loss, _ = step_fn(x, y, r)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return loss

        def sync():
            if device.type == "cuda":
                torch.cuda.synchronize(device)

        # model-only: one resident batch
        x, y = src[batches[0]]
        x, y = x.to(device), y.to(device)
        r = torch.from_numpy(is_real[batches[0]]).to(device)
        for _ in range(3):
            step(x, y, r)
        sync()
        t = time.perf_counter()
        for _ in range(args.steps):
            step(x, y, r)
        sync()
        model_only = args.steps * args.batch / (time.perf_counter() - t)
        rows.append(("model-only train step", model_only))

        # full pipeline: the training loop's own epoch function
        unit.train()
        stats = train_epoch(step_fn, unit, opt, src, is_real, batches, device, bf16,
                             _Cfg(tcfg), Dist(), 0, progress=False, seed=0)
        rows.append(("full pipeline train (engine loop)", stats["img_s"]))

        # inference
        unit.eval()
        with torch.no_grad():
            xb, _ = src[np.arange(min(n, args.batch * 4))]
            xb = xb.to(device)
            for _ in range(2):
                with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
                    model(xb)
            sync()
            t = time.perf_counter()
            reps = max(1, args.steps // 4)
            for _ in range(reps):
                with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
                    model(xb)
            sync()
            rows.append(("inference (batch x4, no grad)", reps * len(xb) / (time.perf_counter() - t)))
        del arr

    width = max(len(r[0]) for r in rows)
    for name, v in rows:
        print(f"{name.ljust(width)}  {v:9.1f} img/s")
    full = dict(rows)["full pipeline train (engine loop)"]
    print(f"{'full / model-only'.ljust(width)}  {full / model_only:9.2f}  (1.0 = data loading costs nothing)")
    print(f"{'cache / png-decode'.ljust(width)}  {dict(rows)['data-only (uint8 cache)'] / dict(rows)['png-decode (1 thread)']:9.1f}x")
    return 0


class _Cfg:
    """The bits of an ExperimentConfig that train_epoch reads."""

    def __init__(self, train):
        self.train = train


if __name__ == "__main__":
    sys.exit(main())
