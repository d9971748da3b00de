"""engine.projection: cached openTSNE maps persisted as data; transform from the stored map."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers.atlas_fixtures import build_store
from data_catalog.errors import AtlasError
from engine.config import ProjectionSection
from engine.projection import TSNEMap, project_run, reference_datasets, transform_into
from engine.store import arrow_to_matrix

SEC = ProjectionSection(n_iter=60, early_exaggeration_iter=30, n_jobs=1, max_reference_points=40, perplexity=10)


@pytest.fixture
def store_run(workspace):
    runs = build_store(workspace, approaches=("triplet",), per_class=4, frames=2)
    return workspace.store(), runs["triplet"]


def test_fit_once_then_cache_hit(store_run):
    store, rid = store_run
    pid = project_run(store, rid, SEC)
    n_emb = store.scalar("SELECT count(*) FROM embeddings WHERE run_id = ?", [rid])
    pts = TSNEMap.load(store, pid).points(store)
    assert len(pts) == n_emb and pts.face_id.is_unique
    ref = pts[pts.is_reference]
    assert len(ref) == 40 and set(ref.dataset) <= {"dba/test", "dbb/test"}  # subsampled super-set test split
    created = store.scalar("SELECT created_at FROM projections WHERE projection_id = ?", [pid])
    assert project_run(store, rid, SEC) == pid
    assert store.scalar("SELECT count(*) FROM projections") == 1
    assert store.scalar("SELECT created_at FROM projections WHERE projection_id = ?", [pid]) == created
    assert np.allclose(TSNEMap.load(store, pid).points(store)[["x", "y"]].to_numpy(), pts[["x", "y"]].to_numpy())
    other = project_run(store, rid, ProjectionSection(**{**SEC.__dict__, "perplexity": 5}))
    assert other != pid and store.scalar("SELECT count(*) FROM projections") == 2


def test_transform_into_reproduces_stored_points(store_run):
    store, rid = store_run
    pid = project_run(store, rid, SEC)
    t = store.arrow("SELECT face_id, embedding FROM embeddings WHERE run_id = ? AND dataset = 'dbx/test' "
                    "ORDER BY face_id", [rid])
    Y = transform_into(store, pid, arrow_to_matrix(t["embedding"]))
    pts = TSNEMap.load(store, pid).points(store, ["dbx/test"]).set_index("face_id").loc[t["face_id"].to_pylist()]
    assert np.allclose(Y, pts[["x", "y"]].to_numpy(), atol=1e-6)
    # placed near the reference map, not shot off
    ref = TSNEMap.load(store, pid).points(store)
    span = np.ptp(ref[["x", "y"]].to_numpy(), axis=0).max()
    assert np.abs(Y).max() < 2 * span


def test_new_dataset_is_added_without_refit(store_run):
    store, rid = store_run
    pid = project_run(store, rid, SEC)
    store.execute("DELETE FROM projection_points WHERE projection_id = ? AND dataset = 'dby/test'", [pid])
    assert project_run(store, rid, SEC) == pid
    assert store.scalar("SELECT count(*) FROM projection_points WHERE dataset = 'dby/test'") > 0


def test_errors(store_run):
    store, rid = store_run
    with pytest.raises(AtlasError, match="unknown projection"):
        transform_into(store, "tsne-nope", np.zeros((1, 8)))
    pid = project_run(store, rid, SEC)
    with pytest.raises(AtlasError, match="do not fit"):
        transform_into(store, pid, np.zeros((3, 5)))
    assert reference_datasets("superset/test", ["a", "b"]) == ["a/test", "b/test"]
    assert reference_datasets("x/val, unknown/y", ["a"]) == ["x/val", "unknown/y"]


def test_cli_classify_and_project(workspace, tmp_path, capsys):
    from engine.cli import main

    runs = build_store(workspace, approaches=("binary", "triplet"), per_class=3, frames=2)
    cfg = tmp_path / "exp.toml"
    cfg.write_text("""
[experiment]
synthetic = true
[sources]
superset = ["dba", "dbb"]
cross_db = ["dbx", "dby"]
[sources.dba]
adapter = "generic"
root = "dba"
[sources.dbb]
adapter = "generic"
root = "dbb"
[sources.dbx]
adapter = "generic"
root = "dbx"
[sources.dby]
adapter = "generic"
root = "dby"
[classifiers]
enabled = ["knn"]
knn_k = 3
cv_folds = 3
[projection]
n_iter = 50
early_exaggeration_iter = 25
perplexity = 5
n_jobs = 1
""")
    ws = ["--config", str(cfg), "--workspace", str(workspace.root)]
    assert main(["classify", *ws, "--run", runs["triplet"]]) == 0
    assert "knn" in capsys.readouterr().out
    assert main(["classify", *ws, "--run", runs["binary"]]) == 2
    assert "native" in capsys.readouterr().err
    assert main(["project", *ws, "--run", runs["triplet"]]) == 0
    out = capsys.readouterr().out
    assert "tsne-" in out
    n = workspace.store().scalar("SELECT count(*) FROM embeddings WHERE run_id = ?", [runs["triplet"]])
    assert str(n) in out
    assert main(["project", *ws, "--run", "nope"]) == 2
    assert "unknown run id" in capsys.readouterr().err


# --- methods, parallel placement, staleness ------------------------------------------------------

FAST = dict(n_iter=60, early_exaggeration_iter=30, n_jobs=1, perplexity=5)


def _set(store, rid, dataset):
    """face_id, video_id, embedding of one dataset's faces, by face_id."""
    t = store.arrow("SELECT e.face_id, f.video_id, e.embedding FROM embeddings e JOIN faces f USING (face_id) "
                    "WHERE e.run_id = ? AND e.dataset = ? ORDER BY e.face_id", [rid, dataset])
    return t["face_id"].to_pylist(), t["video_id"].to_numpy(zero_copy_only=False), arrow_to_matrix(t["embedding"])


@pytest.mark.parametrize("method", ["tsne", "tsne-full", "tsne-video"])
def test_each_method_is_stored_as_data_and_transform_reproduces_it(store_run, method):
    store, rid = store_run
    pid = project_run(store, rid, ProjectionSection(method=method, max_reference_points=30, **FAST))
    m = TSNEMap.load(store, pid)
    assert m.method == method and m.params["method"] == method
    pts = m.points(store)
    assert len(pts) == store.scalar("SELECT count(*) FROM embeddings WHERE run_id = ?", [rid])
    ref = pts[pts.is_reference]
    n_test = store.scalar("SELECT count(*) FROM embeddings WHERE run_id = ? AND dataset IN ('dba/test', 'dbb/test')",
                          [rid])
    video = pts.face_id.str.split("#").str[0]
    if method == "tsne":
        assert len(ref) == 30 and m.params["n_candidates"] == n_test
    elif method == "tsne-full":
        assert len(ref) == n_test == m.params["n_reference"]
    else:  # every face of a video at its video's point; 24 test videos <= 30: all fitted
        assert m.params["n_reference"] == 24 and len(ref) == n_test
        assert (pts.groupby(video)[["x", "y"]].agg(np.ptp).to_numpy() == 0).all()
    assert "fitted on" in m.describe() and "dba/test" in m.describe()
    face_ids, vids, X = _set(store, rid, "dbx/test")
    Y = transform_into(store, pid, X, video_ids=vids)  # rebuilt from the store alone
    stored = pts.set_index("face_id").loc[face_ids][["x", "y"]].to_numpy()
    assert np.allclose(Y, stored, atol=1e-6)


def test_methods_are_part_of_the_cache_key(store_run):
    store, rid = store_run
    ids = {project_run(store, rid, ProjectionSection(method=m, max_reference_points=30, **FAST))
           for m in ("tsne", "tsne-video")}
    assert len(ids) == 2 and store.scalar("SELECT count(*) FROM projections") == 2


def test_parallel_placement_gives_the_same_points(store_run, monkeypatch):
    """Worker processes (small batches) and one process place every point identically."""
    import engine.placement as placement

    store, rid = store_run
    pid = project_run(store, rid, SEC)
    X = np.concatenate([_set(store, rid, d)[2] for d in ("dbx/test", "dby/test")])
    one = transform_into(store, pid, X, n_jobs=1)
    monkeypatch.setattr(placement, "PARALLEL_MIN", 8)
    monkeypatch.setattr(placement, "TRANSFORM_BATCH", 7)
    progress = []
    pooled = transform_into(store, pid, X, n_jobs=2, progress=lambda d, t: progress.append((d, t)))
    assert np.allclose(one, pooled, atol=1e-9)
    assert progress[-1] == (len(X), len(X)) and len(progress) == -(-len(X) // 7)


def test_stratified_sample_keeps_every_stratum_and_spreads_over_videos():
    from engine.projection import stratified_sample

    strata = np.array(["a"] * 900 + ["b"] * 90 + ["c"] * 10)
    videos = np.repeat(np.arange(100), 10)  # ten faces per video
    keep = stratified_sample(strata, 100, seed=3, groups=videos)
    assert len(keep) == 100 and len(np.unique(keep)) == 100
    assert list(np.unique(strata[keep], return_counts=True)[1]) == [90, 9, 1]  # proportional
    assert len(np.unique(videos[keep[strata[keep] == "a"]])) == 90  # one face per video before a second
    assert np.array_equal(keep, stratified_sample(strata, 100, seed=3, groups=videos))
    assert not np.array_equal(keep, stratified_sample(strata, 100, seed=4, groups=videos))
    tiny = stratified_sample(np.array(["a"] * 50 + ["b"]), 5, seed=0)
    assert "b" in np.array(["a"] * 50 + ["b"])[tiny]  # a one-face class still gets its face
    assert np.array_equal(stratified_sample(strata, 5000, seed=0), np.arange(1000))


def test_a_map_older_than_its_embeddings_is_noticed_and_refitted(store_run):
    from engine.projection import map_status
    from engine.store.embeddings import embeddings_table, write_embeddings

    store, rid = store_run
    assert map_status(store, rid) is None  # a run without a map
    pid = project_run(store, rid, SEC)
    st = map_status(store, rid)
    assert st["projection_id"] == pid and not st["reference_changed"] and st["unplaced"] == {}
    assert st["orphaned"] == 0 and st["method"] == "tsne"
    before = TSNEMap.load(store, pid).points(store).set_index("face_id")
    # the run's embeddings are made again (same faces, new values) after the map
    t = store.arrow("SELECT face_id, dataset, embedding FROM embeddings WHERE run_id = ? ORDER BY face_id", [rid])
    write_embeddings(store, embeddings_table(rid, t["face_id"].to_pylist(), t["dataset"].to_pylist(),
                                             arrow_to_matrix(t["embedding"])[:, ::-1] * 2))
    assert map_status(store, rid)["reference_changed"]
    stages = []
    assert project_run(store, rid, SEC, stage=stages.append) == pid  # same key: fitted again in place
    assert any("re-made" in s for s in stages)
    assert not map_status(store, rid)["reference_changed"]
    after = TSNEMap.load(store, pid).points(store).set_index("face_id").loc[before.index]
    assert not np.allclose(after[["x", "y"]].to_numpy(), before[["x", "y"]].to_numpy())
    # faces embedded after the map: counted per dataset, then placed by the next `project`
    store.execute("DELETE FROM projection_points WHERE projection_id = ? AND dataset = 'dby/test'", [pid])
    n_dby = store.scalar("SELECT count(*) FROM embeddings WHERE run_id = ? AND dataset = 'dby/test'", [rid])
    assert map_status(store, rid)["unplaced"] == {"dby/test": n_dby}
    project_run(store, rid, SEC)
    assert map_status(store, rid)["unplaced"] == {}
    # embeddings deleted under the map
    store.execute("DELETE FROM embeddings WHERE run_id = ? AND dataset = 'dbx/test'", [rid])
    assert map_status(store, rid)["orphaned"] > 0
    project_run(store, rid, SEC)
    assert map_status(store, rid)["orphaned"] == 0 and not map_status(store, rid)["reference_changed"]
