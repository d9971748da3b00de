"""Placing new points into a stored t-SNE map: openTSNE's `transform`, rebuilt from stored arrays.

`rebuild_embedding` makes a `TSNEEmbedding` from reference embeddings and their map coordinates only
(exact, deterministic neighbours: `StoredReference`); `Placer` places points into it in batches of
`TRANSFORM_BATCH`, in this process for a few points and over single-threaded worker processes (one per
core) for many. Each point is optimised against the reference alone (openTSNE normalises the repulsion
point by point), so batch size and worker count change nothing but the time.

Why single-threaded workers: openTSNE's per-iteration OpenMP regions over a batch cost more than they
save when the batch is small or the machine busy (measured: docs/BENCHMARKS.md), while independent
batches in processes keep both cores busy. Workers start with `spawn` (as face extraction's do): a
script that calls the placement at scale needs the usual `if __name__ == "__main__":` guard.
"""

from __future__ import annotations

import os
from typing import Callable

import numpy as np

from data_catalog.errors import AtlasError

# openTSNE's recommended settings for adding points to an existing map
TRANSFORM_PARAMS = {"perplexity": 5, "k": 25, "learning_rate": 0.1, "early_exaggeration": 4,
                    "early_exaggeration_iter": 0, "exaggeration": 1.5, "n_iter": 250}

TRANSFORM_BATCH = 10_000  # points per openTSNE transform call: per-call costs are spent, a write slice splits evenly
PARALLEL_MIN = 2 * TRANSFORM_BATCH  # below this one process places everything (a worker takes ~2 s to start)


def worker_count(n: int) -> int:
    """Worker count of `[projection] n_jobs` (0 = one per core this process may use)."""
    if n > 0:
        return n
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class StoredReference:
    """openTSNE affinities for *adding* points to a stored map.

    Only `to_new` is needed by `TSNEEmbedding.transform`: exact k nearest
    reference neighbours (scikit-learn, brute force, deterministic) and
    openTSNE's own point-wise perplexity calibration.
    """

    def __init__(self, reference: np.ndarray, metric: str = "euclidean", n_jobs: int = 1):
        from scipy import sparse
        from sklearn.neighbors import NearestNeighbors

        self.reference = np.ascontiguousarray(reference, dtype=np.float32)
        self.metric = metric
        self.n_jobs = n_jobs
        self.index = NearestNeighbors(algorithm="brute", metric=metric, n_jobs=n_jobs).fit(self.reference)
        self.P = sparse.csr_matrix((len(self.reference), len(self.reference)))  # unused by transform
        self.verbose = False

    @property
    def n_samples(self) -> int:
        return len(self.reference)

    def to_new(self, data, perplexity=5, return_distances=False, k_neighbors="auto"):
        from openTSNE.affinity import joint_probabilities_nn

        k = min(self.n_samples, int(3 * perplexity)) if k_neighbors == "auto" else int(k_neighbors)
        perplexity = min(perplexity, k / 3) if perplexity * 3 > k else perplexity
        distances, neighbors = self.index.kneighbors(np.asarray(data, dtype=np.float32), n_neighbors=k)
        P = joint_probabilities_nn(neighbors, distances.astype(np.float64), [perplexity], symmetrize=False,
                                   normalization="point-wise", n_reference_samples=self.n_samples, n_jobs=self.n_jobs)
        return (P, neighbors, distances) if return_distances else P


def rebuild_embedding(reference_X: np.ndarray, reference_Y: np.ndarray, metric: str = "euclidean", n_jobs: int = 1,
                      seed: int = 0):
    """A `TSNEEmbedding` ready for `.transform()`, from stored arrays only."""
    from openTSNE import TSNEEmbedding

    if len(reference_X) != len(reference_Y):
        raise AtlasError(f"projection data is inconsistent: {len(reference_X)} reference embeddings, {len(reference_Y)} coordinates")
    aff = StoredReference(reference_X, metric=metric, n_jobs=n_jobs)
    return TSNEEmbedding(np.asarray(reference_Y, dtype=np.float64), aff, random_state=seed, n_jobs=n_jobs,
                         negative_gradient_method="fft")


def _transform(emb, X: np.ndarray, progress: Callable[[int, int], None] | None = None,
               batch: int = TRANSFORM_BATCH) -> np.ndarray:
    """Place `X` into `emb`, `batch` points per openTSNE call (each point is optimised against the
    reference only, so the batch size changes nothing but the time)."""
    n = len(X)
    out = np.zeros((n, 2), dtype=np.float64)
    for s in range(0, n, batch):
        out[s:s + batch] = np.asarray(emb.transform(np.asarray(X[s:s + batch], dtype=np.float32), **TRANSFORM_PARAMS))
        if progress:
            progress(min(s + batch, n), n)
    return out


# A worker process of the parallel placement holds one rebuilt embedding, single-threaded: under
# OpenMP, small parallel regions per iteration cost more than they save (measured, docs/BENCHMARKS.md).
_WORKER: dict = {}


def _worker_init(reference_X: np.ndarray, reference_Y: np.ndarray, metric: str, seed: int) -> None:
    from threadpoolctl import threadpool_limits

    _WORKER["limits"] = threadpool_limits(1)
    _WORKER["emb"] = rebuild_embedding(reference_X, reference_Y, metric, 1, seed)


def _worker_transform(X: np.ndarray) -> np.ndarray:
    return _transform(_WORKER["emb"], X)


class Placer:
    """Places points into a rebuilt map: in this process for a few points, else over a pool of
    single-threaded worker processes (one per core), `TRANSFORM_BATCH` points per task."""

    def __init__(self, reference_X: np.ndarray, reference_Y: np.ndarray, metric: str, seed: int, n_jobs: int):
        self.reference_X, self.reference_Y = reference_X, reference_Y
        self.metric, self.seed, self.workers = metric, seed, worker_count(n_jobs)
        self.pool = None
        self._local = None

    @property
    def dim(self) -> int:
        return self.reference_X.shape[1]

    def _emb(self):
        if self._local is None:
            self._local = rebuild_embedding(self.reference_X, self.reference_Y, self.metric, 1, self.seed)
        return self._local

    def place(self, X: np.ndarray, progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        n = len(X)
        if n == 0:
            return np.zeros((0, 2))
        if n < PARALLEL_MIN or self.workers < 2:
            from threadpoolctl import threadpool_limits

            with threadpool_limits(1):  # as in a worker, so both give the same numbers
                return _transform(self._emb(), X, progress)
        if self.pool is None:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            self.pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=mp.get_context("spawn"),
                                            initializer=_worker_init,
                                            initargs=(self.reference_X, self.reference_Y, self.metric, self.seed))
        out = np.zeros((n, 2), dtype=np.float64)
        starts = range(0, n, TRANSFORM_BATCH)
        for s, part in zip(starts, self.pool.map(_worker_transform, (X[s:s + TRANSFORM_BATCH] for s in starts))):
            out[s:s + len(part)] = part
            if progress:
                progress(min(s + TRANSFORM_BATCH, n), n)
        return out

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
