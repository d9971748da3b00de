"""Training crops: which faces a run trains on, a decoded uint8 crop cache,
and the per-epoch batch plans (shuffled or class-balanced, sharded per rank).

Faces come from the store: videos of the training super-set joined with the
faces of the config's face-settings key; split `train` trains, `val`
validates; a face's label is its true class's index in the taxonomy.
`unseen-fake` faces are never trained on.

Crops are decoded once into one uint8 array [N, S, S, 3] (a `.npy` file,
memory-mapped) under `<workspace>/cache/`, shared by every run with the same
faces and size. A batch is then one fancy-index into that array, so the data
pipeline costs almost nothing next to the model (bench/bench_train.py
measures the ratio).
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from data_catalog.errors import AtlasError
from data_catalog.records import UNSEEN_FAKE

from ..diskspace import DiskFull, reserve
from ..faces import read_crop
from ..store.catalog import dataset_databases
from ..store.faces import labelled_faces

CACHE_DIR = "cache"


@dataclass
class FaceSet:
    """The faces of one split: ids, crop paths, integer labels."""

    frame: pd.DataFrame  # face_id, video_id, crop_path, split, true_class, label, is_real

    @property
    def labels(self) -> np.ndarray:
        return self.frame["label"].to_numpy(np.int64)

    @property
    def is_real(self) -> np.ndarray:
        return np.array(self.frame["is_real"], dtype=bool)

    def __len__(self) -> int:
        return len(self.frame)


def superset_databases(cfg, store) -> list[str]:
    """The training super-set: `[sources] superset`, else datasets the store marks 'superset'."""
    if cfg.sources.superset:
        return list(cfg.sources.superset)
    try:
        return dataset_databases(store, "superset")
    except Exception:
        return []


def training_faces(workspace, cfg, *, quiet: bool = False) -> tuple[FaceSet, FaceSet]:
    """(train, val) faces of the super-set for the config's face settings."""
    store = workspace.store()
    if not workspace.store_path.exists():
        raise AtlasError(f"no store at {workspace.store_path}: run `dfatlas catalog` and `dfatlas faces` first")
    dbs = superset_databases(cfg, store)
    if not dbs:
        raise AtlasError(f"{cfg.path}: [sources] superset is empty: name the databases to train on")
    key = cfg.faces.settings_key()
    df = labelled_faces(store, key, dbs, splits=("train", "val"))
    if df.empty:
        raise AtlasError(
            f"no face crops for the training super-set ({', '.join(dbs)}) with face settings {key}: "
            f"run `dfatlas faces --config {cfg.path}` first"
        )
    tax = cfg.taxonomy
    df = df[df["true_class"] != UNSEEN_FAKE]
    unknown = sorted(set(df["true_class"]) - set(tax.ids))
    if unknown:
        raise AtlasError(
            f"the store has training videos of class {unknown[0]!r}, which the taxonomy of {cfg.path} does not "
            f"know ({', '.join(tax.ids)}); re-run `dfatlas catalog` with this config or fix [taxonomy]"
        )
    df = df.assign(label=df["true_class"].map({c: i for i, c in enumerate(tax.ids)}).astype(np.int64),
                   is_real=~df["is_fake"].astype(bool))
    cap = cfg.train.max_faces_per_video
    if cap:
        df = _cap_per_video(df, cap)
    train = df[df["split"] == "train"].reset_index(drop=True)
    val = df[df["split"] == "val"].reset_index(drop=True)
    if train.empty:
        raise AtlasError("the training super-set has no faces in split 'train'")
    if val.empty:
        raise AtlasError("the training super-set has no faces in split 'val' (needed to pick the best epoch)")
    return FaceSet(train), FaceSet(val)


def _cap_per_video(df: pd.DataFrame, cap: int) -> pd.DataFrame:
    """Keep at most `cap` faces per video, spread evenly over its frames."""
    df = df.sort_values(["video_id", "frame_index"], kind="stable")
    rank = df.groupby("video_id").cumcount().to_numpy()
    count = df.groupby("video_id")["face_id"].transform("size").to_numpy()
    # evenly spaced positions: keep rank r when floor(r * cap / count) changes
    keep = (count <= cap) | (np.floor((rank + 1) * cap / count) != np.floor(rank * cap / count))
    return df[keep].sort_values("face_id", kind="stable")


# --- the crop cache -----------------------------------------------------------

def cache_path(workspace, face_ids: list[str], size: int) -> Path:
    h = hashlib.sha256(("\n".join(face_ids) + f"\n{size}").encode()).hexdigest()[:16]
    return workspace.root / CACHE_DIR / f"crops-{size}px-{len(face_ids)}-{h}.npy"


def build_crop_cache(workspace, frame: pd.DataFrame, size: int, *, threads: int = 0,
                     progress: bool = True) -> Path:
    """Decode every crop of `frame` once into a uint8 .npy file; reuse it when it exists."""
    import cv2

    ids = frame["face_id"].tolist()
    out = cache_path(workspace, ids, size)
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".tmp{os.getpid()}.npy")
    arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(ids), size, size, 3))
    try:
        reserve(tmp)  # a full disk: DiskFull now, not a SIGBUS while the map is filled
    except DiskFull:
        del arr
        raise
    paths = [workspace.root / p for p in frame["crop_path"].tolist()]
    threads = threads or min(8, os.cpu_count() or 1)
    missing: list[str] = []
    prev_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(paths), desc="decode crops", unit="img", file=sys.stderr, dynamic_ncols=True,
                   mininterval=0.5)
    try:
        with ThreadPoolExecutor(threads) as pool:
            for i, img in enumerate(pool.map(lambda p: read_crop(p, size), paths, chunksize=64)):
                if img is None:
                    missing.append(str(paths[i]))
                else:
                    arr[i] = img
                if bar is not None:
                    bar.update(1)
    finally:
        cv2.setNumThreads(prev_threads)
        if bar is not None:
            bar.close()
    if missing:
        del arr
        tmp.unlink(missing_ok=True)
        raise AtlasError(f"{len(missing)} face crop file(s) are missing or unreadable, e.g. {missing[0]}; "
                         "run `dfatlas faces` for this config: it re-extracts the videos whose crops are missing")
    arr.flush()
    del arr
    os.replace(tmp, out)
    return out


def open_cache(path: Path) -> np.ndarray:
    return np.load(path, mmap_mode="r")


# --- batches ----------------------------------------------------------------------

class BatchSource:
    """Indexable by a list of indices -> (uint8 images N,3,S,S tensor, labels tensor).

    Opens the memory-mapped cache lazily, so it pickles cheaply into
    DataLoader worker processes (each worker maps the file itself).
    """

    def __init__(self, cache_file: Path, labels: np.ndarray, rows: np.ndarray | None = None):
        self.cache_file = Path(cache_file)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)  # row of each item in the cache
        self._arr = None

    def __getstate__(self):
        d = self.__dict__.copy()
        d["_arr"] = None
        return d

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, idx):
        import torch

        if self._arr is None:
            self._arr = open_cache(self.cache_file)
        idx = np.asarray(idx, dtype=np.int64)
        rows = idx if self.rows is None else self.rows[idx]
        order = np.argsort(rows, kind="stable")  # sequential reads from the map
        imgs = np.empty((len(rows),) + self._arr.shape[1:], dtype=np.uint8)
        imgs[order] = self._arr[rows[order]]
        x = torch.from_numpy(imgs).permute(0, 3, 1, 2)  # N,3,S,S (channels-last memory)
        return x, torch.from_numpy(self.labels[idx])


@dataclass
class TrainingData:
    """A run's two splits as batch sources over one shared crop cache."""

    train: BatchSource
    val: BatchSource
    train_real: np.ndarray  # is_real per training face
    val_real: np.ndarray
    cache_s: float          # seconds spent on the cache (decoding, or waiting for rank 0)


def training_data(workspace, train_set: FaceSet, val_set: FaceSet, size: int, *, main: bool = True,
                  barrier=lambda: None, progress: bool = True) -> TrainingData:
    """Rank 0 decodes (or reuses) the crop cache of both splits; the other ranks wait at `barrier`
    and map the same file."""
    t0 = time.perf_counter()
    faces = pd.concat([train_set.frame, val_set.frame], ignore_index=True)
    if main:
        cache = build_crop_cache(workspace, faces, size, progress=progress)
    barrier()
    if not main:
        cache = cache_path(workspace, faces["face_id"].tolist(), size)
    n = len(train_set)
    return TrainingData(BatchSource(cache, train_set.labels, np.arange(n)),
                        BatchSource(cache, val_set.labels, np.arange(n, n + len(val_set))),
                        train_set.is_real, val_set.is_real, round(time.perf_counter() - t0, 3))


def balance_labels(kind, train_cfg, faces: FaceSet) -> np.ndarray | None:
    """What class-balanced batches balance (the approach's `sampler_labels`), or None for plain shuffling.

    Balanced when the approach needs P x K batches (triplet mining) or
    `[train] balanced_sampling` asks for it.
    """
    if not (kind.needs_class_batches or train_cfg.balanced_sampling):
        return None
    return kind.sampler_labels(faces.labels, faces.is_real)


def epoch_batches(n: int, batch_size: int, *, seed: int, epoch: int, rank: int = 0, world: int = 1,
                  balance_labels: np.ndarray | None = None, samples_per_class: int = 4) -> list[np.ndarray]:
    """This rank's batches of one epoch: a deterministic function of (seed, epoch).

    Every rank computes the same global plan and takes every `world`-th batch,
    so the shards of an epoch are disjoint and all ranks run the same number
    of steps. Plain mode: a seeded permutation (each sample once per epoch).
    Balanced mode (`balance_labels`): pytorch-metric-learning's
    `MPerClassSampler` (K = `samples_per_class` per class, P = batch/K
    classes per batch), its NumPy generator seeded from (seed, epoch);
    it draws with replacement across batches, as the library does.
    A final batch of a single sample is dropped (BatchNorm needs two).
    """
    if balance_labels is None:
        rng = np.random.default_rng([seed, epoch, 7])
        order = rng.permutation(n)
        batches = [order[i:i + batch_size] for i in range(0, n, batch_size)]
    else:
        order = _mper_class_order(balance_labels, batch_size, samples_per_class, seed, epoch)
        b = _balanced_batch_size(balance_labels, batch_size, samples_per_class)
        batches = [order[i:i + b] for i in range(0, len(order) - b + 1, b)]
    batches = [bt for bt in batches if len(bt) >= 2]
    per_rank = len(batches) // world
    return [batches[i * world + rank] for i in range(per_rank)]


def _balanced_m(labels: np.ndarray, batch_size: int, k: int) -> int:
    n_labels = len(np.unique(labels))
    m = max(1, min(k, batch_size))
    while batch_size // m > n_labels:  # P must not exceed the number of classes
        m += 1
    return m


def _balanced_batch_size(labels: np.ndarray, batch_size: int, k: int) -> int:
    m = _balanced_m(labels, batch_size, k)
    return max(m, (batch_size // m) * m)


def _mper_class_order(labels: np.ndarray, batch_size: int, k: int, seed: int, epoch: int) -> np.ndarray:
    from pytorch_metric_learning.samplers import MPerClassSampler
    from pytorch_metric_learning.utils import common_functions as c_f

    m = _balanced_m(labels, batch_size, k)
    b = _balanced_batch_size(labels, batch_size, k)
    length = max(b, (len(labels) // b) * b)
    saved = c_f.NUMPY_RANDOM
    c_f.NUMPY_RANDOM = np.random.RandomState(np.random.SeedSequence([seed, epoch, 11]).generate_state(1)[0])
    try:
        sampler = MPerClassSampler(labels, m=m, batch_size=b, length_before_new_iter=length)
        return np.fromiter(iter(sampler), dtype=np.int64)
    finally:
        c_f.NUMPY_RANDOM = saved
