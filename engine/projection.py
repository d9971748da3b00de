"""Maps of a run's embeddings with openTSNE, cached in the store as data.

One map per (run, reference, parameters, method, seed). `[projection] method`
says how it is made (`METHODS`; measured in docs/BENCHMARKS.md):

- `tsne` (default): openTSNE is fitted on a sample of the reference faces
  (default the super-set's test split), at most `max_reference_points`,
  stratified by dataset x true class and spread over videos; every other
  face is placed into the same map with `TSNEEmbedding.transform`, in large
  batches over one process per core, so coordinates of different datasets
  are comparable.
- `tsne-full`: openTSNE fitted on every reference face (the FFT method);
  only faces outside the reference are transformed.
- `tsne-video`: fitted on per-video mean embeddings (a stratified sample of
  at most `max_reference_points` videos); every other video's mean is
  transformed and each face is drawn at its video's point.

Persisted as data, never pickled: the parameters (`projections`), the
reference faces and their fitted coordinates (`projection_points` with
`is_reference`; a video map stores every face of a reference video at the
video's point); their embeddings are in `embeddings`. `transform_into`
rebuilds the openTSNE embedding from exactly those rows — an exact
(brute-force, deterministic) neighbour index over the reference embeddings
(a video map: their per-video means) plus the stored coordinates — so an
unknown set analysed months later lands where the CLI would have put it. The
CLI's own transforms go through the same rebuild (`engine.placement`), so both
paths agree, whatever the batch size or number of worker processes.

A map remembers a fingerprint of its reference embeddings: `map_status`
tells the dashboard when they were re-made after the fit (the map is out of
date) or when embedded faces are not on it yet, and `project_run` refits or
places them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from data_catalog.errors import AtlasError

from .config import PROJECTION_METHODS, ProjectionSection
from .placement import TRANSFORM_PARAMS, Placer, worker_count
from .runs import read_run
from .store import Store, arrow_to_matrix
from .store import embeddings as embedding_table
from .store import projections as map_table

# What each method is, in the words the dashboard shows (`TSNEMap.describe`).
METHODS = {
    "tsne": "t-SNE fitted on a stratified sample of the reference faces, the others placed by transform",
    "tsne-full": "t-SNE fitted on every reference face",
    "tsne-video": "t-SNE fitted on per-video mean embeddings, each face drawn at its video's point",
}
assert tuple(METHODS) == PROJECTION_METHODS

WRITE_SLICE = 100_000      # points placed and written per store transaction (an interrupted run resumes there)
FINGERPRINT_ROWS = 20_000  # reference faces (the first by id) whose embeddings the map's fingerprint covers


def map_params(section: ProjectionSection) -> dict:
    """The parameters that define a map (its cache key); n_jobs is left out."""
    import openTSNE

    p = dataclasses.asdict(section)
    p.pop("n_jobs", None)
    p.pop("seed", None)
    p.pop("reference", None)
    if section.method == "tsne-full":
        p.pop("max_reference_points", None)  # not used: every reference face is fitted
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


# --- the reference sample ---------------------------------------------------------

def stratified_sample(strata: np.ndarray, n: int, seed: int, groups: np.ndarray | None = None) -> np.ndarray:
    """Sorted indices of `n` rows drawn without replacement, deterministic by `seed`.

    Each stratum (e.g. dataset x true class) gets its share of `n` (largest
    remainders; at least one row each while `n` allows), so a small class is
    represented as in the whole. Within a stratum rows are spread over their
    `groups` (videos): one row of every group before a second row of any.
    """
    strata = np.asarray(strata)
    total = len(strata)
    if n >= total:
        return np.arange(total)
    rng = np.random.default_rng(seed)
    _, code, counts = np.unique(strata, return_inverse=True, return_counts=True)
    quota = counts * n / total
    take = np.floor(quota).astype(np.int64)
    order = np.lexsort((np.arange(len(counts)), -(quota - take)))
    take[order[:n - take.sum()]] += 1
    for s in np.flatnonzero(take == 0)[:max(0, n - len(counts) + int((take == 0).sum()))]:
        take[np.argmax(take)] -= 1  # a stratum too small for its share still gets one row
        take[s] = 1
    # the order rows are taken in: rank within group (random), then a random group priority
    gcode = np.arange(total) if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1]
    u = rng.random(total)
    by_group = np.lexsort((u, gcode))
    starts = np.r_[0, np.flatnonzero(np.diff(gcode[by_group])) + 1]
    rank = np.empty(total, dtype=np.int64)
    rank[by_group] = np.arange(total) - np.repeat(starts, np.diff(np.r_[starts, total]))
    priority = rng.random(gcode.max() + 1)[gcode]
    chosen = []
    for s in range(len(counts)):
        rows = np.flatnonzero(code == s)
        order = np.lexsort((u[rows], priority[rows], rank[rows]))
        chosen.append(rows[order[:take[s]]])
    return np.sort(np.concatenate(chosen))


def _strata(t: pa.Table) -> np.ndarray:
    ds = t["dataset"].to_numpy(zero_copy_only=False).astype(object)
    cls = t["true_class"].fill_null("\x00unlabelled").to_numpy(zero_copy_only=False).astype(object)
    return ds + "\x1f" + cls


def video_means(video_ids, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(videos in sorted order, their mean embeddings [V, d] float32, each row's video index):
    the one way a video map averages faces, at fit, rebuild and placement alike."""
    videos, inverse = np.unique(np.asarray(video_ids, dtype=object).astype(str), return_inverse=True)
    sums = np.zeros((len(videos), X.shape[1]), dtype=np.float64)
    np.add.at(sums, inverse, X)
    means = (sums / np.bincount(inverse, minlength=len(videos))[:, None]).astype(np.float32)
    return videos, means, inverse


def fingerprint(X: np.ndarray) -> str:
    """A short hash of reference embeddings (rows in face-id order), to notice them being re-made."""
    return hashlib.sha256(np.ascontiguousarray(X, dtype=np.float32).tobytes()).hexdigest()[:16]


# --- the map object ----------------------------------------------------------

class TSNEMap:
    """A stored t-SNE map, as openTSNE's `TSNE.fit` returns a `TSNEEmbedding`.

    `TSNEMap.fit` fits it on a run's reference faces (or videos) and saves it as data;
    `TSNEMap.load` / `TSNEMap.latest` read it back; `transform` places new
    embeddings into it (rebuilt from the stored reference embeddings and
    coordinates, never a pickle); `place_missing` transforms every embedded
    face of the run that the map does not hold yet; `points` reads the map;
    `describe` says in words how it was made; `status` compares it with the
    run's embeddings now.
    """

    def __init__(self, projection_id: str, run_id: str, reference: list[str], params: dict, seed: int,
                 kl_divergence: float | None = None):
        self.projection_id = projection_id
        self.run_id = run_id
        self.reference = list(reference)
        self.params = dict(params)
        self.seed = int(seed)
        self.kl_divergence = kl_divergence
        self._stored = None  # (reference X, reference Y) as rebuilt from the store

    def __repr__(self) -> str:
        return f"TSNEMap({self.projection_id!r}, run={self.run_id!r}, method={self.method!r}, reference={self.reference})"

    @property
    def method(self) -> str:
        return self.params.get("method", "tsne")  # maps made before `method` existed are sample + transform

    @property
    def per_video(self) -> bool:
        return self.method == "tsne-video"

    def describe(self) -> str:
        """How the map was made, in one line for the dashboard (method, fitted points, reference)."""
        n = self.params.get("n_reference")
        unit = "videos" if self.per_video else "faces"
        of = self.params.get("n_candidates")
        fitted = f"{n:,} {unit}" if n is not None else f"the reference {unit}"
        if of is not None and n is not None and of > n:
            fitted += f" of {of:,}"
        how = METHODS.get(self.method, self.method) if "method" in self.params else \
            "t-SNE fitted on the reference faces, the others placed by transform"  # made before methods existed
        return f"{how} · fitted on {fitted} ({', '.join(self.reference)})"

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
        """Fit openTSNE on the run's reference faces (a stratified sample, all, or per-video means, by
        `section.method`) and save the map."""
        import openTSNE

        params = map_params(section)
        pid = projection_id(run_id, reference, params, section.seed)
        faces = embedding_table.embedded_faces(store, run_id, reference)
        if faces.num_rows < 4:
            raise AtlasError(f"run {run_id}: the reference set {', '.join(reference)} has {faces.num_rows} embedded "
                             "faces; too few for a map (set [projection] reference)")
        per_video = section.method == "tsne-video"
        if per_video:
            agg = faces.group_by(["video_id", "dataset"]).aggregate([("true_class", "min")])
            videos = pa.table({"video_id": agg["video_id"], "dataset": agg["dataset"],
                               "true_class": agg["true_class_min"]}).sort_by("video_id")
            n_candidates = videos.num_rows
            keep = stratified_sample(_strata(videos), section.max_reference_points, section.seed)
            faces = faces.filter(pc.is_in(faces["video_id"], value_set=videos["video_id"].take(pa.array(keep))))
        else:
            n_candidates = faces.num_rows
            if section.method == "tsne" and faces.num_rows > section.max_reference_points:
                keep = stratified_sample(_strata(faces), section.max_reference_points, section.seed,
                                         groups=faces["video_id"].to_numpy(zero_copy_only=False))
                faces = faces.take(pa.array(keep))
        t = embedding_table.face_embeddings(store, run_id, faces["face_id"].to_pylist())
        if not t["face_id"].equals(faces["face_id"]):  # both by face_id; a concurrent delete would show here
            raise AtlasError(f"run {run_id}: its embeddings changed while the map was being fitted; run it again")
        X_faces = arrow_to_matrix(t["embedding"])  # face_id order, as `faces`
        if per_video:
            _, X, inverse = video_means(faces["video_id"].to_numpy(zero_copy_only=False), X_faces)
        else:
            X, inverse = X_faces, None
        if len(X) < 4:
            raise AtlasError(f"run {run_id}: the reference set {', '.join(reference)} has {len(X)} videos; too few "
                             "for a per-video map (set [projection] method or reference)")
        perplexity = min(section.perplexity, (len(X) - 1) / 3)
        if stage:
            unit = "videos (per-video means)" if per_video else "reference faces"
            sampled = f" of {n_candidates:,}" if n_candidates > len(X) else ""
            stage(f"fitting t-SNE on {len(X):,}{sampled} {unit} ({', '.join(reference)})")
        t0, c0 = time.perf_counter(), time.process_time()
        tsne = openTSNE.TSNE(perplexity=perplexity, n_iter=section.n_iter,
                             early_exaggeration_iter=section.early_exaggeration_iter, metric=section.metric,
                             initialization="pca", n_jobs=worker_count(section.n_jobs), random_state=section.seed)
        fitted = tsne.fit(X)
        kl = float(fitted.kl_divergence) if fitted.kl_divergence is not None else None
        Y = np.asarray(fitted, dtype=np.float64)
        Y -= (Y.max(0) + Y.min(0)) / 2  # the centring transform() applies; stored as used
        face_Y = Y[inverse] if per_video else Y
        stored = params | {"fit_seconds": round(time.perf_counter() - t0, 2),
                           "fit_cpu_seconds": round(time.process_time() - c0, 2), "n_reference": len(X),
                           "n_candidates": int(n_candidates), "effective_perplexity": perplexity,
                           "reference_fingerprint": fingerprint(X_faces[:FINGERPRINT_ROWS])}
        map_table.write_map(store, pid, run_id, reference, stored, section.seed, kl,
                            map_table.points_table(pid, faces["dataset"].to_pylist(), faces["face_id"].to_pylist(),
                                                   face_Y, True))
        return cls(pid, run_id, reference, stored, section.seed, kl)

    # -- placing new points ------------------------------------------------------
    def _reference(self, store: Store) -> tuple[np.ndarray, np.ndarray]:
        """(reference embeddings, their coordinates) rebuilt from the store (per-video means for a video map)."""
        if self._stored is None:
            t = map_table.reference_points(store, self.projection_id, self.run_id)
            if t.num_rows == 0:
                raise AtlasError(f"projection {self.projection_id} has no stored reference points (or the run's "
                                 "embeddings were deleted); recompute it with `dfatlas project`")
            Y = np.column_stack([t["x"].to_numpy(), t["y"].to_numpy()])
            X = arrow_to_matrix(t["embedding"])
            if self.per_video:
                _, X, inverse = video_means(t["video_id"].to_numpy(zero_copy_only=False), X)
                first = np.unique(inverse, return_index=True)[1]
                Y = Y[first]  # every face of a reference video sits at the video's point
            self._stored = (X, Y)
        return self._stored

    @contextmanager
    def placer(self, store: Store, n_jobs: int = 0) -> Iterator[Placer]:
        """A `Placer` for this map (its worker processes end with the block)."""
        X, Y = self._reference(store)
        p = Placer(X, Y, self.params.get("metric", "euclidean"), self.seed, n_jobs)
        try:
            yield p
        finally:
            p.close()

    def transform(self, store: Store, embeddings, n_jobs: int = 0,
                  progress: Callable[[int, int], None] | None = None, video_ids=None,
                  placer: Placer | None = None) -> np.ndarray:
        """Coordinates [N, 2] of new embeddings in this map.

        On a per-video map, faces with the same entry of `video_ids` are placed together at the
        transform of their mean embedding (as `dfatlas project` places a run's faces); without
        `video_ids` each face is a video of its own.
        """
        X = np.asarray(embeddings, dtype=np.float32)
        if placer is None:
            with self.placer(store, n_jobs) as p:
                return self.transform(store, X, n_jobs, progress, video_ids, p)
        if X.ndim != 2 or X.shape[1] != placer.dim:
            raise AtlasError(f"embeddings of shape {X.shape} do not fit projection {self.projection_id} "
                             f"({placer.dim}-d reference embeddings)")
        if len(X) == 0:
            return np.zeros((0, 2))
        if self.per_video:
            if video_ids is None:
                video_ids = np.arange(len(X)).astype(str)
            _, means, inverse = video_means(video_ids, X)
            return placer.place(means, progress)[inverse]
        return placer.place(X, progress)

    def place_missing(self, store: Store, n_jobs: int = 0,
                      progress: Callable[[int, int], None] | None = None) -> int:
        """Transform every embedded face of the run that the map does not hold; returns how many.

        Written `WRITE_SLICE` faces (whole videos on a video map) at a time, so an interrupted run
        keeps what it placed."""
        counts = embedding_table.embedding_counts(store, self.run_id)
        have = map_table.placed_counts(store, self.projection_id)
        todo = [d for d, n in counts.items() if have.get(d, 0) < n]
        total = int(sum(counts[d] - have.get(d, 0) for d in todo))
        if not todo:
            return 0
        done = 0
        with self.placer(store, n_jobs) as placer:
            for d in todo:
                t = embedding_table.unplaced_embeddings(store, self.run_id, self.projection_id, d)
                X = arrow_to_matrix(t["embedding"])
                vids = t["video_id"].to_numpy(zero_copy_only=False)
                for rows in _slices(vids, WRITE_SLICE, whole_groups=self.per_video):
                    base = done
                    Y = self.transform(store, X[rows], n_jobs,
                                       (lambda k, n, b=base: progress(b + round(k * len(rows) / n), total))
                                       if progress else None, vids[rows], placer)
                    done += len(rows)
                    map_table.write_points(store, map_table.points_table(
                        self.projection_id, d, t["face_id"].take(pa.array(rows)).to_pylist(), Y, False))
        return done

    # -- state -------------------------------------------------------------------
    def status(self, store: Store) -> dict:
        """How the map stands against the run's embeddings now: `reference_changed` (its reference
        embeddings were re-made or deleted after the fit: refit), `unplaced` ({dataset: embedded faces
        not on it yet}: place them), `orphaned` (points whose embedding is gone); plus `method` and
        `describe`."""
        saved = self.params.get("reference_fingerprint")
        changed = False
        if saved is not None:
            n_ref = map_table.reference_count(store, self.projection_id)
            t = map_table.reference_points(store, self.projection_id, self.run_id, limit=FINGERPRINT_ROWS)
            X = arrow_to_matrix(t["embedding"]) if t.num_rows else np.zeros((0, 0), np.float32)
            changed = t.num_rows < min(n_ref, FINGERPRINT_ROWS) or fingerprint(X) != saved
        return {"projection_id": self.projection_id, "method": self.method, "describe": self.describe(),
                "reference_changed": bool(changed),
                "unplaced": map_table.unplaced_counts(store, self.projection_id, self.run_id),
                "orphaned": map_table.orphaned_count(store, self.projection_id, self.run_id)}


def _slices(groups: np.ndarray, size: int, whole_groups: bool) -> Iterator[np.ndarray]:
    """Row index arrays of about `size` rows each; with `whole_groups`, no group is split between two."""
    n = len(groups)
    if not whole_groups:
        for s in range(0, n, size):
            yield np.arange(s, min(s + size, n))
        return
    order = np.argsort(groups, kind="stable")
    g = groups[order]
    bounds = np.r_[0, np.flatnonzero(g[1:] != g[:-1]) + 1, n]
    s = 0
    while s < n:
        e = bounds[np.searchsorted(bounds, min(s + size, n))]
        yield np.sort(order[s:e])
        s = e


def transform_into(store: Store, projection_id: str, embeddings, n_jobs: int = 0,
                   progress: Callable[[int, int], None] | None = None, video_ids=None) -> np.ndarray:
    """Coordinates [N, 2] of new embeddings in a stored map (rebuilt from the store, no pickle).

    `video_ids` (one per row) matter on a per-video map only: give them and the set lands where
    `dfatlas project` would put it (each video at the transform of its faces' mean)."""
    return TSNEMap.load(store, projection_id).transform(store, embeddings, n_jobs, progress, video_ids)


def map_status(store: Store, run_id: str) -> dict | None:
    """The run's latest map against its embeddings now (`TSNEMap.status`), or None without a map."""
    tsne_map = TSNEMap.latest(store, run_id)
    return None if tsne_map is None else tsne_map.status(store)


# --- the project job ---------------------------------------------------------

def _section(cfg) -> ProjectionSection:
    return cfg.projection if hasattr(cfg, "projection") else (cfg or ProjectionSection())


def project_run(store: Store, run_id: str, cfg=None, progress: Callable[[int, int], None] | None = None,
                stage: Callable[[str], None] | None = None) -> str:
    """Fit (or reuse) the run's map and place every embedded face in it; returns the projection id.

    `cfg`: the experiment config or its [projection] section. Same key ->
    cache hit: only faces not yet placed are transformed. A cached map whose
    reference embeddings were re-made since its fit is fitted again; points
    whose embedding was deleted are dropped.
    """
    sec = _section(cfg)
    run = read_run(store, run_id)
    reference = reference_datasets(sec.reference, list(run.superset))
    if not embedding_table.embedding_counts(store, run_id):
        raise AtlasError(f"run {run_id} has no embeddings yet: run `dfatlas embed --config CONFIG --run {run_id}` first")
    pid = projection_id(run_id, reference, map_params(sec), sec.seed)
    tsne_map = TSNEMap.load(store, pid) if map_table.map_row(store, pid) is not None else None
    status = tsne_map.status(store) if tsne_map is not None else None
    if status and status["reference_changed"]:
        if stage:
            stage(f"the embeddings of map {pid} were re-made after it was fitted: fitting it again")
        map_table.delete_map(store, pid)
        tsne_map = None
    elif status and status["orphaned"]:
        map_table.delete_orphaned(store, pid, run_id)  # their faces' embeddings were deleted
    if tsne_map is None:
        tsne_map = TSNEMap.fit(store, run_id, sec, reference, stage)
    if stage:
        stage(f"placing the other faces ({tsne_map.method}, {worker_count(sec.n_jobs)} processes)")
    tsne_map.place_missing(store, sec.n_jobs, progress)
    return pid
