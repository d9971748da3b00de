"""Open-set verdicts: "resembles no known class" instead of forcing the top class.

Calibration (on the *validation* split of the training super-set, like every
threshold in this project): for each known class c, its centroid mu_c is the
mean of its validation embeddings, and its radius tau_c is the 95th percentile
of the distances of its own validation samples to mu_c. A sample x is *open-set*
(novel) when d(x, mu_c) > tau_c for every class c; its `open_ratio` is
min_c d(x, mu_c) / tau_c, so > 1 means novel and the value sorts by novelty.

Levels: face radii come from validation faces; video radii from validation
*videos*, whose embedding is the mean of their faces' embeddings (a mean is
closer to a centroid than its frames are, so calibrating videos on faces would
flag too few). Each level is judged with radii of the same level.

Geometry: the metric heads (triplet, arcfacemod) are trained on L2-normalised
64-d embeddings — ArcFace compares angles, and the triplet loss's euclidean
distance between unit vectors is a monotone function of their cosine
(|a-b|^2 = 2 - 2 cos) — so for them embeddings and centroids are normalised and
d = 1 - cos (the cosine distance). Binary and attribution embeddings are the
un-normalised layer before the last, whose linear head reads magnitudes too:
there d is the euclidean distance. Which metric suits a run is its approach's
`embedding_metric` (engine.approaches); this module only takes the metric's name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DEFAULT_QUANTILE = 0.95


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
    sums = np.zeros((len(uniq), x.shape[1]), dtype=np.float64)
    np.add.at(sums, inv, x)
    counts = np.bincount(inv, minlength=len(uniq))[:, None]
    return uniq, (sums / counts).astype(np.float32)


@dataclass
class OpenSetModel:
    """Per-class centroids and radii calibrated on validation embeddings."""

    metric: str
    classes: list[int]            # class indices (into the run's classes) that have validation data
    centroids: np.ndarray         # [C, d], prepared geometry
    face_radius: np.ndarray       # [C]
    video_radius: np.ndarray      # [C] (NaN where a class has too few validation videos)
    quantile: float = DEFAULT_QUANTILE
    n_faces: dict = field(default_factory=dict)
    n_videos: dict = field(default_factory=dict)

    @classmethod
    def fit(cls, embeddings: np.ndarray, class_idx: np.ndarray, video_ids: np.ndarray | None,
            metric: str, quantile: float = DEFAULT_QUANTILE) -> "OpenSetModel":
        x = prepare(embeddings, metric)
        class_idx = np.asarray(class_idx)
        keep = class_idx >= 0
        x, class_idx = x[keep], class_idx[keep]
        if len(x) == 0:
            raise ValueError("no labelled validation embeddings to calibrate the open-set verdict on")
        classes = sorted(int(c) for c in np.unique(class_idx))
        cents, face_r, video_r, n_f, n_v = [], [], [], {}, {}
        vids = None if video_ids is None else np.asarray(video_ids)[keep]
        for c in classes:
            xc = x[class_idx == c]
            mu = xc.mean(0, keepdims=True)
            if metric == "cosine":
                mu = normalise(mu)
            cents.append(mu[0])
            d = pairwise_distance(xc, mu, metric)[:, 0]
            face_r.append(float(np.quantile(d, quantile)))
            n_f[c] = int(len(xc))
            if vids is not None:
                _, vm = group_mean(xc, vids[class_idx == c])
                vm = prepare(vm, metric)
                dv = pairwise_distance(vm, mu, metric)[:, 0]
                video_r.append(float(np.quantile(dv, quantile)) if len(dv) >= 2 else np.nan)
                n_v[c] = int(len(vm))
            else:
                video_r.append(np.nan)
        return cls(metric, classes, np.stack(cents).astype(np.float32), np.asarray(face_r, np.float64),
                   np.asarray(video_r, np.float64), quantile, n_f, n_v)

    # -- judging ---------------------------------------------------------------
    def distances(self, embeddings: np.ndarray) -> np.ndarray:
        """[n, C] distances to each known class's centroid."""
        return pairwise_distance(prepare(embeddings, self.metric), self.centroids, self.metric)

    def _ratio(self, embeddings: np.ndarray, radius: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = self.distances(embeddings)
        r = np.where(np.isfinite(radius) & (radius > 0), radius, np.nan)
        ratio = d / r[None, :]
        ratio = np.where(np.isnan(ratio), np.inf, ratio)
        best = np.argmin(ratio, axis=1)
        return ratio[np.arange(len(d)), best], np.asarray(self.classes)[best]

    def judge_faces(self, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(open_ratio, nearest class index, is_open) per face."""
        ratio, nearest = self._ratio(embeddings, self.face_radius)
        return ratio, nearest, ratio > 1.0

    def judge_videos(self, face_embeddings: np.ndarray, face_video_ids: np.ndarray):
        """(video ids, open_ratio, nearest class index, is_open) per video (mean of its faces)."""
        vids, vm = group_mean(prepare(face_embeddings, self.metric), face_video_ids)
        radius = self.video_radius if np.isfinite(self.video_radius).any() else self.face_radius
        ratio, nearest = self._ratio(vm, radius)
        return vids, ratio, nearest, ratio > 1.0

    def to_dict(self, class_names: list[str]) -> dict:
        return {
            "metric": self.metric, "quantile": self.quantile,
            "classes": [class_names[c] for c in self.classes],
            "face_radius": {class_names[c]: float(r) for c, r in zip(self.classes, self.face_radius)},
            "video_radius": {class_names[c]: (None if not np.isfinite(r) else float(r))
                             for c, r in zip(self.classes, self.video_radius)},
        }


def knn_votes(query: np.ndarray, reference: np.ndarray, reference_class: np.ndarray, k: int,
              metric: str, n_classes: int) -> np.ndarray:
    """Share of each class among every query row's k nearest reference rows, pooled: [n_classes]."""
    from sklearn.neighbors import NearestNeighbors

    k = max(1, min(int(k), len(reference)))
    nn = NearestNeighbors(n_neighbors=k, metric="cosine" if metric == "cosine" else "euclidean")
    nn.fit(reference)
    idx = nn.kneighbors(query, return_distance=False)
    votes = np.bincount(np.asarray(reference_class)[idx].ravel(), minlength=n_classes).astype(np.float64)
    return votes / max(votes.sum(), 1.0)
