"""Detection and attribution metrics, in the paper's (biometric) conventions.

DESIGN.md "Metrics — read this twice": the *positive* class is **real**.
Every approach yields a real-score per sample (higher = more real); a sample
is accepted as real when its score is >= the threshold θ.

- FPR = share of **fake** samples accepted as real,
- FNR = share of **real** samples rejected as fake,
- θ = `far_threshold(validation fake scores, 0.10)` — bob.measure's
  `far_threshold`, so numbers compare with the authors' own library,
- HTER(θ) = (FPR + FNR) / 2 on the test scores, AUC with real as positive.

`video_level` is THE one function that turns face (frame) rows into video
rows; CLI, dashboard and analysis all call it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from data_catalog.errors import AtlasError

UNATTRIBUTED = -1  # pred_class of a 'fake' without attribution (binary head)


@dataclass(frozen=True)
class Metrics:
    """Test metrics at a validation threshold; rates are fractions (0..1).

    `auc` is None when the test set lacks reals or fakes (then `note` says
    why); `fpr` / `fnr` / `hter` are NaN when they cannot be computed.
    """

    auc: float | None
    fpr: float
    fnr: float
    hter: float
    threshold: float
    n_real: int
    n_fake: int
    auc_ci: tuple[float, float] | None = None
    hter_ci: tuple[float, float] | None = None
    note: str = ""


def _scores(x, what: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    if np.isnan(a).any():
        raise AtlasError(f"{what}: {int(np.isnan(a).sum())} score(s) are NaN; the model or classifier produced invalid output")
    return a


def _labels(x, n: int, what: str) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype != bool:
        if a.dtype == object and any(v is None for v in a.reshape(-1)):
            raise AtlasError(f"{what}: unlabelled samples cannot be scored (is_real is None)")
        a = a.astype(bool)
    a = a.reshape(-1)
    if a.size != n:
        raise AtlasError(f"{what}: {a.size} labels for {n} scores")
    return a


def far_threshold(fake_scores, target_fpr: float = 0.10) -> float:
    """bob.measure's `far_threshold` for "accept as real when score >= θ".

    θ is the lowest validation fake score t such that the share of validation
    fakes scoring >= t is <= `target_fpr`. If even the highest fake alone is
    more than `target_fpr` of them, θ is the next float above the highest fake
    score (no fake accepted). `target_fpr` >= 1 gives the float just below the
    lowest fake (every fake accepted), as bob does.
    """
    if not 0.0 <= target_fpr <= 1.0:
        raise AtlasError(f"target FPR must be within [0, 1], got {target_fpr}")
    s = np.sort(_scores(fake_scores, "validation fake scores"))
    n = s.size
    if n == 0:
        raise AtlasError("cannot set a threshold: the validation split has no fake samples")
    if target_fpr >= 1 - np.finfo(np.float64).eps:
        return float(np.nextafter(s[0], -np.inf))
    uniq = np.unique(s)
    n_ge = n - np.searchsorted(s, uniq, side="left")  # fakes scoring >= each candidate
    ok = (n_ge / n) <= target_fpr                     # monotone: False ... False True ... True
    if not ok.any():
        return float(np.nextafter(s[-1], np.inf))
    return float(uniq[np.argmax(ok)])


def rates_at(threshold: float, scores, is_real) -> tuple[float, float]:
    """(FPR, FNR) of `scores` at θ; NaN where the class is absent."""
    scores = _scores(scores, "scores")
    is_real = _labels(is_real, scores.size, "is_real")
    accepted = scores >= threshold
    n_real = int(is_real.sum())
    n_fake = scores.size - n_real
    fpr = float((accepted & ~is_real).sum() / n_fake) if n_fake else float("nan")
    fnr = float((~accepted & is_real).sum() / n_real) if n_real else float("nan")
    return fpr, fnr


def auc_score(scores, is_real) -> float | None:
    """ROC AUC with real as the positive class; None if a class is missing.

    The Mann-Whitney form (average ranks, so a tie counts one half) — equal to
    scikit-learn's `roc_auc_score(is_real, scores)` (tests check it) without
    its per-call validation overhead, which the live metrics table feels.
    """
    from scipy.stats import rankdata

    scores = _scores(scores, "scores")
    is_real = _labels(is_real, scores.size, "is_real")
    n_pos = int(is_real.sum())
    n_neg = scores.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(scores)
    return float((ranks[is_real].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def evaluate(val_scores, val_is_real, test_scores, test_is_real, target_fpr: float = 0.10,
             bootstrap: int = 0, seed: int = 0, test_groups=None) -> Metrics:
    """θ from the validation fakes (`far_threshold`), then test AUC/FPR/FNR/HTER.

    `bootstrap` > 0 adds 95 % percentile intervals for AUC and HTER from that
    many resamplings of the test set with θ fixed; `test_groups` (e.g. video
    ids at frame level) makes it resample whole groups instead of samples.
    """
    val_scores = _scores(val_scores, "validation scores")
    val_is_real = _labels(val_is_real, val_scores.size, "validation is_real")
    threshold = far_threshold(val_scores[~val_is_real], target_fpr)
    return evaluate_at(threshold, test_scores, test_is_real, bootstrap=bootstrap, seed=seed, test_groups=test_groups)


def evaluate_at(threshold: float, test_scores, test_is_real, bootstrap: int = 0, seed: int = 0,
                test_groups=None) -> Metrics:
    """Test metrics at a given θ (see `evaluate`)."""
    scores = _scores(test_scores, "test scores")
    is_real = _labels(test_is_real, scores.size, "test is_real")
    n_real = int(is_real.sum())
    n_fake = int(scores.size - n_real)
    fpr, fnr = rates_at(threshold, scores, is_real)
    notes = []
    if scores.size == 0:
        notes.append("no test samples")
    elif n_real == 0:
        notes.append("no real samples: AUC, FNR and HTER undefined")
    elif n_fake == 0:
        notes.append("no fake samples: AUC, FPR and HTER undefined")
    auc = auc_score(scores, is_real) if n_real and n_fake else None
    hter = (fpr + fnr) / 2 if n_real and n_fake else float("nan")
    auc_ci = hter_ci = None
    if bootstrap and n_real and n_fake:
        auc_ci, hter_ci = bootstrap_ci(threshold, scores, is_real, n_boot=bootstrap, seed=seed, groups=test_groups)
    return Metrics(auc, fpr, fnr, hter, float(threshold), n_real, n_fake, auc_ci, hter_ci, "; ".join(notes))


def bootstrap_ci(threshold: float, scores, is_real, n_boot: int = 1000, seed: int = 0, groups=None,
                 level: float = 0.95) -> tuple[tuple[float, float] | None, tuple[float, float]]:
    """Percentile intervals for AUC and HTER(θ), resampling groups (videos) with θ fixed.

    Vectorised: each resampling is a vector of multiplicities per group; the
    metrics are weighted sums, the AUC an exact weighted Mann-Whitney
    statistic computed over the unique scores (ties count one half).
    """
    from scipy import sparse

    scores = _scores(scores, "scores")
    is_real = _labels(is_real, scores.size, "is_real")
    if groups is None:
        gcode = np.arange(scores.size)
    else:
        gcode = pd.factorize(np.asarray(groups))[0]
    n_groups = int(gcode.max()) + 1
    rng = np.random.default_rng(seed)
    accepted = scores >= threshold
    uniq, inv = np.unique(scores, return_inverse=True)
    u = uniq.size
    rows_r, rows_f = np.flatnonzero(is_real), np.flatnonzero(~is_real)
    onehot_r = sparse.csr_matrix((np.ones(rows_r.size), (rows_r, inv[rows_r])), shape=(scores.size, u))
    onehot_f = sparse.csr_matrix((np.ones(rows_f.size), (rows_f, inv[rows_f])), shape=(scores.size, u))
    hter = np.empty(n_boot)
    auc = np.empty(n_boot)
    block = max(1, int(4_000_000 // max(scores.size, n_groups)))  # bound memory: block x n floats
    for b0 in range(0, n_boot, block):
        b = min(block, n_boot - b0)
        # multiplicity of each group in each resampling: (b, G), then per sample (b, n)
        draws = rng.integers(0, n_groups, size=(b, n_groups))
        mult = np.zeros((b, n_groups), dtype=np.float64)
        np.add.at(mult, (np.repeat(np.arange(b), n_groups), draws.reshape(-1)), 1.0)
        w = mult[:, gcode]
        wr = w[:, is_real].sum(1)
        wf = w[:, ~is_real].sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            fpr = w[:, accepted & ~is_real].sum(1) / wf
            fnr = w[:, ~accepted & is_real].sum(1) / wr
            hter[b0:b0 + b] = (fpr + fnr) / 2
            wr_u = np.asarray(onehot_r.T @ w.T).T  # (b, u) real weight at each unique score
            wf_u = np.asarray(onehot_f.T @ w.T).T
            below = np.cumsum(wf_u, axis=1) - wf_u  # fake weight strictly below each unique score
            auc[b0:b0 + b] = (wr_u * (below + 0.5 * wf_u)).sum(1) / (wr * wf)
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    ok_h = np.isfinite(hter)
    ok_a = np.isfinite(auc)
    hter_ci = (float(np.percentile(hter[ok_h], lo)), float(np.percentile(hter[ok_h], hi))) if ok_h.any() else None
    auc_ci = (float(np.percentile(auc[ok_a], lo)), float(np.percentile(auc[ok_a], hi))) if ok_a.any() else None
    return auc_ci, hter_ci


# --- faces -> videos ----------------------------------------------------------

# How a video's real-score comes from its frames' (DESIGN.md "Scores and thresholds"):
# - mean: the paper's, the default;
# - median: robust to a few outlying frames;
# - max-fake: the lowest frame real-score (one very fake frame decides);
# - top-k: the mean of the k lowest frame real-scores (the k most fake frames; all frames when a
#   video has fewer). Default k = 3: a fifth of the paper's 15 frames, so a manipulation visible in
#   a few frames is not averaged away, while one odd frame still is not the whole verdict.
AGGREGATIONS = ("mean", "median", "max-fake", "top-k")
DEFAULT_AGGREGATION = "mean"
DEFAULT_TOP_K = 3


def check_aggregation(aggregation: str, top_k: int = DEFAULT_TOP_K) -> tuple[str, int]:
    """(aggregation, k) when valid, else a one-line AtlasError naming the choices."""
    if aggregation not in AGGREGATIONS:
        raise AtlasError(f"aggregation must be one of {', '.join(AGGREGATIONS)}, got {aggregation!r}")
    try:
        k = int(top_k)
    except (TypeError, ValueError):
        raise AtlasError(f"top-k: k must be a whole number >= 1, got {top_k!r}") from None
    if k < 1 or k != top_k:
        raise AtlasError(f"top-k: k must be a whole number >= 1, got {top_k!r}")
    return aggregation, k


def aggregation_label(aggregation: str = DEFAULT_AGGREGATION, top_k: int = DEFAULT_TOP_K) -> str:
    """How a video's real-score was made, in words (tables, exports, reports, provenance)."""
    check_aggregation(aggregation, top_k)
    return {"mean": "mean of its frames' real-scores (the paper's)",
            "median": "median of its frames' real-scores",
            "max-fake": "lowest frame real-score (max-fake)",
            "top-k": f"mean of its {top_k} most fake frames' real-scores (top-k, k={top_k})"}[aggregation]


def aggregation_key(aggregation: str = DEFAULT_AGGREGATION, top_k: int = DEFAULT_TOP_K) -> str:
    """A short tag of the choice for table columns and file names: mean, median, max-fake, top-3."""
    check_aggregation(aggregation, top_k)
    return f"top-{top_k}" if aggregation == "top-k" else aggregation


def _aggregate(codes: np.ndarray, scores: np.ndarray, n_videos: int, n_frames: np.ndarray, aggregation: str,
               top_k: int) -> np.ndarray:
    """Per-video real-score by `aggregation` (vectorised: one sort, then segment arithmetic)."""
    if aggregation == "mean":
        return np.bincount(codes, weights=scores, minlength=n_videos) / np.maximum(n_frames, 1)
    out = np.full(n_videos, np.nan)
    if codes.size == 0:
        return out
    order = np.lexsort((scores, codes))             # by video, then real-score ascending (most fake first)
    s = scores[order]
    starts = np.zeros(n_videos, dtype=np.int64)
    starts[1:] = np.cumsum(n_frames)[:-1]
    has = n_frames > 0
    if aggregation == "max-fake":
        out[has] = s[starts[has]]
    elif aggregation == "median":
        lo = starts + (n_frames - 1) // 2
        hi = starts + n_frames // 2
        out[has] = (s[lo[has]] + s[hi[has]]) / 2
    else:  # top-k
        take = np.minimum(n_frames, top_k)
        csum = np.concatenate([[0.0], np.cumsum(s)])
        out[has] = (csum[starts[has] + take[has]] - csum[starts[has]]) / take[has]
    return out


def video_level(face_video_ids, face_real_scores, face_pred_classes=None, face_probs=None,
                aggregation: str = DEFAULT_AGGREGATION, top_k: int = DEFAULT_TOP_K) -> pd.DataFrame:
    """Aggregate face (frame) rows to one row per video — THE one function for it.

    - `real_score`: the video's frame real-scores aggregated by `aggregation` (`AGGREGATIONS`:
      mean — the paper's and the default —, median, max-fake = the lowest, top-k = mean of the
      `top_k` lowest),
    - `pred_class`: the majority of the frames' predicted classes whatever the aggregation (a
      class is what most frames show; the aggregation only decides how strongly a video must look
      fake to be rejected); a tie goes to the tied class with the highest
      mean probability over the video's frames (from `face_probs` [N, C] in
      the run's class order; without probabilities class 0 'real' uses the
      mean real-score and -1 'fake, unattributed' uses 1 - that), then to the
      lower class index,
    - `agreement`: share of the video's frames voting for the winner,
    - `n_frames`.

    Videos come out in order of first appearance. Vectorised (no row loops).
    """
    codes, uniques = pd.factorize(np.asarray(face_video_ids), sort=False)
    scores = _scores(face_real_scores, "real scores")
    if codes.size != scores.size:
        raise AtlasError(f"video_level: {codes.size} video ids for {scores.size} scores")
    if (codes < 0).any():
        raise AtlasError("video_level: a face row has no video id")
    aggregation, top_k = check_aggregation(aggregation, top_k)
    n_videos = uniques.size
    n_frames = np.bincount(codes, minlength=n_videos)
    mean_score = np.bincount(codes, weights=scores, minlength=n_videos) / np.maximum(n_frames, 1)
    video_score = mean_score if aggregation == "mean" else _aggregate(codes, scores, n_videos, n_frames,
                                                                      aggregation, top_k)
    out = pd.DataFrame({"video_id": uniques, "real_score": video_score, "n_frames": n_frames})
    if face_pred_classes is None:
        return out
    if codes.size == 0:
        return out.assign(pred_class=np.zeros(0, np.int64), agreement=np.zeros(0))
    pred = np.asarray(face_pred_classes, dtype=np.int64).reshape(-1)
    if pred.size != codes.size:
        raise AtlasError(f"video_level: {pred.size} predictions for {codes.size} faces")
    # votes per (video, class)
    cmin = int(pred.min()) if pred.size else 0
    shifted = pred - cmin
    n_cls = int(shifted.max()) + 1 if pred.size else 1
    pair = codes * n_cls + shifted
    pair_u, votes = np.unique(pair, return_counts=True)
    v_of = pair_u // n_cls
    c_of = pair_u % n_cls + cmin
    # tie-break value: mean probability of that class over the video's frames
    tb = np.zeros(pair_u.size, dtype=np.float64)
    if face_probs is not None:
        probs = np.asarray(face_probs, dtype=np.float64)
        if probs.ndim != 2 or probs.shape[0] != codes.size:
            raise AtlasError(f"video_level: probabilities must be [n_faces, n_classes], got {probs.shape}")
        # per-class bincount: a loop over classes, not rows
        mean_p = np.stack([np.bincount(codes, weights=probs[:, j], minlength=n_videos) for j in range(probs.shape[1])],
                          axis=1) / np.maximum(n_frames, 1)[:, None]
        has = (c_of >= 0) & (c_of < probs.shape[1])
        tb[has] = mean_p[v_of[has], c_of[has]]
    else:
        tb[c_of == 0] = mean_score[v_of[c_of == 0]]
    unattr = c_of == UNATTRIBUTED
    tb[unattr] = 1.0 - mean_score[v_of[unattr]]
    # winner per video: most votes, then highest mean probability, then lowest class.
    # (video, class) pairs come sorted by video then class, so segment maxima do it in O(n).
    starts = np.flatnonzero(np.r_[True, v_of[1:] != v_of[:-1]])
    seg = np.repeat(np.arange(starts.size), np.diff(np.r_[starts, v_of.size]))
    cand = votes == np.maximum.reduceat(votes, starts)[seg]
    tb_c = np.where(cand, tb, -np.inf)
    cand &= tb_c == np.maximum.reduceat(tb_c, starts)[seg]
    idx = np.flatnonzero(cand)
    win = idx[np.r_[True, seg[idx][1:] != seg[idx][:-1]]]  # first (lowest class) candidate per video
    out["pred_class"] = c_of[win].astype(np.int64)
    out["agreement"] = votes[win] / n_frames
    return out


# --- attribution --------------------------------------------------------------

def attribution_accuracy(true_index, pred_class) -> float | None:
    """Share of samples whose predicted class is their true class.

    `true_index` holds indices into the run's classes, with -1 (or NaN) for
    samples outside them (unseen fakes, unlabelled): those are left out.
    None when nothing is left or the predictions carry no attribution.
    """
    t = np.asarray(true_index, dtype=np.float64).reshape(-1)
    p = np.asarray(pred_class, dtype=np.float64).reshape(-1)
    keep = np.isfinite(t) & (t >= 0)
    if not keep.any():
        return None
    return float((t[keep] == p[keep]).mean())


def attribution_accuracy_ci(true_index, pred_class, n_boot: int = 1000, seed: int = 0, groups=None,
                            level: float = 0.95) -> tuple[float, float] | None:
    """Percentile interval of `attribution_accuracy`, resampling groups (videos) as `bootstrap_ci` does.

    The same samples count as in `attribution_accuracy` (known classes only); None when none do.
    """
    t = np.asarray(true_index, dtype=np.float64).reshape(-1)
    p = np.asarray(pred_class, dtype=np.float64).reshape(-1)
    keep = np.isfinite(t) & (t >= 0)
    if not keep.any() or n_boot <= 0:
        return None
    correct = (t[keep] == p[keep]).astype(np.float64)
    gcode = (np.arange(keep.sum()) if groups is None
             else pd.factorize(np.asarray(groups).reshape(-1)[keep])[0])
    n_groups = int(gcode.max()) + 1
    hits = np.bincount(gcode, weights=correct, minlength=n_groups)   # per group: correct samples
    sizes = np.bincount(gcode, minlength=n_groups).astype(np.float64)  # per group: samples
    rng = np.random.default_rng(seed)
    acc = np.empty(n_boot)
    block = max(1, int(4_000_000 // n_groups))
    for b0 in range(0, n_boot, block):
        b = min(block, n_boot - b0)
        draws = rng.integers(0, n_groups, size=(b, n_groups))
        acc[b0:b0 + b] = hits[draws].sum(1) / sizes[draws].sum(1)
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    return float(np.percentile(acc, lo)), float(np.percentile(acc, hi))


def confusion_matrix(true_labels, pred_labels, true_order=None, pred_order=None) -> pd.DataFrame:
    """Counts of true (rows) vs predicted (columns) labels, as a DataFrame.

    Labels are display strings: callers pass e.g. 'unseen-fake (dfd)' so that
    unseen fakes get one row per database.
    """
    t = pd.Categorical(np.asarray(true_labels, dtype=object), categories=true_order) if true_order is not None \
        else pd.Categorical(np.asarray(true_labels, dtype=object))
    p = pd.Categorical(np.asarray(pred_labels, dtype=object), categories=pred_order) if pred_order is not None \
        else pd.Categorical(np.asarray(pred_labels, dtype=object))
    cm = pd.crosstab(t, p, dropna=False)
    cm.index.name = "true"
    cm.columns.name = "predicted"
    return cm


def per_class_fpr(threshold: float, scores, true_labels, is_real) -> pd.DataFrame:
    """FPR of each fake class at θ: share of that class's fakes accepted as real."""
    scores = _scores(scores, "scores")
    is_real = _labels(is_real, scores.size, "is_real")
    fake = ~is_real
    df = pd.DataFrame({"true_class": np.asarray(true_labels, dtype=object)[fake],
                       "accepted": scores[fake] >= threshold})
    if df.empty:
        return pd.DataFrame(columns=["true_class", "n", "fpr"])
    g = df.groupby("true_class", sort=True)["accepted"].agg(["size", "mean"]).reset_index()
    return g.rename(columns={"size": "n", "mean": "fpr"})


def error_curves(scores, is_real) -> tuple[np.ndarray, np.ndarray]:
    """FPR (fakes accepted as real) and FNR (reals rejected) over every threshold: the ROC / DET points.

    Real is the positive class, as everywhere here. Needs real and fake samples.
    """
    from sklearn.metrics import roc_curve

    scores = _scores(scores, "scores")
    is_real = _labels(is_real, scores.size, "is_real")
    if is_real.all() or not is_real.any():
        raise AtlasError("error curves need both real and fake samples")
    fpr, tpr, _thr = roc_curve(is_real, scores, pos_label=True)
    return fpr, 1 - tpr


def neighbour_precision(embeddings, labels, k: int = 10) -> float:
    """Mean share of same-class samples among each sample's k nearest others (Euclidean; leave-one-out).

    k is capped at n - 1. 1.0 for a perfectly clustered embedding, about 1/C for a random one with C
    balanced classes. Used to choose a metric head's best epoch.
    """
    import torch

    e = torch.as_tensor(np.asarray(embeddings, dtype=np.float32))
    y = torch.as_tensor(np.asarray(labels))
    n = len(e)
    if n < 2:
        raise AtlasError("neighbour precision needs at least two samples")
    k = max(1, min(int(k), n - 1))
    d = torch.cdist(e, e)
    d.fill_diagonal_(float("inf"))
    nearest = d.topk(k, largest=False).indices
    return float((y[nearest] == y[:, None]).float().mean())
