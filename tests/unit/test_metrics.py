"""engine.metrics against hand-computed cases (DESIGN.md "Metrics — read this twice")."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from data_catalog.errors import AtlasError
from engine.metrics import (
    Metrics, attribution_accuracy, confusion_matrix, evaluate, evaluate_at, far_threshold, per_class_fpr,
    video_level,
)


def bob_far_threshold(negatives, far_value):
    """A line-by-line port of bob.measure's loop, as the reference."""
    scores = np.flip(np.sort(np.asarray(negatives, dtype=float)))
    total = len(scores)
    pos = 0
    valid = np.nextafter(scores[0], scores[0] + 1)
    while pos < total:
        cur = scores[pos]
        while pos < total - 1 and scores[pos + 1] == cur:
            pos += 1
        if (pos + 1) / total > far_value:
            break
        valid = cur
        pos += 1
    return valid


def test_far_threshold_hand_cases():
    fakes = np.arange(10) / 10  # 0.0 .. 0.9
    assert far_threshold(fakes, 0.10) == 0.9          # 1 of 10 fakes >= 0.9: 10 % <= 10 %
    assert far_threshold(fakes, 0.20) == 0.8
    assert far_threshold(fakes, 0.15) == 0.9          # 2 of 10 at 0.8 would be 20 %
    # ties at the top: 2 of 20 fakes share the highest score -> exactly 10 %
    assert far_threshold([0.9, 0.9] + [0.1] * 18, 0.10) == 0.9
    # ... 3 of 20 tied is 15 %: no fake score qualifies -> next float above the top
    t = far_threshold([0.9, 0.9, 0.9] + [0.1] * 17, 0.10)
    assert t == np.nextafter(0.9, np.inf) and t > 0.9


def test_far_threshold_next_float_case():
    t = far_threshold([0.3, 0.7], 0.10)  # one fake alone is 50 %
    assert t == np.nextafter(0.7, np.inf)
    m = evaluate_at(t, [0.7, 0.7], [True, False])
    assert m.fpr == 0.0          # the fake at the top score is rejected
    assert m.fnr == 1.0          # and so is a real at exactly that score


def test_far_threshold_matches_bob_loop_on_random_ties():
    rng = np.random.default_rng(3)
    for _ in range(200):
        n = int(rng.integers(2, 60))
        fakes = np.round(rng.random(n), 1)  # many ties
        far = float(rng.choice([0.0, 0.05, 0.1, 0.25, 0.5, 0.99]))
        assert far_threshold(fakes, far) == bob_far_threshold(fakes, far)


def test_evaluate_hand_computed_with_ties_at_threshold():
    val_scores = np.r_[np.arange(10) / 10, [0.95, 0.99]]
    val_real = np.r_[np.zeros(10, bool), [True, True]]
    test_real = np.array([0.95, 0.9, 0.5, 0.99])
    test_fake = np.array([0.96, 0.1, 0.2, 0.3, 0.9])
    scores = np.r_[test_real, test_fake]
    is_real = np.r_[np.ones(4, bool), np.zeros(5, bool)]
    m = evaluate(val_scores, val_real, scores, is_real, target_fpr=0.10)
    assert isinstance(m, Metrics)
    assert m.threshold == 0.9
    assert m.fnr == pytest.approx(1 / 4)      # only the real at 0.5 is rejected; 0.9 == θ is accepted
    assert m.fpr == pytest.approx(2 / 5)      # fakes at 0.96 and at exactly θ are accepted
    assert m.hter == pytest.approx((0.25 + 0.4) / 2)
    # AUC by pair counting: 15.5 of 20 real-fake pairs ordered right (one tie counts 1/2)
    assert m.auc == pytest.approx(15.5 / 20)
    assert (m.n_real, m.n_fake) == (4, 5)


def test_real_is_the_positive_class():
    val = [0.1, 0.2, 0.3, 0.8, 0.9]
    val_real = [False, False, False, True, True]
    good = evaluate(val, val_real, [0.9, 0.8, 0.1, 0.2], [True, True, False, False])
    assert good.auc == 1.0 and good.hter == 0.0
    flipped = evaluate(val, val_real, [0.1, 0.2, 0.9, 0.8], [True, True, False, False])
    assert flipped.auc == 0.0
    assert flipped.fpr == 1.0 and flipped.fnr == 1.0  # fakes accepted, reals rejected


def test_missing_class_gives_note_not_crash():
    m = evaluate([0.1, 0.9], [False, True], [0.2, 0.3], [False, False])
    assert m.auc is None and "no real samples" in m.note
    assert m.fpr == 1.0 and math.isnan(m.fnr) and math.isnan(m.hter)  # θ just above the one val fake 0.1
    m = evaluate([0.1, 0.9], [False, True], [0.2, 0.3], [True, True])
    assert m.auc is None and "no fake samples" in m.note and m.fnr == 0.0 and math.isnan(m.fpr)
    with pytest.raises(AtlasError, match="no fake"):
        evaluate([0.9], [True], [0.2], [True])
    with pytest.raises(AtlasError, match="NaN"):
        evaluate([0.1, np.nan], [False, True], [0.2], [True])


def test_bootstrap_intervals_are_seeded_and_bracket_the_estimate():
    rng = np.random.default_rng(0)
    is_real = rng.random(300) < 0.4
    scores = rng.normal(is_real.astype(float), 1.0)
    m1 = evaluate_at(0.5, scores, is_real, bootstrap=300, seed=1)
    m2 = evaluate_at(0.5, scores, is_real, bootstrap=300, seed=1)
    assert m1.auc_ci == m2.auc_ci and m1.hter_ci == m2.hter_ci
    assert m1.auc_ci[0] < m1.auc < m1.auc_ci[1]
    assert m1.hter_ci[0] < m1.hter < m1.hter_ci[1]
    assert 0 < m1.auc_ci[1] - m1.auc_ci[0] < 0.3
    # grouped resampling at frame level: a group of identical frames widens nothing but runs
    groups = np.repeat(np.arange(100), 3)
    m3 = evaluate_at(0.5, scores, is_real, bootstrap=200, seed=1, test_groups=groups)
    assert m3.auc_ci[0] <= m3.auc <= m3.auc_ci[1]


def test_video_level_mean_majority_and_ties():
    vids = ["a", "a", "a", "b", "b", "c", "c"]
    scores = [0.2, 0.4, 0.9, 0.6, 0.8, 0.1, 0.3]
    preds = [2, 2, 0, 1, 3, 0, -1]
    probs = np.array([
        [0.1, 0.2, 0.7, 0.0], [0.2, 0.1, 0.7, 0.0], [0.9, 0.0, 0.1, 0.0],
        [0.0, 0.4, 0.0, 0.6], [0.0, 0.4, 0.0, 0.6],  # b: tie 1 vs 3, class 3 has the higher mean prob
        [0.5, 0.5, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0],
    ])
    v = video_level(vids, scores, preds, probs)
    assert list(v.video_id) == ["a", "b", "c"]
    assert v.real_score.tolist() == pytest.approx([0.5, 0.7, 0.2])
    assert v.n_frames.tolist() == [3, 2, 2]
    assert v.pred_class.tolist()[:2] == [2, 3]
    assert v.agreement.tolist()[:2] == pytest.approx([2 / 3, 0.5])
    # c: tie between real (0) and unattributed fake (-1): mean P(real)=0.5 vs 1 - mean score 0.8
    assert v.pred_class.tolist()[2] == -1


def test_video_level_binary_without_probs_breaks_ties_by_score():
    v = video_level(["x", "x", "y", "y"], [0.9, 0.3, 0.2, 0.4], [0, -1, 0, -1])
    assert v.set_index("video_id").pred_class.to_dict() == {"x": 0, "y": -1}  # mean 0.6 -> real, 0.3 -> fake
    only = video_level(["x", "y", "x"], [1.0, 0.0, 0.0])
    assert "pred_class" not in only and only.real_score.tolist() == [0.5, 0.0]


def test_attribution_confusion_and_per_class_fpr():
    assert attribution_accuracy([0, 1, 2, -1], [0, 2, 2, 1]) == pytest.approx(2 / 3)
    assert attribution_accuracy([-1, -1], [0, 1]) is None
    cm = confusion_matrix(["real", "fs", "unseen-fake (dfd)"], ["real", "real", "fs"], pred_order=["real", "fs"])
    assert cm.loc["fs", "real"] == 1 and cm.loc["unseen-fake (dfd)", "fs"] == 1 and cm.values.sum() == 3
    pc = per_class_fpr(0.5, [0.9, 0.6, 0.1, 0.7], ["real", "fs", "fs", "df"], [True, False, False, False])
    assert pc.set_index("true_class").fpr.to_dict() == {"df": 1.0, "fs": 0.5}


def test_auc_equals_sklearn_with_ties():
    from sklearn.metrics import roc_auc_score

    from engine.metrics import auc_score

    rng = np.random.default_rng(5)
    for _ in range(50):
        n = int(rng.integers(2, 80))
        is_real = rng.random(n) < 0.4
        if is_real.all() or not is_real.any():
            continue
        scores = np.round(rng.random(n), 1)
        assert auc_score(scores, is_real) == pytest.approx(roc_auc_score(is_real, scores), abs=1e-12)


def test_video_level_empty_input():
    v = video_level(np.array([], dtype=object), np.array([]), np.array([], dtype=np.int64), np.zeros((0, 3)))
    assert len(v) == 0 and {"video_id", "real_score", "pred_class", "agreement", "n_frames"} <= set(v.columns)


# --- video aggregation (DESIGN.md "Scores and thresholds": mean by default; median, max-fake, top-k) --------

def test_video_aggregations_hand_cases():
    from engine.metrics import AGGREGATIONS, DEFAULT_TOP_K

    vids = ["a"] * 5 + ["b"] * 2 + ["c"]
    scores = [0.9, 0.1, 0.5, 0.7, 0.3, 0.8, 0.4, 0.6]
    preds = [0, 1, 1, 0, 1, 0, 2, 3]
    got = {agg: video_level(vids, scores, preds, aggregation=agg, top_k=2).set_index("video_id")
           for agg in AGGREGATIONS}
    assert got["mean"].real_score.tolist() == pytest.approx([0.5, 0.6, 0.6])
    assert got["median"].real_score.tolist() == pytest.approx([0.5, 0.6, 0.6])        # even count: middle two
    assert got["max-fake"].real_score.tolist() == pytest.approx([0.1, 0.4, 0.6])      # the lowest frame
    assert got["top-k"].real_score.tolist() == pytest.approx([0.2, 0.6, 0.6])         # mean of the 2 lowest
    # k larger than a video's frames: all of them
    assert video_level(vids, scores, aggregation="top-k", top_k=9).real_score.tolist() == pytest.approx([0.5, 0.6, 0.6])
    # the predicted class is the majority of frames whatever the aggregation
    for agg in AGGREGATIONS:
        assert got[agg].pred_class.tolist() == [1, 0, 3] and got[agg].agreement.tolist() == pytest.approx([0.6, 0.5, 1])
    assert DEFAULT_TOP_K == 3


def test_mean_aggregation_is_todays_numbers_exactly():
    """The default and an explicit 'mean' give bit-identical scores to the plain per-video mean."""
    rng = np.random.default_rng(3)
    vids = rng.integers(0, 40, 600).astype(str)
    scores = rng.random(600)
    codes, uniq = pd.factorize(vids)
    expected = np.bincount(codes, weights=scores) / np.bincount(codes)
    assert np.array_equal(video_level(vids, scores).real_score.to_numpy(), expected)
    assert np.array_equal(video_level(vids, scores, aggregation="mean").real_score.to_numpy(), expected)


def test_aggregations_match_a_groupby_reference():
    rng = np.random.default_rng(5)
    vids = rng.integers(0, 30, 500).astype(str)
    scores = rng.random(500)
    g = pd.DataFrame({"v": vids, "s": scores}).groupby("v", sort=False)["s"]
    refs = {"median": g.median(), "max-fake": g.min(), "top-k": g.apply(lambda x: np.sort(x.to_numpy())[:4].mean())}
    for agg, ref in refs.items():
        out = video_level(vids, scores, aggregation=agg, top_k=4).set_index("video_id").real_score
        assert np.allclose(out.to_numpy(), ref.loc[out.index].to_numpy()), agg


def test_bad_aggregation_is_one_clear_error():
    with pytest.raises(AtlasError, match="aggregation must be one of mean, median, max-fake, top-k"):
        video_level(["a"], [0.5], aggregation="max")
    with pytest.raises(AtlasError, match="k must be a whole number"):
        video_level(["a"], [0.5], aggregation="top-k", top_k=0)
    with pytest.raises(AtlasError, match="k must be a whole number"):
        video_level(["a"], [0.5], aggregation="top-k", top_k=2.5)
