"""The open-set scores (engine.openset): definitions on hand-checkable data, and thresholds set on validation."""

from __future__ import annotations

import numpy as np
import pytest

from engine.config import OpenSetSection, load_config
from engine.openset import (SCORES, CentroidRatio, KnnDistance, Mahalanobis, MaxSoftmax, OpenSetModel, group_mean,
                            make_score, upper_threshold)
from data_catalog.errors import ConfigError


def _blob(rng, centre, n, noise=0.1, dim=4):
    c = np.zeros(dim, np.float32)
    c[centre] = 1.0
    return (c + noise * rng.standard_normal((n, dim))).astype(np.float32)


def test_knn_score_is_the_kth_nearest_cosine_distance():
    ref = np.array([[1, 0], [0, 1], [1, 1], [-1, 0]], np.float32)
    s = KnnDistance(k=2).fit(ref * 3.0)  # scale-free: embeddings are L2-normalised
    q = np.array([[1, 0], [0, -1]], np.float32)
    # [1,0]: distances 0, 1-cos45, 1, 2 -> 2nd nearest 1 - 0.7071; [0,-1]: 1, 2, 1+0.7071, 1 -> 2nd nearest 1
    assert np.allclose(s.face_scores(q), [1 - np.sqrt(0.5), 1.0], atol=1e-5)
    d, idx = s.neighbours(q[:1], 3)
    assert list(idx[0]) == [0, 2, 1] or list(idx[0]) == [0, 2, 3]
    assert np.all(np.diff(d[0]) >= 0)


def test_mahalanobis_score_matches_its_definition():
    rng = np.random.default_rng(0)
    x = np.concatenate([_blob(rng, 0, 300, 0.2), _blob(rng, 1, 300, 0.2)])
    y = np.repeat([0, 1], 300)
    m = Mahalanobis("euclidean", "ledoit-wolf").fit(x, y)
    q = rng.standard_normal((5, 4)).astype(np.float32)
    by_hand = np.min([np.einsum("ij,jk,ik->i", q - mu, m.precision_, q - mu) for mu in m.means_], axis=0)
    assert np.allclose(m.face_scores(q), by_hand, rtol=1e-6)
    from sklearn.covariance import OAS

    oas = Mahalanobis("euclidean", "oas").fit(x, y)
    assert np.allclose(oas.precision_, OAS().fit(x - oas.means_[y]).precision_)
    assert m.face_scores(_blob(rng, 2, 20, 0.2)).min() > np.quantile(m.face_scores(x), 0.99)


def test_msp_and_centroid_scores():
    p = np.array([[0.7, 0.2, 0.1], [0.34, 0.33, 0.33]])
    assert np.allclose(MaxSoftmax().face_scores(np.zeros((2, 1)), p), [0.3, 0.66])
    with pytest.raises(ValueError, match="probabilities"):
        MaxSoftmax().face_scores(np.zeros((1, 1)))
    rng = np.random.default_rng(1)
    x = np.concatenate([_blob(rng, c, 200) for c in range(3)])
    y = np.repeat(np.arange(3), 200)
    vids = np.repeat(np.arange(150), 4)
    cen = CentroidRatio("euclidean").fit(x, y, vids)
    assert (cen.video_radius_ < cen.face_radius_).all()  # a mean of 4 frames is nearer its centroid
    assert (cen.face_scores(x) > 1).mean() <= 0.06  # 95th-percentile radii
    assert (cen.face_scores(_blob(rng, 3, 50)) > 1).all()


def test_combined_score_standardises_each_part_on_validation():
    rng = np.random.default_rng(4)
    ref = np.concatenate([_blob(rng, c, 200) for c in range(2)])
    cls = np.repeat([0, 1], 200)
    val = np.concatenate([_blob(rng, c, 100) for c in range(2)])
    comb = make_score("knn+mahalanobis", "euclidean", k=5)
    comb.fit(ref, cls)
    comb.calibrate(val)
    knn, maha = comb.parts
    for part, centre, scale in zip(comb.parts, comb.centre_, comb.scale_):
        v = part.face_scores(val)
        assert np.isclose(centre, np.median(v)) and np.isclose(scale, np.quantile(v, 0.95) - np.median(v))
    q = _blob(rng, 3, 7)
    by_hand = sum((p.face_scores(q) - c) / sc for p, c, sc in zip(comb.parts, comb.centre_, comb.scale_))
    assert np.allclose(comb.face_scores(q), by_hand) and (comb.face_scores(q) > comb.face_scores(val).max()).all()
    assert "cosine distance" in comb.describe and "Mahalanobis" in comb.describe


def test_thresholds_are_set_on_validation_videos():
    rng = np.random.default_rng(2)
    ref = np.concatenate([_blob(rng, c, 300) for c in range(3)])
    ref_cls = np.repeat(np.arange(3), 300)
    val = np.concatenate([_blob(rng, c, 240) for c in range(3)])
    val_vid = np.repeat(np.arange(180), 4)  # 180 validation videos of 4 faces
    osm = OpenSetModel.calibrate(KnnDistance(5), ref, ref_cls, None, val, val_vid, false_alarm=0.05)
    _, v_scores = group_mean(osm.scorer.face_scores(val), val_vid)
    assert osm.video_threshold == upper_threshold(v_scores, 0.05) and osm.video_threshold in v_scores
    assert 0.03 <= osm.validation_video_rate < 0.05 and osm.n_validation_videos == 180
    assert (osm.scorer.face_scores(val) > osm.face_threshold).mean() <= 0.05
    # a video is judged by the mean of its faces' scores against the video threshold
    novel = _blob(rng, 3, 8)
    vids, s, flagged = osm.judge_videos(np.concatenate([val[:4], novel]), np.repeat(["known", "new"], [4, 8]))
    assert list(vids) == ["known", "new"] and flagged[1] and s[1] > s[0]
    assert np.isclose(s[1], osm.scorer.face_scores(novel).mean())
    # another false-alarm rate moves the threshold
    loose = OpenSetModel.calibrate(KnnDistance(5), ref, ref_cls, None, val, val_vid, false_alarm=0.25)
    assert loose.video_threshold < osm.video_threshold
    with pytest.raises(ValueError, match="validation"):
        OpenSetModel.calibrate(KnnDistance(5), ref, ref_cls, None, val[:0], val_vid[:0])


def test_upper_threshold_is_split_conformal():
    s = np.arange(100, dtype=float)
    t = upper_threshold(s, 0.05)  # k = floor(0.05 * 101) = 5: the 5th largest
    assert t == 95.0 and (s > t).sum() == 4  # a new like sample exceeds it with probability 5 / 101
    rng = np.random.default_rng(3)  # on fresh samples of the same distribution: about 5 % flagged, not more
    rates = [(rng.standard_normal(2000) > upper_threshold(rng.standard_normal(199), 0.05)).mean() for _ in range(200)]
    assert 0.04 <= np.mean(rates) <= 0.053  # expected: 10 / 200 = 5 %
    assert upper_threshold(np.arange(10.0), 0.05) == 9.0  # too few to place it: the largest
    assert upper_threshold(np.array([np.nan]), 0.05) == float("inf")


def test_every_score_is_selectable_and_validated(tmp_path):
    assert SCORES[0] == OpenSetSection().score == "knn+mahalanobis"
    for name in SCORES:
        assert make_score(name, "cosine").name == name
    with pytest.raises(ValueError, match="unknown open-set score"):
        make_score("energy-x", "cosine")
    base = '[experiment]\nname = "x"\n'
    for body, match in (('[openset]\nscore = "nope"\n', "score"), ("[openset]\nfalse_alarm = 0.9\n", "false_alarm"),
                        ("[openset]\nfalse_alarm = 0\n", "false_alarm"), ("[openset]\nknn_k = 0\n", "knn_k"),
                        ('[openset]\nshrinkage = "x"\n', "shrinkage"), ("[openset]\nbogus = 1\n", "bogus")):
        p = tmp_path / "c.toml"
        p.write_text(base + body)
        with pytest.raises(ConfigError, match=match):
            load_config(p)
    p.write_text(base + '[openset]\nscore = "mahalanobis"\nshrinkage = "oas"\nfalse_alarm = 0.01\n')
    cfg = load_config(p)
    assert (cfg.openset.score, cfg.openset.shrinkage, cfg.openset.false_alarm) == ("mahalanobis", "oas", 0.01)
