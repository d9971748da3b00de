"""The one crop reader: face-crop files (as `faces.crop_path` names them) back as uint8 RGB arrays,
for training (`engine.training.crops`' decoded cache) and inference (`engine.embed`, analysis)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from data_catalog.errors import AtlasError


def read_crop(path, size: int | None = None) -> np.ndarray | None:
    """One crop file as uint8 RGB [H, W, 3], resized to size x size when `size` is given and differs
    (INTER_AREA when shrinking, INTER_LINEAR when enlarging); None when missing or unreadable."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        return None
    if size and img.shape[:2] != (size, size):
        interp = cv2.INTER_AREA if img.shape[0] > size else cv2.INTER_LINEAR
        img = cv2.resize(img, (size, size), interpolation=interp)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_crops(workspace, crop_paths: Iterable[str], size: int | None = None, threads: int = 1) -> np.ndarray:
    """Crop files (paths relative to the workspace, as in `faces.crop_path`) as one uint8 RGB array
    [N, H, W, 3]; `size` resizes every crop to size x size (needed when crops of different sizes are
    mixed). A missing or unreadable file is an error naming it."""
    root = Path(workspace.root if hasattr(workspace, "root") else workspace)
    paths = [root / p for p in crop_paths]
    if not paths:
        s = size or 0
        return np.zeros((0, s, s, 3), dtype=np.uint8)

    def load(p: Path) -> np.ndarray:
        img = read_crop(p, size)
        if img is None:
            raise AtlasError(f"face crop {p} is missing or unreadable; run `dfatlas faces` for this config: it "
                             "re-extracts the videos whose crops are missing (`--verify` also finds damaged ones)")
        return img

    if threads > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(threads) as ex:
            images = list(ex.map(load, paths))
    else:
        images = [load(p) for p in paths]
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise AtlasError(f"face crops have different sizes {sorted(shapes)[:3]}: pass size= to read_crops")
    return np.stack(images)
