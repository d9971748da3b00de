"""Tiny learnable face-crop problems for the training tests.

`make_toy(workspace, tmp_path)` writes PNG crops (one colour/texture per
class, plus noise) into the workspace, the matching rows of `videos`,
`datasets` and `faces`, and a config (test_resnet @ 32 px, 3 classes) whose
face settings key matches the rows. Returns the config path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from testkit.store_builder import StoreBuilder

CLASSES = ["real", "fake-a", "fake-b"]

CONFIG = """
[experiment]
name = "toy"
seed = 0

[sources]
superset = ["toy"]

[sources.toy]
adapter = "generic"
root = "toy-root"

[[taxonomy.class]]
id = "real"
name = "Real"
color = "#0072B2"

[[taxonomy.class]]
id = "fake-a"
name = "Fake A"
color = "#E69F00"
sources = ["toy:a"]

[[taxonomy.class]]
id = "fake-b"
name = "Fake B"
color = "#009E73"
sources = ["toy:b"]

[faces]
crop_size = {size}

[model]
backbone = "{backbone}"
pretrained = false
input_size = {input_size}
residual_input = {residual}

[train]
epochs = {epochs}
batch_size = {batch}
lr = {lr}
num_workers = 0
samples_per_class = 4
balanced_sampling = {balanced}
device = "{device}"
"""


def toy_image(rng: np.random.Generator, cls: int, size: int) -> np.ndarray:
    """Class 0: smooth grey; class 1: red tint + horizontal stripes; class 2: blue tint + checker."""
    base = rng.integers(90, 160)
    img = np.full((size, size, 3), base, dtype=np.float32)
    img += rng.normal(0, 6, img.shape)
    yy, xx = np.mgrid[0:size, 0:size]
    if cls == 1:
        img[..., 0] += 40
        img += (((yy // 2) % 2) * 30)[..., None]
    elif cls == 2:
        img[..., 2] += 40
        img += ((((yy // 2) + (xx // 2)) % 2) * 30)[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


def write_config(path: Path, *, size: int = 32, input_size: int = 0, backbone: str = "test_resnet", epochs: int = 3,
                 batch: int = 16, lr: float = 1e-3, residual: bool = False, balanced: bool = False,
                 device: str = "cpu") -> Path:
    path.write_text(CONFIG.format(size=size, input_size=input_size, backbone=backbone, epochs=epochs, batch=batch,
                                  lr=lr, residual=str(residual).lower(), balanced=str(balanced).lower(),
                                  device=device))
    return path


def make_toy(workspace, tmp_path: Path, *, videos_per_class: dict | None = None, frames: int = 4, size: int = 32,
             seed: int = 0, unseen: bool = True, **cfg_kw) -> Path:
    import cv2

    from engine.config import load_config

    cfg_path = write_config(tmp_path / "toy.toml", size=size, **cfg_kw)
    cfg = load_config(cfg_path)
    key = cfg.faces.settings_key()
    rng = np.random.default_rng(seed)
    videos_per_class = videos_per_class or {"train": 6, "val": 2, "test": 2}
    vids, faces = [], []
    classes = list(enumerate(CLASSES)) + ([(1, "unseen-fake")] if unseen else [])
    for split, nv in videos_per_class.items():
        for ci, cname in classes:
            for v in range(nv):
                rel = f"{cname}/{split}_{v}.avi"
                vid = f"toy/{rel}"
                vids.append(dict(video_id=vid, database="toy", split=split, dataset=f"toy/{split}", relpath=rel,
                                 path=f"/x/{rel}", true_class=cname, is_fake=cname != "real", identity=f"id{v}",
                                 method={"real": "", "fake-a": "a", "fake-b": "b"}.get(cname, "z")))
                for f in range(frames):
                    crop_rel = f"faces/{key}/{cname}/{split}_{v}_{f}.png"
                    out = workspace.root / crop_rel
                    out.parent.mkdir(parents=True, exist_ok=True)
                    img = toy_image(rng, ci, size)
                    cv2.imwrite(str(out), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
                    faces.append(dict(face_id=f"{vid}#{f}@{key}", video_id=vid, settings_key=key, frame_index=f,
                                      crop_path=crop_rel))
    b = StoreBuilder(workspace.store())
    b.video_columns(database="toy", split=[v["split"] for v in vids], relpath=[v["relpath"] for v in vids],
                    true_class=[v["true_class"] for v in vids], path=[v["path"] for v in vids],
                    identity=[v["identity"] for v in vids], method=[v["method"] for v in vids])
    b.datasets(dataset=[f"toy/{s}" for s in videos_per_class], database="toy", split=list(videos_per_class),
               role="superset")
    b.faces(key, [f["video_id"] for f in faces], [f["frame_index"] for f in faces], [f["crop_path"] for f in faces])
    return cfg_path


def ddp_worker(rank: int, world: int, port: int, cfg_path: str, ws_root: str, approaches: list, out_dir: str) -> None:
    """One rank of the 2-process gloo test: train each approach through
    engine.training.train (one process group) and record, after every optimiser
    step, whether all ranks hold identical weights and which batch it took."""
    import json
    import os

    import torch
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from engine.config import load_config
    from engine.training import dist_from_env, train
    from engine.workspace import resolve_workspace

    records = {}
    try:
        for approach in approaches:
            record = records[approach] = {"batches": [], "max_param_diff": [], "losses": []}

            def hook(epoch, step, idx, unit, loss, record=record):
                flat = torch.cat([p.detach().reshape(-1) for p in unit.parameters()])
                gathered = [torch.zeros_like(flat) for _ in range(world)]
                dist.all_gather(gathered, flat)
                record["max_param_diff"].append(float(max((g - flat).abs().max() for g in gathered)))
                record["batches"].append([epoch, step, [int(i) for i in idx]])
                record["losses"].append([epoch, float(loss)])

            res = train(load_config(cfg_path), approach, resolve_workspace(ws_root), dist_info=dist_from_env(),
                        progress=False, step_hook=hook)
            record["history"] = res.history
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as fh:
        json.dump(records, fh)
