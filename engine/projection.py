"""t-SNE maps of a run's embeddings with openTSNE, cached in the store as data.

One map per (run, reference, parameters, seed): openTSNE is fitted once on
the reference set (default the super-set's test split, subsampled
deterministically to `max_reference_points`), then every other face of the
run is placed into the same map with `TSNEEmbedding.transform`, so
coordinates of different datasets are comparable.

Persisted as data, never pickled: the parameters (`projections`), the
reference faces and their fitted coordinates (`projection_points` with
`is_reference`); their embeddings are in `embeddings`. `transform_into`
rebuilds the openTSNE embedding from exactly those rows — an exact
(brute-force, deterministic) neighbour index over the reference embeddings
plus the stored coordinates — so an unknown set analysed months later lands
where the CLI would have put it. The CLI's own transforms go through the
same rebuild, so both paths agree.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from typing import Callable

import numpy as np
import pyarrow as pa

from data_catalog.errors import AtlasError

from .config import ProjectionSection
from .store import Store, arrow_to_matrix

# openTSNE's recommended settings for adding points to an existing map
TRANSFORM_PARAMS = {"perplexity": 5, "k": 25, "learning_rate": 0.1, "early_exaggeration": 4,
                    "early_exaggeration_iter": 0, "exaggeration": 1.5, "n_iter": 250}


def _n_jobs(n: int) -> int:
    return n if n > 0 else (os.cpu_count() or 1)


def map_params(section: ProjectionSection) -> dict:
    """The parameters that define a map (its cache key); n_jobs is left out."""
    import openTSNE

    p = dataclasses.asdict(section)
    p.pop("n_jobs", None)
    p.pop("seed", None)
    p.pop("reference", None)
    p["initialization"] = "pca"
    p["transform"] = TRANSFORM_PARAMS
    p["opentsne"] = openTSNE.__version__
    return p


def reference_datasets(spec: str, superset: list[str]) -> list[str]:
    """'superset/test' -> every super-set database's test split; else a comma list of datasets."""
    out = []
    for part in (s.strip() for s in spec.split(",") if s.strip()):
        if part.startswith("superset/"):
            out.extend(f"{db}/{part.split('/', 1)[1]}" for db in superset)
        else:
            out.append(part)
    if not out:
        raise AtlasError(f"[projection] reference {spec!r} names no dataset")
    return out


def projection_id(run_id: str, reference: list[str], params: dict, seed: int) -> str:
    blob = json.dumps({"run": run_id, "reference": sorted(reference), "params": params, "seed": seed}, sort_keys=True)
    return "tsne-" + hashlib.sha256(blob.encode()).hexdigest()[:12]


# --- the rebuilt embedding ---------------------------------------------------

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


def _transform(emb, X: np.ndarray, progress: Callable[[int, int], None] | None = None, chunk: int = 2000) -> np.ndarray:
    """Place `X` into `emb`; each point is optimised against the reference only, so chunking changes nothing."""
    n = len(X)
    out = np.zeros((n, 2), dtype=np.float64)
    for s in range(0, n, chunk):
        part = emb.transform(np.asarray(X[s:s + chunk], dtype=np.float32), **TRANSFORM_PARAMS)
        out[s:s + chunk] = np.asarray(part)
        if progress:
            progress(min(s + chunk, n), n)
    return out


def _load_reference(store: Store, pid: str) -> tuple[np.ndarray, np.ndarray, dict]:
    row = store.df("SELECT run_id, params_json, seed FROM projections WHERE projection_id = ?", [pid])
    if row.empty:
        raise AtlasError(f"unknown projection {pid!r}: run `dfatlas project --config CONFIG` first")
    run_id = row.run_id.iloc[0]
    t = store.arrow("""
        SELECT pp.face_id, pp.x, pp.y, e.embedding FROM projection_points pp
        JOIN embeddings e ON e.face_id = pp.face_id AND e.run_id = ?
        WHERE pp.projection_id = ? AND pp.is_reference ORDER BY pp.face_id""", [run_id, pid])
    if t.num_rows == 0:
        raise AtlasError(f"projection {pid} has no stored reference points (or the run's embeddings were deleted); "
                         "recompute it with `dfatlas project`")
    Y = np.column_stack([t["x"].to_numpy(), t["y"].to_numpy()])
    params = json.loads(row.params_json.iloc[0]) | {"seed": int(row.seed.iloc[0]), "run_id": run_id}
    return arrow_to_matrix(t["embedding"]), Y, params


def transform_into(store: Store, projection_id: str, embeddings, n_jobs: int = 0,
                   progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Coordinates [N, 2] of new embeddings in a stored map (rebuilt from the store, no pickle)."""
    X_ref, Y_ref, params = _load_reference(store, projection_id)
    X = np.asarray(embeddings, dtype=np.float32)
    if X.ndim != 2 or X.shape[1] != X_ref.shape[1]:
        raise AtlasError(f"embeddings of shape {X.shape} do not fit projection {projection_id} "
                         f"({X_ref.shape[1]}-d reference embeddings)")
    if len(X) == 0:
        return np.zeros((0, 2))
    emb = rebuild_embedding(X_ref, Y_ref, params.get("metric", "euclidean"), _n_jobs(n_jobs), params["seed"])
    return _transform(emb, X, progress)


# --- the project job ---------------------------------------------------------

def _section(cfg) -> ProjectionSection:
    return cfg.projection if hasattr(cfg, "projection") else (cfg or ProjectionSection())


def project_run(store: Store, run_id: str, cfg=None, progress: Callable[[int, int], None] | None = None,
                stage: Callable[[str], None] | None = None) -> str:
    """Fit (or reuse) the run's map and place every embedded face in it; returns the projection id.

    `cfg`: the experiment config or its [projection] section. Same key ->
    cache hit: only faces not yet placed are transformed.
    """
    import openTSNE

    from .classify import run_row, superset_of

    sec = _section(cfg)
    run = run_row(store, run_id)
    ref_sets = reference_datasets(sec.reference, superset_of(store, run))
    params = map_params(sec)
    pid = projection_id(run_id, ref_sets, params, sec.seed)
    n_jobs = _n_jobs(sec.n_jobs)
    counts = store.df("SELECT dataset, count(*) AS n FROM embeddings WHERE run_id = ? GROUP BY 1 ORDER BY 1", [run_id])
    if counts.empty:
        raise AtlasError(f"run {run_id} has no embeddings yet: run `dfatlas embed --config CONFIG --run {run_id}` first")
    exists = store.scalar("SELECT count(*) FROM projections WHERE projection_id = ?", [pid])
    if not exists:
        t = store.arrow("SELECT face_id, dataset, embedding FROM embeddings WHERE run_id = ? AND dataset IN "
                        "(SELECT unnest(?)) ORDER BY face_id", [run_id, ref_sets])
        if t.num_rows < 4:
            raise AtlasError(f"run {run_id}: the reference set {', '.join(ref_sets)} has {t.num_rows} embedded faces; "
                             "too few for a map (set [projection] reference)")
        n = t.num_rows
        if n > sec.max_reference_points:
            keep = np.sort(np.random.default_rng(sec.seed).choice(n, sec.max_reference_points, replace=False))
            t = t.take(pa.array(keep))
        X = arrow_to_matrix(t["embedding"])
        perplexity = min(sec.perplexity, (len(X) - 1) / 3)
        if stage:
            stage(f"fitting t-SNE on {len(X)} reference faces ({', '.join(ref_sets)})")
        t0 = time.perf_counter()
        tsne = openTSNE.TSNE(perplexity=perplexity, n_iter=sec.n_iter, early_exaggeration_iter=sec.early_exaggeration_iter,
                             metric=sec.metric, initialization="pca", n_jobs=n_jobs, random_state=sec.seed)
        fitted = tsne.fit(X)
        kl = float(fitted.kl_divergence) if fitted.kl_divergence is not None else None
        Y = np.asarray(fitted, dtype=np.float64)
        Y -= (Y.max(0) + Y.min(0)) / 2  # the centring transform() applies; stored as used
        fit_s = time.perf_counter() - t0
        pts = pa.table({"projection_id": [pid] * len(X), "dataset": t["dataset"], "face_id": t["face_id"],
                        "x": Y[:, 0], "y": Y[:, 1], "is_reference": [True] * len(X)})
        with store.transaction() as con:
            con.execute("INSERT INTO projections (projection_id, run_id, reference, params_json, seed, kl_divergence) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        [pid, run_id, ",".join(ref_sets), json.dumps(params | {"fit_seconds": round(fit_s, 2),
                                                                                "n_reference": len(X),
                                                                                "effective_perplexity": perplexity},
                                                                       sort_keys=True), sec.seed, kl])
            store.insert("projection_points", pts, con=con)
    # place every embedded face that the map does not hold yet, dataset by dataset
    placed = store.df("SELECT dataset, count(*) AS n FROM projection_points WHERE projection_id = ? GROUP BY 1", [pid])
    have = dict(zip(placed.dataset, placed.n))
    todo = [d for d, n in zip(counts.dataset, counts.n) if have.get(d, 0) < n]
    if not todo:
        return pid
    total = int(sum(n - have.get(d, 0) for d, n in zip(counts.dataset, counts.n) if d in todo))
    X_ref, Y_ref, stored = _load_reference(store, pid)
    emb = rebuild_embedding(X_ref, Y_ref, stored.get("metric", "euclidean"), n_jobs, stored["seed"])
    done = 0
    for d in todo:
        t = store.arrow("""SELECT e.face_id, e.embedding FROM embeddings e WHERE e.run_id = ? AND e.dataset = ?
                           AND NOT EXISTS (SELECT 1 FROM projection_points pp WHERE pp.projection_id = ?
                                           AND pp.face_id = e.face_id) ORDER BY e.face_id""", [run_id, d, pid])
        X = arrow_to_matrix(t["embedding"])
        base = done
        Y = _transform(emb, X, (lambda k, _n, b=base: progress(b + k, total)) if progress else None)
        done += len(X)
        with store.transaction() as con:
            store.insert("projection_points", pa.table({
                "projection_id": [pid] * len(X), "dataset": [d] * len(X), "face_id": t["face_id"],
                "x": Y[:, 0], "y": Y[:, 1], "is_reference": [False] * len(X)}), replace=True, con=con)
    return pid


def projection_points(store: Store, projection_id: str, datasets=None):
    """The map's points (face_id, dataset, x, y, is_reference) as a DataFrame."""
    if datasets:
        return store.df("SELECT face_id, dataset, x, y, is_reference FROM projection_points WHERE projection_id = ? "
                        "AND dataset IN (SELECT unnest(?)) ORDER BY face_id", [projection_id, list(datasets)])
    return store.df("SELECT face_id, dataset, x, y, is_reference FROM projection_points WHERE projection_id = ? "
                    "ORDER BY face_id", [projection_id])
