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
from .runs import read_run
from .store import Store, arrow_to_matrix
from .store import embeddings as embedding_table
from .store import projections as map_table

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


# --- the map object ----------------------------------------------------------

class TSNEMap:
    """A stored t-SNE map, as openTSNE's `TSNE.fit` returns a `TSNEEmbedding`.

    `TSNEMap.fit` fits it on a run's reference faces and saves it as data;
    `TSNEMap.load` / `TSNEMap.latest` read it back; `transform` places new
    embeddings into it (rebuilt from the stored reference embeddings and
    coordinates, never a pickle); `place_missing` transforms every embedded
    face of the run that the map does not hold yet; `points` reads the map.
    """

    def __init__(self, projection_id: str, run_id: str, reference: list[str], params: dict, seed: int,
                 kl_divergence: float | None = None):
        self.projection_id = projection_id
        self.run_id = run_id
        self.reference = list(reference)
        self.params = dict(params)
        self.seed = int(seed)
        self.kl_divergence = kl_divergence
        self._embedding = None  # the rebuilt openTSNE embedding, on first transform

    def __repr__(self) -> str:
        return f"TSNEMap({self.projection_id!r}, run={self.run_id!r}, reference={self.reference})"

    # -- reading ---------------------------------------------------------------
    @classmethod
    def load(cls, store: Store, projection_id: str) -> "TSNEMap":
        row = map_table.map_row(store, projection_id)
        if row is None:
            raise AtlasError(f"unknown projection {projection_id!r}: run `dfatlas project --config CONFIG` first")
        return cls(projection_id, row["run_id"], row["reference"], row["params"], row["seed"], row["kl_divergence"])

    @classmethod
    def latest(cls, store: Store, run_id: str) -> "TSNEMap | None":
        """The run's most recent map (the one the dashboard shows), or None."""
        pid = map_table.latest_projection_id(store, run_id)
        return None if pid is None else cls.load(store, pid)

    def points(self, store: Store, datasets=None):
        """face_id, dataset, x, y, is_reference as a DataFrame (of `datasets` when given)."""
        return map_table.point_rows(store, self.projection_id, datasets)

    def n_points(self, store: Store) -> int:
        return sum(map_table.placed_counts(store, self.projection_id).values())

    # -- fitting ---------------------------------------------------------------
    @classmethod
    def fit(cls, store: Store, run_id: str, section: ProjectionSection, reference: list[str],
            stage: Callable[[str], None] | None = None) -> "TSNEMap":
        """Fit openTSNE on the run's reference faces (subsampled deterministically) and save the map."""
        import openTSNE

        params = map_params(section)
        pid = projection_id(run_id, reference, params, section.seed)
        t = embedding_table.dataset_embeddings(store, run_id, reference)
        if t.num_rows < 4:
            raise AtlasError(f"run {run_id}: the reference set {', '.join(reference)} has {t.num_rows} embedded faces; "
                             "too few for a map (set [projection] reference)")
        if t.num_rows > section.max_reference_points:
            keep = np.sort(np.random.default_rng(section.seed).choice(t.num_rows, section.max_reference_points,
                                                                      replace=False))
            t = t.take(pa.array(keep))
        X = arrow_to_matrix(t["embedding"])
        perplexity = min(section.perplexity, (len(X) - 1) / 3)
        if stage:
            stage(f"fitting t-SNE on {len(X)} reference faces ({', '.join(reference)})")
        t0 = time.perf_counter()
        tsne = openTSNE.TSNE(perplexity=perplexity, n_iter=section.n_iter,
                             early_exaggeration_iter=section.early_exaggeration_iter, metric=section.metric,
                             initialization="pca", n_jobs=_n_jobs(section.n_jobs), random_state=section.seed)
        fitted = tsne.fit(X)
        kl = float(fitted.kl_divergence) if fitted.kl_divergence is not None else None
        Y = np.asarray(fitted, dtype=np.float64)
        Y -= (Y.max(0) + Y.min(0)) / 2  # the centring transform() applies; stored as used
        stored = params | {"fit_seconds": round(time.perf_counter() - t0, 2), "n_reference": len(X),
                           "effective_perplexity": perplexity}
        map_table.write_map(store, pid, run_id, reference, stored, section.seed, kl,
                            map_table.points_table(pid, t["dataset"].to_pylist(), t["face_id"].to_pylist(), Y, True))
        return cls(pid, run_id, reference, stored, section.seed, kl)

    # -- placing new points ------------------------------------------------------
    def _rebuilt(self, store: Store, n_jobs: int):
        if self._embedding is None:
            t = map_table.reference_points(store, self.projection_id, self.run_id)
            if t.num_rows == 0:
                raise AtlasError(f"projection {self.projection_id} has no stored reference points (or the run's "
                                 "embeddings were deleted); recompute it with `dfatlas project`")
            Y = np.column_stack([t["x"].to_numpy(), t["y"].to_numpy()])
            self._embedding = rebuild_embedding(arrow_to_matrix(t["embedding"]), Y,
                                                self.params.get("metric", "euclidean"), _n_jobs(n_jobs), self.seed)
        return self._embedding

    def transform(self, store: Store, embeddings, n_jobs: int = 0,
                  progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Coordinates [N, 2] of new embeddings in this map."""
        X = np.asarray(embeddings, dtype=np.float32)
        emb = self._rebuilt(store, n_jobs)
        d = emb.affinities.reference.shape[1]
        if X.ndim != 2 or X.shape[1] != d:
            raise AtlasError(f"embeddings of shape {X.shape} do not fit projection {self.projection_id} "
                             f"({d}-d reference embeddings)")
        if len(X) == 0:
            return np.zeros((0, 2))
        return _transform(emb, X, progress)

    def place_missing(self, store: Store, n_jobs: int = 0,
                      progress: Callable[[int, int], None] | None = None) -> int:
        """Transform every embedded face of the run that the map does not hold; returns how many."""
        counts = embedding_table.embedding_counts(store, self.run_id)
        have = map_table.placed_counts(store, self.projection_id)
        todo = [d for d, n in counts.items() if have.get(d, 0) < n]
        total = int(sum(counts[d] - have.get(d, 0) for d in todo))
        done = 0
        for d in todo:
            t = embedding_table.unplaced_embeddings(store, self.run_id, self.projection_id, d)
            base = done
            Y = self.transform(store, arrow_to_matrix(t["embedding"]), n_jobs,
                               (lambda k, _n, b=base: progress(b + k, total)) if progress else None)
            done += len(Y)
            map_table.write_points(store, map_table.points_table(self.projection_id, d, t["face_id"].to_pylist(), Y,
                                                                 False))
        return done


def transform_into(store: Store, projection_id: str, embeddings, n_jobs: int = 0,
                   progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Coordinates [N, 2] of new embeddings in a stored map (rebuilt from the store, no pickle)."""
    return TSNEMap.load(store, projection_id).transform(store, embeddings, n_jobs, progress)


# --- the project job ---------------------------------------------------------

def _section(cfg) -> ProjectionSection:
    return cfg.projection if hasattr(cfg, "projection") else (cfg or ProjectionSection())


def project_run(store: Store, run_id: str, cfg=None, progress: Callable[[int, int], None] | None = None,
                stage: Callable[[str], None] | None = None) -> str:
    """Fit (or reuse) the run's map and place every embedded face in it; returns the projection id.

    `cfg`: the experiment config or its [projection] section. Same key ->
    cache hit: only faces not yet placed are transformed.
    """
    sec = _section(cfg)
    run = read_run(store, run_id)
    reference = reference_datasets(sec.reference, list(run.superset))
    if not embedding_table.embedding_counts(store, run_id):
        raise AtlasError(f"run {run_id} has no embeddings yet: run `dfatlas embed --config CONFIG --run {run_id}` first")
    pid = projection_id(run_id, reference, map_params(sec), sec.seed)
    if map_table.map_row(store, pid) is None:
        tsne_map = TSNEMap.fit(store, run_id, sec, reference, stage)
    else:
        tsne_map = TSNEMap.load(store, pid)
    tsne_map.place_missing(store, sec.n_jobs, progress)
    return pid
