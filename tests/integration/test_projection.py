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
