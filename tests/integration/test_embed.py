"""engine.embed with a stand-in model (same interface as engine.models.InferenceModel)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.helpers.atlas_fixtures import CLASSES, build_store
from data_catalog.errors import AtlasError
from engine.approaches import get_approach
from engine.embed import embed_run


def native_predictions(approach, probs, real_score):
    return get_approach(approach).native_predictions(probs, real_score)
from engine.store import arrow_to_matrix


class StubModel:
    """Embedding = mean colour per channel; attribution probs from it; counts calls."""

    def __init__(self, approach: str):
        self.approach = approach
        self.input_size = 8
        self.calls = 0

    def predict(self, images, batch_size: int = 256):
        self.calls += 1
        x = images.reshape(len(images), -1, 3).mean(1).astype(np.float32) / 255
        emb = np.concatenate([x, x ** 2], 1)
        if self.approach in ("triplet", "arcfacemod"):
            return {"embedding": emb, "probs": None, "real_score": None}
        if self.approach == "binary":
            p = x[:, :1]
            probs = np.concatenate([p, 1 - p], 1)
        else:
            logits = np.concatenate([x, x[:, :1]], 1) * 5
            probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        return {"embedding": emb, "probs": probs, "real_score": probs[:, 0].copy()}


def _crops(ws):
    paths = ws.store().df("SELECT crop_path FROM faces ORDER BY crop_path").crop_path
    rng = np.random.default_rng(0)
    for p in paths:
        f = ws.root / p
        f.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(f), rng.integers(0, 255, (8, 8, 3), dtype=np.uint8))


@pytest.mark.parametrize("approach", ["attribution", "binary", "triplet"])
def test_embed_stores_embeddings_and_native_predictions_and_resumes(workspace, approach):
    runs = build_store(workspace, approaches=(approach,), per_class=2, frames=2, embed=False)
    _crops(workspace)
    rid = runs[approach]
    store = workspace.store()
    model = StubModel(approach)
    res = embed_run(workspace, rid, ["dba", "dbb", "dbx"], model=model, chunk=10)
    n = store.scalar("SELECT count(*) FROM faces f JOIN videos v USING (video_id) WHERE v.database <> 'dby'")
    assert res["embedded"] == n and res["dim"] == 6
    t = store.arrow("SELECT embedding FROM embeddings WHERE run_id = ?", [rid])
    assert arrow_to_matrix(t["embedding"]).shape == (n, 6)
    preds = store.df("SELECT pred_class, real_score, probs FROM predictions WHERE run_id = ? AND classifier = 'native'", [rid])
    if approach == "triplet":
        assert preds.empty
    else:
        assert len(preds) == n
        if approach == "binary":
            assert set(preds.pred_class) <= {0, -1} and preds.probs.isna().all()
            assert ((preds.pred_class == 0) == (preds.real_score >= 0.5)).all()
        else:
            assert len(preds.probs.iloc[0]) == len(CLASSES)
    calls = model.calls
    again = embed_run(workspace, rid, ["dba", "dbb", "dbx"], model=model)
    assert again["embedded"] == 0 and model.calls == calls  # resumed: nothing recomputed
    more = embed_run(workspace, rid, ["dba", "dbb", "dbx", "dby"], model=model)
    assert more["embedded"] == store.scalar("SELECT count(*) FROM faces WHERE video_id LIKE 'dby/%'")


def test_native_predictions_rules():
    b = native_predictions("binary", np.array([[0.5, 0.5], [0.2, 0.8]]), np.array([0.5, 0.2]))
    assert b["pred_class"].tolist() == [0, -1] and b["probs"] is None
    a = native_predictions("attribution", np.array([[0.1, 0.7, 0.2]]), None)
    assert a["pred_class"].tolist() == [1] and a["real_score"].tolist() == pytest.approx([0.1])
    assert native_predictions("triplet", None, None) is None


def test_unknown_run_and_missing_crops(workspace):
    runs = build_store(workspace, approaches=("triplet",), per_class=1, frames=1, embed=False)
    with pytest.raises(AtlasError, match="unknown run id"):
        embed_run(workspace, "nope", ["dba"], model=StubModel("triplet"))
    with pytest.raises(AtlasError, match="missing or unreadable"):
        embed_run(workspace, runs["triplet"], ["dba"], model=StubModel("triplet"))
