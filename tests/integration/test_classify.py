"""engine.classify on a tiny store: out-of-fold validation scores, caching, refits, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.helpers.atlas_fixtures import build_store
from data_catalog.errors import AtlasError
from engine.classify import (_cv, apply_to_embeddings, classify_run, fit_classifier, load_val, predict_with)
from engine.config import ClassifiersSection
from engine.store import arrow_to_matrix

CFG = ClassifiersSection(enabled=("knn", "lr"), knn_k=3, cv_folds=3)


@pytest.fixture
def store_runs(workspace):
    runs = build_store(workspace, approaches=("binary", "triplet"), per_class=6, frames=2, noise=2.0)
    return workspace.store(), runs


def test_validation_predictions_are_out_of_fold(store_runs):
    store, runs = store_runs
    rid = runs["triplet"]
    classify_run(store, rid, ClassifiersSection(enabled=("knn",), knn_k=1, cv_folds=3))
    val = load_val(store, rid)
    df = store.df("SELECT face_id, pred_class, out_of_fold FROM predictions WHERE run_id = ? AND classifier = 'knn' "
                  "AND dataset LIKE '%/val' ORDER BY face_id", [rid])
    assert len(df) == len(val.y) and df.out_of_fold.all()
    # a 1-NN scored in-sample is always right; out-of-fold it is not
    est = fit_classifier(store, rid, "knn", val=val)
    assert (est.predict(val.X) == val.y).all()
    oof_acc = (df.pred_class.to_numpy() == val.y).mean()
    assert oof_acc < 1.0
    test = store.df("SELECT out_of_fold FROM predictions WHERE run_id = ? AND dataset LIKE '%/test'", [rid])
    assert len(test) and not test.out_of_fold.any()


def test_folds_never_split_an_identity_or_a_video(store_runs):
    store, runs = store_runs
    val = load_val(store, runs["triplet"])
    ident = store.df("SELECT video_id, identity FROM videos").set_index("video_id").identity
    for tr, te in _cv(val, 3, 0).split(val.X, val.y, val.groups):
        assert not set(val.groups[tr]) & set(val.groups[te])
        assert not set(val.videos[tr]) & set(val.videos[te])
        assert not set(ident[val.videos[tr]]) & set(ident[val.videos[te]])


def test_identity_groups_join_an_ff_pairs_reals_and_fakes():
    from engine.classify import identity_groups

    # FF++ style: originals 000 and 003, fakes 000_003 and 003_000 (identity = target, sources = both);
    # a DeeperForensics fake of target 000 with actor M101; an unrelated video 010; one with no identity
    vids = ["ff/000", "ff/003", "ff/000_003", "ff/003_000", "dfr/000_M101", "ff/010", "gen/x"]
    ident = ["000", "003", "000", "003", "000", "010", None]
    srcs = [None, None, ["000", "003"], ["003", "000"], ["000", "M101"], None, None]
    g = identity_groups(vids, ident, srcs)
    assert len(set(g[:5])) == 1 and g[5] != g[0] and g[6] not in (g[0], g[5])
    # rows are faces: two faces of one video share its group
    g2 = identity_groups(["a", "a", "b"], [None, None, None], [None, None, None])
    assert g2[0] == g2[1] != g2[2]


def test_too_few_validation_groups_is_a_clear_message(workspace):
    from engine.classify import ValSplit, fold_count

    y = np.array([0, 0, 1, 1])
    val = ValSplit(np.zeros((4, 2)), y, np.array([0, 0, 1, 2]), ["a", "b", "c", "d"], ["d/val"] * 4, 2,
                   np.array(["v0", "v0", "v1", "v2"], dtype=object))
    with pytest.raises(AtlasError, match="1 real and 2 fake identity group"):
        fold_count(val, 5)
    val.groups = np.array([0, 3, 1, 2])
    assert fold_count(val, 5) == (2, "2-fold instead of 5-fold out-of-fold scores: the validation split has "
                                     "2 real and 2 fake identity groups")


def test_cache_refit_and_stored_params(store_runs):
    store, runs = store_runs
    rid = runs["triplet"]
    first = classify_run(store, rid, CFG)
    assert {s["status"] for s in first} == {"fitted"}
    n_emb = store.scalar("SELECT count(*) FROM embeddings WHERE run_id = ?", [rid])
    assert store.scalar("SELECT count(*) FROM predictions WHERE run_id = ? AND classifier = 'lr'", [rid]) == n_emb
    again = classify_run(store, rid, CFG)
    assert {s["status"] for s in again} == {"cached"}
    changed = classify_run(store, rid, ClassifiersSection(enabled=("lr",), lr_c=1.0, cv_folds=3))
    assert changed[0]["status"] == "fitted" and changed[0]["params"] == {"C": 1.0}
    rec = json.loads(store.scalar("SELECT params_json FROM classifiers WHERE run_id = ? AND classifier = 'lr'", [rid]))
    assert rec["params"] == {"C": 1.0}


def test_refit_from_store_reproduces_stored_test_predictions(store_runs):
    store, runs = store_runs
    rid = runs["triplet"]
    classify_run(store, rid, CFG)
    t = store.arrow("SELECT e.embedding, p.real_score, p.pred_class FROM embeddings e JOIN predictions p "
                    "ON p.run_id = e.run_id AND p.face_id = e.face_id AND p.classifier = 'knn' "
                    "WHERE e.run_id = ? AND e.dataset = 'dbx/test' ORDER BY e.face_id", [rid])
    X = arrow_to_matrix(t["embedding"])
    out = apply_to_embeddings(store, rid, X)
    assert set(out) == {"knn", "lr"}
    assert np.allclose(out["knn"]["real_score"], t["real_score"].to_numpy())
    assert (out["knn"]["pred_class"] == t["pred_class"].to_numpy()).all()
    # kNN real-score is the share of real neighbours among k = 3
    assert set(np.round(out["knn"]["real_score"] * 3, 6)) <= {0.0, 1.0, 2.0, 3.0}
    assert out["lr"]["probs"].shape == (len(X), 4)
    assert np.allclose(out["lr"]["probs"].sum(1), 1, atol=1e-5)


def test_model_selection_uses_validation_cv(store_runs):
    store, runs = store_runs
    rid = runs["triplet"]
    cfg = ClassifiersSection(enabled=("knn",), model_selection=True, knn_k_grid=(1, 5, 9), cv_folds=3)
    s = classify_run(store, rid, cfg)[0]
    assert s["params"]["k"] in (1, 5, 9)
    sel = json.loads(store.scalar("SELECT selection_json FROM classifiers WHERE run_id = ? AND classifier = 'knn'", [rid]))
    assert [r["params"]["k"] for r in sel] == [1, 5, 9]
    best = max(sel, key=lambda r: r["mean_auc"])
    assert s["params"] == best["params"]


def test_clear_errors(workspace):
    runs = build_store(workspace, approaches=("binary", "triplet"), per_class=3, frames=1, embed=False)
    store = workspace.store()
    with pytest.raises(AtlasError, match="binary run"):
        classify_run(store, runs["binary"], CFG)
    with pytest.raises(AtlasError, match="no embeddings yet"):
        classify_run(store, runs["triplet"], CFG)
    with pytest.raises(AtlasError, match="unknown run id 'nope'"):
        classify_run(store, "nope", CFG)
    with pytest.raises(AtlasError, match="no fitted classifiers"):
        apply_to_embeddings(store, runs["triplet"], np.zeros((2, 8), np.float32))


def test_predict_with_maps_columns_to_run_classes(store_runs):
    from sklearn.neighbors import KNeighborsClassifier

    est = KNeighborsClassifier(1).fit(np.array([[0.0], [1.0]]), np.array([0, 3]))
    out = predict_with(est, np.array([[0.1], [0.9]]), 4)
    assert out["probs"].tolist() == [[1, 0, 0, 0], [0, 0, 0, 1]]
    assert out["pred_class"].tolist() == [0, 3] and out["real_score"].tolist() == [1.0, 0.0]
