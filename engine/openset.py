"""Open-set verdicts: "resembles no known class" instead of forcing the top class.

A novelty score (higher = less like anything known) is fitted on labelled
*reference* faces and thresholded on known *validation* videos, like every
threshold in this project: a video is open-set when its score is above the
value that flags `false_alarm` (default 5 %) of the θ population's videos
(the super-set validation split, taxonomy classes; `engine.scores.theta_population`).
A video's score is the mean of its faces' scores (as its real-score is the
mean of theirs); the threshold is split-conformal (`upper_threshold`). The scores (`SCORES`, `[openset] score`):

- ``knn+mahalanobis`` (default, chosen by `bench/bench_openset.py`, docs/BENCHMARKS.md
  "Open-set verdict"): the two scores below, each standardised on the validation
  faces (median -> 0, 95th percentile -> 1) and summed (`Combined`): kNN sees
  holes between the classes, Mahalanobis the directions the classes never vary in.
- ``knn``: the cosine distance to the k-th nearest reference face —
  the super-set's *training* faces (taxonomy classes), L2-normalised, k =
  `[openset] knn_k`. Deep nearest-neighbour OOD detection (Sun et al., ICML
  2022): no assumption on the shape of a class, and the reference is disjoint
  from the validation faces the threshold is set on.
- ``mahalanobis``: the smallest squared Mahalanobis distance to a class mean
  of the reference faces, one covariance shared by all classes and shrunk by
  scikit-learn's LedoitWolf or OAS (Lee et al., NeurIPS 2018).
- ``centroid``: the earlier verdict, kept for comparison: per-class centroids
  and 95th-percentile radii of the *validation* embeddings, ratio
  min_c d(x, mu_c) / tau_c, open when above 1 (video level: the video's mean
  embedding against radii of validation video means).
- ``msp``: 1 - the classifier's largest class probability (maximum softmax
  probability, Hendrycks & Gimpel 2017); needs stored probabilities.

Geometry: `knn` compares L2-normalised embeddings (cosine distance: the
metric heads are trained on the unit sphere, and for the pre-logit features
of binary / attribution the measured AUROC is higher normalised than raw);
`mahalanobis` and `centroid` work in the approach's `embedding_metric`
(cosine: normalised first). Evidence for a verdict (`engine.analysis.evidence`)
is the reference faces nearest in the `knn` geometry.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SCORES = ("knn+mahalanobis", "knn", "mahalanobis", "centroid", "msp")
DEFAULT_QUANTILE = 0.95
DEFAULT_FALSE_ALARM = 0.05


def normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def prepare(x: np.ndarray, metric: str) -> np.ndarray:
    """Embeddings in the geometry the distances are taken in."""
    x = np.asarray(x, dtype=np.float32)
    return normalise(x) if metric == "cosine" else x


def pairwise_distance(x: np.ndarray, y: np.ndarray, metric: str) -> np.ndarray:
    """Distances between rows of prepared `x` [n,d] and `y` [m,d] -> [n,m]."""
    if metric == "cosine":
        return np.clip(1.0 - x @ y.T, 0.0, 2.0)
    sq = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * (x @ y.T)
    return np.sqrt(np.maximum(sq, 0.0))


def group_mean(x: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean row per group (sorted unique group labels, means) without a Python loop."""
    uniq, inv = np.unique(np.asarray(groups), return_inverse=True)
    x = np.asarray(x)
    if x.ndim == 1:
        return uniq, (np.bincount(inv, weights=x, minlength=len(uniq)) / np.bincount(inv, minlength=len(uniq)))
    sums = np.zeros((len(uniq), x.shape[1]), dtype=np.float64)
    np.add.at(sums, inv, x)
    counts = np.bincount(inv, minlength=len(uniq))[:, None]
    return uniq, (sums / counts).astype(np.float32)


def upper_threshold(scores: np.ndarray, false_alarm: float) -> float:
    """The threshold t (flagged: score > t) that a new sample like `scores` exceeds with probability at most
    `false_alarm`: the k-th largest score, k = floor(false_alarm * (n + 1)) (split-conformal: the new sample's
    rank among n + 1 exchangeable scores is uniform). Fewer than 1 / false_alarm - 1 scores: the largest."""
    scores = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
    scores = scores[np.isfinite(scores)]
    if not len(scores):
        return float("inf")
    k = int(np.floor(false_alarm * (len(scores) + 1) + 1e-9))
    return float(scores[max(k, 1) - 1])


# --- the scores -------------------------------------------------------------------------------

class KnnDistance:
    """Cosine distance to the k-th nearest reference face (L2-normalised embeddings)."""

    name = "knn"
    needs_probs = False

    def __init__(self, k: int = 10):
        self.k = int(k)

    def fit(self, reference: np.ndarray, classes: np.ndarray | None = None, video_ids=None) -> "KnnDistance":
        from sklearn.neighbors import NearestNeighbors

        self.reference_ = normalise(reference)
        self.k_ = max(1, min(self.k, len(self.reference_)))
        self.index_ = NearestNeighbors(n_neighbors=self.k_, algorithm="brute").fit(self.reference_)
        return self

    def neighbours(self, x: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(cosine distances, reference row indices) of the `n` nearest reference faces of each row."""
        n = max(1, min(int(n), len(self.reference_)))
        d, idx = self.index_.kneighbors(normalise(x), n_neighbors=n)
        return np.clip(d * d / 2.0, 0.0, 2.0), idx  # |a-b|^2 = 2 - 2 cos on the unit sphere

    def face_scores(self, x: np.ndarray, probs: np.ndarray | None = None) -> np.ndarray:
        if not len(x):
            return np.zeros(0)
        return self.neighbours(x, self.k_)[0][:, -1]

    describe = property(lambda self: f"cosine distance to the {self.k}th nearest training face")


class Mahalanobis:
    """Smallest squared Mahalanobis distance to a reference class mean, one shrunk covariance for all."""

    name = "mahalanobis"
    needs_probs = False

    def __init__(self, metric: str = "euclidean", shrinkage: str = "ledoit-wolf"):
        self.metric, self.shrinkage = metric, shrinkage

    def fit(self, reference: np.ndarray, classes: np.ndarray, video_ids=None) -> "Mahalanobis":
        from sklearn.covariance import OAS, LedoitWolf

        x = prepare(reference, self.metric).astype(np.float64)
        classes = np.asarray(classes)
        self.classes_, inv = np.unique(classes, return_inverse=True)
        self.means_ = np.stack([x[inv == i].mean(0) for i in range(len(self.classes_))])
        est = LedoitWolf() if self.shrinkage == "ledoit-wolf" else OAS()
        est.fit(x - self.means_[inv])
        self.precision_ = est.precision_
        return self

    def face_scores(self, x: np.ndarray, probs: np.ndarray | None = None) -> np.ndarray:
        if not len(x):
            return np.zeros(0)
        z = prepare(x, self.metric).astype(np.float64)
        zp = z @ self.precision_
        mp = self.means_ @ self.precision_
        d = (zp * z).sum(1)[:, None] - 2.0 * zp @ self.means_.T + (mp * self.means_).sum(1)[None, :]
        return np.maximum(d.min(1), 0.0)

    describe = property(lambda self: f"Mahalanobis distance to the nearest class mean ({self.shrinkage} covariance)")


class CentroidRatio:
    """The earlier verdict: min over classes of d(x, centroid) / the class's 95th-percentile radius, both from
    the validation embeddings themselves; open when above 1."""

    name = "centroid"
    needs_probs = False
    fixed_threshold = 1.0

    def __init__(self, metric: str = "euclidean", quantile: float = DEFAULT_QUANTILE):
        self.metric, self.quantile = metric, quantile

    def fit(self, reference: np.ndarray, classes: np.ndarray, video_ids=None) -> "CentroidRatio":
        x = prepare(reference, self.metric)
        classes = np.asarray(classes)
        self.classes_ = sorted(int(c) for c in np.unique(classes))
        cents, face_r, video_r = [], [], []
        vids = None if video_ids is None else np.asarray(video_ids)
        for c in self.classes_:
            xc = x[classes == c]
            mu = xc.mean(0, keepdims=True)
            mu = normalise(mu) if self.metric == "cosine" else mu
            cents.append(mu[0])
            face_r.append(float(np.quantile(pairwise_distance(xc, mu, self.metric)[:, 0], self.quantile)))
            dv = np.zeros(0)
            if vids is not None:
                vm = prepare(group_mean(xc, vids[classes == c])[1], self.metric)
                dv = pairwise_distance(vm, mu, self.metric)[:, 0]
            video_r.append(float(np.quantile(dv, self.quantile)) if len(dv) >= 2 else np.nan)
        self.centroids_ = np.stack(cents).astype(np.float32)
        self.face_radius_ = np.asarray(face_r, np.float64)
        self.video_radius_ = np.asarray(video_r, np.float64)
        return self

    def _ratio(self, x: np.ndarray, radius: np.ndarray) -> np.ndarray:
        d = pairwise_distance(prepare(x, self.metric), self.centroids_, self.metric)
        r = np.where(np.isfinite(radius) & (radius > 0), radius, np.nan)
        ratio = np.where(np.isnan(d / r[None, :]), np.inf, d / r[None, :])
        return ratio.min(1)

    def face_scores(self, x: np.ndarray, probs: np.ndarray | None = None) -> np.ndarray:
        return self._ratio(x, self.face_radius_) if len(x) else np.zeros(0)

    def video_scores(self, x: np.ndarray, video_ids, probs: np.ndarray | None = None):
        vids, vm = group_mean(prepare(x, self.metric), video_ids)
        radius = self.video_radius_ if np.isfinite(self.video_radius_).any() else self.face_radius_
        return vids, self._ratio(vm, radius)

    describe = property(lambda self: f"{self.metric} distance to the nearest validation centroid / its "
                                     f"{int(100 * self.quantile)}th-percentile radius")


class MaxSoftmax:
    """1 - the classifier's largest class probability."""

    name = "msp"
    needs_probs = True

    def fit(self, reference: np.ndarray, classes=None, video_ids=None) -> "MaxSoftmax":
        return self

    def face_scores(self, x: np.ndarray, probs: np.ndarray | None = None) -> np.ndarray:
        if probs is None:
            raise ValueError("the msp open-set score needs the classifier's class probabilities")
        return 1.0 - np.asarray(probs, dtype=np.float64).max(1)

    describe = property(lambda self: "1 - the classifier's largest class probability")


class Combined:
    """The sum of several scores, each standardised on the validation faces: (s - median) / (95th percentile -
    median), so that each counts alike and a face typical of validation scores about 0 on each."""

    needs_probs = False

    def __init__(self, parts: list):
        self.parts = parts
        self.name = "+".join(p.name for p in parts)

    def fit(self, reference: np.ndarray, classes: np.ndarray, video_ids=None) -> "Combined":
        for p in self.parts:
            p.fit(reference, classes, video_ids)
        return self

    def calibrate(self, validation: np.ndarray, probs: np.ndarray | None = None) -> None:
        self.centre_, self.scale_ = [], []
        for p in self.parts:
            v = p.face_scores(validation, probs)
            centre = float(np.median(v))
            self.centre_.append(centre)
            self.scale_.append(max(float(np.quantile(v, 0.95)) - centre, 1e-12))

    def face_scores(self, x: np.ndarray, probs: np.ndarray | None = None) -> np.ndarray:
        if not len(x):
            return np.zeros(0)
        return np.sum([(p.face_scores(x, probs) - c) / sc for p, c, sc in zip(self.parts, self.centre_, self.scale_)],
                      axis=0)

    describe = property(lambda self: "the sum of " + " and ".join(p.describe for p in self.parts)
                        + ", each scaled by its spread on the validation faces")


def make_score(name: str, metric: str, k: int = 10, shrinkage: str = "ledoit-wolf",
               false_alarm: float = DEFAULT_FALSE_ALARM):
    if name == "knn+mahalanobis":
        return Combined([KnnDistance(k), Mahalanobis(metric, shrinkage)])
    if name == "knn":
        return KnnDistance(k)
    if name == "mahalanobis":
        return Mahalanobis(metric, shrinkage)
    if name == "centroid":
        return CentroidRatio(metric, 1.0 - false_alarm)
    if name == "msp":
        return MaxSoftmax()
    raise ValueError(f"unknown open-set score {name!r} (choose from {', '.join(SCORES)})")


def video_scores(scorer, x: np.ndarray, video_ids, probs: np.ndarray | None = None):
    """(sorted video ids, score per video): the scorer's own video rule, else the mean of its face scores."""
    own = getattr(scorer, "video_scores", None)
    if own is not None:
        return own(x, video_ids, probs)
    return group_mean(scorer.face_scores(x, probs), np.asarray(video_ids))


# --- the verdict ---------------------------------------------------------------------------------

@dataclass
class OpenSetModel:
    """A fitted novelty score and its face and video thresholds (set on known validation faces / videos)."""

    score: str
    scorer: object
    face_threshold: float
    video_threshold: float
    false_alarm: float = DEFAULT_FALSE_ALARM
    metric: str = "cosine"
    n_reference: int = 0
    n_validation_videos: int = 0
    validation_video_rate: float = float("nan")   # share of validation videos flagged (<= false_alarm)
    extra: dict = field(default_factory=dict)

    @classmethod
    def calibrate(cls, scorer, reference: np.ndarray, reference_class: np.ndarray, reference_video,
                  validation: np.ndarray, validation_video, validation_probs: np.ndarray | None = None,
                  false_alarm: float = DEFAULT_FALSE_ALARM, metric: str = "cosine") -> "OpenSetModel":
        """Fit `scorer` on the reference faces and set both thresholds on the validation faces / videos."""
        if not len(reference):
            raise ValueError("no labelled reference embeddings to fit the open-set score on")
        if not len(validation):
            raise ValueError("no labelled validation embeddings to set the open-set threshold on")
        scorer.fit(reference, reference_class, reference_video)
        if hasattr(scorer, "calibrate"):
            scorer.calibrate(validation, validation_probs)
        fixed = getattr(scorer, "fixed_threshold", None)
        face = scorer.face_scores(validation, validation_probs)
        _, video = video_scores(scorer, validation, validation_video, validation_probs)
        ft = fixed if fixed is not None else upper_threshold(face, false_alarm)
        vt = fixed if fixed is not None else upper_threshold(video, false_alarm)
        return cls(scorer.name, scorer, ft, vt, false_alarm, metric, int(len(reference)), int(len(video)),
                   float(np.mean(video > vt)) if len(video) else float("nan"))

    @property
    def describe(self) -> str:
        return self.scorer.describe

    def judge_faces(self, embeddings: np.ndarray, probs: np.ndarray | None = None):
        """(score, is_open) per face."""
        s = self.scorer.face_scores(embeddings, probs)
        return s, s > self.face_threshold

    def judge_videos(self, face_embeddings: np.ndarray, face_video_ids, probs: np.ndarray | None = None):
        """(sorted video ids, score, is_open) per video."""
        vids, s = video_scores(self.scorer, face_embeddings, face_video_ids, probs)
        return vids, s, s > self.video_threshold

    def to_dict(self) -> dict:
        return {"score": self.score, "definition": self.describe, "metric": self.metric,
                "false_alarm": self.false_alarm, "face_threshold": self.face_threshold,
                "video_threshold": self.video_threshold, "reference_faces": self.n_reference,
                "validation_videos": self.n_validation_videos,
                "validation_video_rate": self.validation_video_rate} | self.extra
