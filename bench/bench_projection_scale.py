"""Projections at scale: time, peak memory and neighbourhood preservation of each `[projection] method`.

    .venv/bin/python bench/bench_projection_scale.py --sizes 100000 300000 1000000 [--full-max 300000]
        [--methods tsne tsne-full tsne-video] [--n-jobs 2] [--query 10000] [--workspace /tmp/dfatlas-bench-proj]

For each size a store is built with testkit.scale_store (through the engine's own writers: ten classes in
clusters with sub-clusters, 15 frames per video, 64-d unit embeddings, a cross-database set of unseen
fakes and an unlabelled set; kept under --workspace and reused). Each method then runs
`engine.projection.project_run` on it — the map's reference is every dataset, so `tsne-full` is openTSNE
fitted on ALL points — in a fresh process: wall and CPU time (workers included), the fit / placement split,
and peak resident memory (the main process; and it with its workers, sampled every 0.2 s).

Neighbourhood preservation: for `--query` faces drawn once per size, the share of each face's 10 nearest
neighbours in the 64-d embedding space (exact, among all faces) that are also among its 10 nearest on the
2-D map (k=10 overlap); the same for videos (mean embedding vs. mean map position); and the same within the
query sample alone (neighbours among those 10,000 faces only, in both spaces: a figure that does not fall
as N grows, so sizes compare). At the smallest size `tsne-full` is the yardstick ("vs full"). On a
per-video map a video's faces share one point, so their face-level neighbours are ties broken arbitrarily
(mostly the video's own faces, which are also their embedding neighbours): read its video-level figure.
`--score-only` scores every map already in the stores without running a projection.

Today's path (before this benchmark: transform in chunks of 2,000 with openTSNE's threads) is timed on
--legacy points of the `tsne` map against the current placement on the same points, in the same process,
and the two placements are compared point by point. A method is run at a size only up to --full-max for
`tsne-full` (its fit is extrapolated linearly in N beyond: a lower bound, the kNN step grows as N log N).
Every timing line carries the load average; on a shared machine read the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REFERENCE = "big-a/test,big-x/test,unknown/mystery"  # every dataset of testkit.scale_store: the map covers all faces


def _load() -> str:
    return "load {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def _store_path(ws: Path, n: int) -> Path:
    return ws / f"faces-{n}"


def ensure_store(ws: Path, n: int) -> tuple[Path, float]:
    """The scale store of `n` faces with 64-d embeddings (built once; seconds spent building)."""
    from testkit.scale_store import build_scale_store

    root = _store_path(ws, n)
    done = root / "BUILT"
    if done.exists():
        return root / "atlas.duckdb", 0.0
    if root.exists():
        import shutil

        shutil.rmtree(root)
    t0 = time.perf_counter()
    path = build_scale_store(root, n, embedding_dim=64)
    done.write_text("ok\n")
    return path, time.perf_counter() - t0


def _section(method: str, n_jobs: int):
    from engine.config import ProjectionSection

    name, _, sample = method.partition(":")
    kw = {"max_reference_points": int(sample)} if sample else {}
    return ProjectionSection(method=name, reference=REFERENCE, n_jobs=n_jobs, **kw)


# --- one method in a fresh process -------------------------------------------------------

def child(store_path: str, method: str, n_jobs: int) -> None:
    from engine.projection import TSNEMap, project_run
    from engine.store import Store
    from testkit.scale_store import RUN_ID

    store = Store(Path(store_path))
    marks = []
    peak = _PeakRSS()
    t0, c0 = time.perf_counter(), time.process_time()
    pid = project_run(store, RUN_ID, _section(method, n_jobs),
                      stage=lambda msg: marks.append((time.perf_counter() - t0, time.process_time() - c0, msg)))
    wall = time.perf_counter() - t0
    peak.stop()
    ru_self, ru_kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time() - c0 + ru_kids.ru_utime + ru_kids.ru_stime
    m = TSNEMap.load(store, pid)
    place_wall, place_cpu = next(((wall - w, cpu - c) for w, c, msg in marks if msg.startswith("placing")), (0, 0))
    print(json.dumps({"projection_id": pid, "wall_s": wall, "cpu_s": cpu, "fit_s": m.params.get("fit_seconds"),
                      "fit_cpu_s": m.params.get("fit_cpu_seconds"), "place_s": place_wall, "place_cpu_s": place_cpu,
                      "n_reference": m.params.get("n_reference"), "peak_main_mb": ru_self.ru_maxrss / 1024,
                      "peak_total_mb": max(peak.total, ru_self.ru_maxrss * 1024) / 2**20,
                      "load": os.getloadavg()[0]}))


class _PeakRSS:
    """The largest resident memory of this process and its worker processes together, sampled every
    0.2 s (a child's own ru_maxrss would count the parent's pages it shared between fork and exec)."""

    def __init__(self):
        import threading

        import psutil

        self.total, self._stop = 0, threading.Event()
        me = psutil.Process()

        def sample():
            while not self._stop.wait(0.2):
                try:
                    procs = [me, *me.children(recursive=True)]
                    self.total = max(self.total, sum(p.memory_info().rss for p in procs if p.is_running()))
                except psutil.Error:
                    pass

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def run_method(store_path: Path, method: str, n_jobs: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, __file__, "--child", str(store_path), method, str(n_jobs)],
                         capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{method} on {store_path} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- neighbourhood preservation ------------------------------------------------------------

class Truth:
    """The embedding-space neighbours of the query faces and videos of one store (computed once)."""

    def __init__(self, store_path: Path, n_query: int, k: int = 10, seed: int = 0):
        from sklearn.neighbors import NearestNeighbors

        from engine.projection import video_means
        from engine.store import Store, arrow_to_matrix
        from engine.store.embeddings import dataset_embeddings
        from testkit.scale_store import RUN_ID

        store = Store(store_path)
        t = dataset_embeddings(store, RUN_ID, REFERENCE.split(","), labelled=True)  # every face, by face_id
        self.face_ids = t["face_id"].to_numpy(zero_copy_only=False)
        X = arrow_to_matrix(t["embedding"])
        self.k = k
        rng = np.random.default_rng(seed)
        self.q = np.sort(rng.choice(len(X), min(n_query, len(X)), replace=False))
        self.nn = NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X[self.q], return_distance=False)[:, 1:]
        self.videos, V, self.video_of = video_means(t["video_id"].to_numpy(zero_copy_only=False), X)
        self.vq = np.sort(rng.choice(len(V), min(n_query, len(V)), replace=False))
        self.vnn = NearestNeighbors(n_neighbors=k + 1).fit(V).kneighbors(V[self.vq], return_distance=False)[:, 1:]
        # the same neighbours within the query sample alone: a figure that does not shrink as N grows
        Xq = X[self.q]
        self.snn = NearestNeighbors(n_neighbors=k + 1).fit(Xq).kneighbors(Xq, return_distance=False)[:, 1:]

    @staticmethod
    def _overlap(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.mean([len(np.intersect1d(x, y, assume_unique=True)) / a.shape[1] for x, y in zip(a, b)]))

    def score(self, store_path: Path, projection_id: str) -> dict:
        from sklearn.neighbors import NearestNeighbors

        from engine.store import Store
        from engine.store.projections import point_rows

        pts = point_rows(Store(store_path), projection_id)  # by face_id
        if len(pts) != len(self.face_ids) or not np.array_equal(pts.face_id.to_numpy(dtype=object), self.face_ids):
            raise SystemExit(f"map {projection_id} does not hold every face ({len(pts)} of {len(self.face_ids)})")
        Y = pts[["x", "y"]].to_numpy()
        # a point's own row is excluded; ties (a per-video map's faces) are broken by the tree
        got = NearestNeighbors(n_neighbors=self.k + 1).fit(Y).kneighbors(Y[self.q], return_distance=False)
        got = np.array([[j for j in row if j != i][:self.k] for i, row in zip(self.q, got)])
        VY = np.zeros((len(self.videos), 2))
        np.add.at(VY, self.video_of, Y)
        VY /= np.bincount(self.video_of)[:, None]
        vgot = NearestNeighbors(n_neighbors=self.k + 1).fit(VY).kneighbors(VY[self.vq], return_distance=False)
        vgot = np.array([[j for j in row if j != i][:self.k] for i, row in zip(self.vq, vgot)])
        Yq = Y[self.q]
        sgot = NearestNeighbors(n_neighbors=self.k + 1).fit(Yq).kneighbors(Yq, return_distance=False)
        sgot = np.array([[j for j in row if j != i][:self.k] for i, row in enumerate(sgot)])
        return {"face_knn": self._overlap(self.nn, got), "video_knn": self._overlap(self.vnn, vgot),
                "sample_knn": self._overlap(self.snn, sgot)}


# --- today's path against the current one ----------------------------------------------------

def legacy_compare(store_path: Path, projection_id: str, n: int, n_jobs: int) -> dict:
    """Place `n` faces of the map twice: as before (openTSNE threads, chunks of 2,000) and as now."""
    from engine.placement import _transform, rebuild_embedding, worker_count
    from engine.projection import TSNEMap
    from engine.store import Store, arrow_to_matrix
    from engine.store.embeddings import face_embeddings
    from testkit.scale_store import RUN_ID

    store = Store(store_path)
    m = TSNEMap.load(store, projection_id)
    placed = m.points(store)
    faces = placed.face_id[~placed.is_reference].to_numpy()[:n]
    X = arrow_to_matrix(face_embeddings(store, RUN_ID, faces)["embedding"]) if len(faces) else np.zeros((0, 0))
    if not len(X):
        return None
    RX, RY = m._reference(store)
    old = rebuild_embedding(RX, RY, m.params.get("metric", "euclidean"), worker_count(n_jobs), m.seed)
    t0, c0 = time.perf_counter(), time.process_time()
    Y_old = _transform(old, X, batch=2000)
    legacy = (time.perf_counter() - t0, time.process_time() - c0, os.getloadavg()[0])
    t0 = time.perf_counter()
    with m.placer(store, n_jobs) as p:
        Y_new = p.place(X)
    new = (time.perf_counter() - t0, os.getloadavg()[0])
    span = float(np.ptp(RY, axis=0).max())
    d = np.linalg.norm(Y_old - Y_new, axis=1)
    return {"n": len(X), "legacy_s": legacy[0], "legacy_cpu_s": legacy[1], "legacy_load": legacy[2],
            "new_s": new[0], "new_load": new[1], "max_shift_pct_of_span": 100 * float(d.max()) / span,
            "median_shift_pct_of_span": 100 * float(np.median(d)) / span}


def score_only(ws: Path, sizes: list[int], n_query: int) -> None:
    """Neighbourhood preservation of every map in the stores (no projection is run)."""
    from engine.store import Store
    from engine.store.projections import map_overview

    print("| faces | map | method (sample) | kNN@10 face | kNN@10 video | kNN@10 within the query sample |")
    print("|---|---|---|---|---|---|")
    for n in sorted(sizes):
        path = _store_path(ws, n) / "atlas.duckdb"
        truth = Truth(path, n_query)
        for _, row in map_overview(Store(path)).iterrows():
            params = json.loads(row.params_json)
            if "method" not in params:
                continue  # the scale store's drawn map
            r = truth.score(path, row.projection_id)
            print(f"| {n:,} | {row.projection_id} | {params['method']} ({params.get('n_reference'):,}) | "
                  f"{r['face_knn']:.3f} | {r['video_knn']:.3f} | {r['sample_knn']:.3f} |", flush=True)


# --- the report -------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    ap.add_argument("--methods", nargs="+", default=["tsne", "tsne-full", "tsne-video"],
                    help="[projection] method names; 'tsne:50000' sets max_reference_points")
    ap.add_argument("--full-max", type=int, default=300_000, help="largest size tsne-full runs at")
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--query", type=int, default=10_000)
    ap.add_argument("--legacy", type=int, default=20_000, help="faces placed by today's path and the new one")
    ap.add_argument("--workspace", default="/tmp/dfatlas-bench-proj")
    ap.add_argument("--score-only", action="store_true", help="score every map already in the stores of --sizes")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return
    if args.score_only:
        score_only(Path(args.workspace), args.sizes, args.query)
        return
    ws = Path(args.workspace)
    print(f"bench_projection_scale: sizes {args.sizes}, methods {args.methods}, n_jobs {args.n_jobs}, "
          f"cpus {os.cpu_count()}, {_load()}", flush=True)
    rows, baseline = [], None
    for n in sorted(args.sizes):
        path, built = ensure_store(ws, n)
        print(f"\n== {n:,} faces (store {'built in %.0f s' % built if built else 'reused'}; {_load()})", flush=True)
        truth = Truth(path, args.query)
        for method in args.methods:
            if method.startswith("tsne-full") and n > args.full_max:
                continue
            r = run_method(path, method, args.n_jobs)
            r.update(truth.score(path, r["projection_id"]), n=n, method=method)
            if method.startswith("tsne-full") and baseline is None:
                baseline = r
            rows.append(r)
            print(f"{method:>12}: {r['wall_s']:7.1f} s wall, {r['cpu_s']:.0f} s cpu (fit {r['fit_s']:.1f} s wall / "
                  f"{r['fit_cpu_s']:.1f} s cpu on {r['n_reference']:,}; place {r['place_s']:.1f} s wall / "
                  f"{r['place_cpu_s']:.1f} s cpu), peak {r['peak_main_mb']:.0f} MB "
                  f"(with workers {r['peak_total_mb']:.0f} MB), kNN@10 face {r['face_knn']:.3f} "
                  f"video {r['video_knn']:.3f} within-sample {r['sample_knn']:.3f}; load {r['load']:.1f}", flush=True)
            if method.partition(":")[0] == "tsne" and args.legacy:
                c = r["legacy"] = legacy_compare(path, r["projection_id"], args.legacy, args.n_jobs)
                if c:
                    print(f"{'':>12}  today's path on {c['n']:,} faces: {c['legacy_s']:.1f} s (load {c['legacy_load']:.1f}) "
                      f"vs now {c['new_s']:.1f} s (load {c['new_load']:.1f}): x{c['legacy_s'] / c['new_s']:.1f}; "
                      f"placement shift max {c['max_shift_pct_of_span']:.2e} % of the map's span", flush=True)
    print("\n| faces | method | wall s | cpu s | fit s (wall / cpu) | place s (wall / cpu) | peak MB (main / with workers) "
          "| kNN@10 face | kNN@10 video | kNN@10 within sample | vs full (face / video / within) | load |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        vs = (f"{r['face_knn'] / baseline['face_knn']:.2f} / {r['video_knn'] / baseline['video_knn']:.2f} / "
              f"{r['sample_knn'] / baseline['sample_knn']:.2f}" if baseline else "–")
        print(f"| {r['n']:,} | {r['method']} | {r['wall_s']:.0f} | {r['cpu_s']:.0f} | {r['fit_s']:.0f} / "
              f"{r['fit_cpu_s']:.0f} | {r['place_s']:.0f} / {r['place_cpu_s']:.0f} | "
              f"{r['peak_main_mb']:.0f} / {r['peak_total_mb']:.0f} | {r['face_knn']:.3f} | {r['video_knn']:.3f} | "
              f"{r['sample_knn']:.3f} | {vs} | {r['load']:.1f} |")
    # extrapolation to the largest size asked for, from the largest measured size of each method
    top = max(args.sizes)
    print(f"\nExtrapolated to {top:,} faces (linear in N from the largest measured size; same load):")
    for method in args.methods:
        have = [r for r in rows if r["method"] == method]
        if not have:
            continue
        r = max(have, key=lambda r: r["n"])
        if r["n"] == top:
            print(f"  {method}: measured {r['wall_s']:.0f} s")
            continue
        if method.startswith("tsne-full"):
            est = r["wall_s"] * top / r["n"]
        else:  # the fit's sample is capped: a fixed fit, the rest (placement, reading, writing) linear in N
            est = r["fit_s"] + (r["wall_s"] - r["fit_s"]) * top / r["n"]
        print(f"  {method}: about {est:.0f} s ({est / 60:.1f} min) from {r['n']:,}")
        legacy = r.get("legacy")
        if legacy:
            print(f"  today's path: about {legacy['legacy_s'] / legacy['n'] * top / 60:.1f} min of placement alone")


if __name__ == "__main__":
    main()
