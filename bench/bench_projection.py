"""Projection benchmark: openTSNE fit + transform, against scikit-learn's TSNE.

    .venv/bin/python bench/bench_projection.py [--fit 20000] [--new 5000] [--dim 64] [--n-jobs 0]

Data: a 10-cluster Gaussian mixture in `dim` dimensions (embedding-like).
1. openTSNE fit on `fit` points with the project's defaults ([projection]:
   perplexity 30, 250 + 500 iterations, PCA init).
2. Place `new` further points into that map: the project's path
   (`engine.placement.rebuild_embedding` from stored arrays, exact
   neighbours) and openTSNE's own fitted object, for comparison.
3. scikit-learn `TSNE.fit_transform` on the same `new` points (it cannot add
   points to an existing map; this is the baseline DESIGN.md asks for), and
   openTSNE fitting those `new` points alone.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def data(n: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, size=(10, dim))
    lab = rng.integers(0, 10, n)
    return (centres[lab] + rng.normal(size=(n, dim))).astype(np.float32), lab


def knn_agreement(Y: np.ndarray, lab: np.ndarray, k: int = 10) -> float:
    """Share of each point's k nearest map neighbours with its own cluster (map quality)."""
    from sklearn.neighbors import NearestNeighbors

    idx = NearestNeighbors(n_neighbors=k + 1).fit(Y).kneighbors(Y, return_distance=False)[:, 1:]
    return float((lab[idx] == lab[:, None]).mean())


def main() -> None:
    import openTSNE
    from sklearn.manifold import TSNE as SkTSNE

    from engine.config import ProjectionSection
    from engine.placement import TRANSFORM_PARAMS, rebuild_embedding

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fit", type=int, default=20000)
    ap.add_argument("--new", type=int, default=5000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--n-jobs", type=int, default=0, help="0 = all cores")
    args = ap.parse_args()
    n_jobs = args.n_jobs or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    sec = ProjectionSection()
    X, lab = data(args.fit + args.new, args.dim)
    Xr, Xn, lr_, ln = X[:args.fit], X[args.fit:], lab[:args.fit], lab[args.fit:]
    print(f"cores used: {n_jobs}; openTSNE {openTSNE.__version__}")

    t0 = time.perf_counter()
    fitted = openTSNE.TSNE(perplexity=sec.perplexity, n_iter=sec.n_iter, early_exaggeration_iter=sec.early_exaggeration_iter,
                           initialization="pca", n_jobs=n_jobs, random_state=0).fit(Xr)
    t_fit = time.perf_counter() - t0
    Y = np.asarray(fitted)
    print(f"openTSNE fit {args.fit:,} x {args.dim}: {t_fit:.1f} s (map kNN agreement {knn_agreement(Y, lr_):.3f})")

    Yc = Y - (Y.max(0) + Y.min(0)) / 2
    t0 = time.perf_counter()
    emb = rebuild_embedding(Xr, Yc, n_jobs=n_jobs)
    t_rebuild = time.perf_counter() - t0
    t0 = time.perf_counter()
    Yn = np.asarray(emb.transform(Xn, **TRANSFORM_PARAMS))
    t_tr = time.perf_counter() - t0
    print(f"transform {args.new:,} new points, project path (rebuilt from stored arrays, exact kNN): {t_tr:.1f} s "
          f"+ {t_rebuild:.2f} s rebuild")
    t0 = time.perf_counter()
    Yo = np.asarray(fitted.transform(Xn, **TRANSFORM_PARAMS))
    t_tr_o = time.perf_counter() - t0
    # placement quality: the new point's nearest reference points in the map share its cluster
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=10).fit(Yc)
    agree = float((lr_[nn.kneighbors(Yn, return_distance=False)] == ln[:, None]).mean())
    print(f"  openTSNE's own fitted object: {t_tr_o:.1f} s (x{t_tr_o / t_tr:.2f} of the project path); "
          f"placed next to own cluster: {agree:.3f}")

    t0 = time.perf_counter()
    Ys = SkTSNE(perplexity=sec.perplexity, init="pca", random_state=0, n_jobs=n_jobs).fit_transform(Xn)
    t_sk = time.perf_counter() - t0
    t0 = time.perf_counter()
    Yo5 = np.asarray(openTSNE.TSNE(perplexity=sec.perplexity, n_iter=sec.n_iter, initialization="pca", n_jobs=n_jobs,
                                   random_state=0).fit(Xn))
    t_o5 = time.perf_counter() - t0
    print(f"scikit-learn TSNE fit_transform of the same {args.new:,} points: {t_sk:.1f} s "
          f"(kNN agreement {knn_agreement(Ys, ln):.3f})")
    print(f"  openTSNE fit of those {args.new:,} points alone: {t_o5:.1f} s (kNN agreement {knn_agreement(Yo5, ln):.3f})")
    print(f"ratios: sklearn fit / openTSNE transform = x{t_sk / t_tr:.2f}; sklearn fit / openTSNE fit (same points) = "
          f"x{t_sk / t_o5:.2f}")


if __name__ == "__main__":
    main()
