"""Training losses: ArcFaceMod (the one loss this project owns) and the
triplet set-up composed from pytorch-metric-learning.

ArcFaceMod (Korshunov, Jain & Marcel 2022) is ArcFace with an additive
angular margin that depends on the sample's true class: a larger margin for
the real class (0.6 rad) than for every fake class (0.4 rad), so real faces
are pulled into a tighter cone. Margins are radians (pytorch-metric-learning's
own ArcFaceLoss takes degrees and one margin for all classes, which is why
this one is written here).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class ArcFaceMod(nn.Module):
    """ArcFace with a per-class additive angular margin.

    For a sample of class y with angle theta_y between its embedding and the
    class-y weight vector, the true-class logit is ``scale * cos(theta_y + m)``
    with ``m = real_margin`` if ``y == real_class`` else ``fake_margin``;
    every other logit is ``scale * cos(theta_j)``. Where ``theta_y + m > pi``
    (cos would start rising again) the usual ArcFace fall-back
    ``cos(theta_y) - m * sin(m)`` keeps the logit monotonic in theta. The loss
    is cross-entropy over these logits. Computed in float32 whatever the
    autocast context, with cosines clamped away from +-1.
    """

    def __init__(self, embedding_dim: int, n_classes: int, real_class: int = 0,
                 real_margin: float = 0.6, fake_margin: float = 0.4, scale: float = 64.0):
        super().__init__()
        if n_classes < 2:
            raise ValueError("ArcFaceMod needs at least two classes")
        if not 0 <= real_class < n_classes:
            raise ValueError(f"real_class {real_class} outside 0..{n_classes - 1}")
        for name, m in (("real_margin", real_margin), ("fake_margin", fake_margin)):
            if not 0 <= m < math.pi / 2:
                raise ValueError(f"{name} must be in [0, pi/2) radians, got {m}")
        self.embedding_dim = embedding_dim
        self.n_classes = n_classes
        self.real_class = real_class
        self.real_margin = float(real_margin)
        self.fake_margin = float(fake_margin)
        self.scale = float(scale)
        self.weight = nn.Parameter(torch.empty(n_classes, embedding_dim))
        nn.init.xavier_uniform_(self.weight)

    def cosines(self, embeddings: torch.Tensor) -> torch.Tensor:
        """cos(theta) between each embedding and each class weight, [N, C]."""
        e = F.normalize(embeddings.float(), dim=1)
        w = F.normalize(self.weight.float(), dim=1)
        return F.linear(e, w).clamp(-1.0 + 1e-7, 1.0 - 1e-7)

    def margins(self, labels: torch.Tensor) -> torch.Tensor:
        """The per-sample margin m in radians."""
        real = torch.full(labels.shape, self.real_margin, dtype=torch.float32, device=labels.device)
        fake = torch.full(labels.shape, self.fake_margin, dtype=torch.float32, device=labels.device)
        return torch.where(labels == self.real_class, real, fake)

    def logits(self, embeddings: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Scaled logits; with `labels`, the true-class logit carries the margin."""
        with torch.autocast(device_type=embeddings.device.type, enabled=False):
            cos = self.cosines(embeddings)
            if labels is None:
                return self.scale * cos
            labels = labels.long()
            m = self.margins(labels)
            cos_t = cos.gather(1, labels[:, None]).squeeze(1)
            sin_t = torch.sqrt((1.0 - cos_t * cos_t).clamp_min(1e-12))
            cos_tm = cos_t * torch.cos(m) - sin_t * torch.sin(m)  # cos(theta + m)
            # theta + m > pi  <=>  cos(theta) < cos(pi - m) = -cos(m)
            target = torch.where(cos_t > -torch.cos(m), cos_tm, cos_t - m * torch.sin(m))
            out = cos.scatter(1, labels[:, None], target[:, None])
            return self.scale * out

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.logits(embeddings, labels), labels.long())

    def extra_repr(self) -> str:
        return (f"embedding_dim={self.embedding_dim}, n_classes={self.n_classes}, real_class={self.real_class}, "
                f"real_margin={self.real_margin}, fake_margin={self.fake_margin}, scale={self.scale}")


class TripletLoss(nn.Module):
    """Triplet margin loss on semi-hard triplets mined in the batch.

    pytorch-metric-learning's `TripletMarginMiner(type_of_triplets="semihard")`
    and `TripletMarginLoss`, composed. Batches must be P x K (several samples
    of several classes; see `MPerClassSampler`) or there is nothing to mine.
    `mine=False` scores all triplets of the batch (validation).
    """

    def __init__(self, margin: float = 0.2):
        super().__init__()
        from pytorch_metric_learning import losses, miners, reducers

        self.margin = margin
        self.miner = miners.TripletMarginMiner(margin=margin, type_of_triplets="semihard")
        self.loss = losses.TripletMarginLoss(margin=margin)
        # validation: the mean over *all* triplets of the batch (zero-loss ones included), so that a
        # better embedding never scores worse because fewer of its triplets are violated
        self.all_triplets = losses.TripletMarginLoss(margin=margin, reducer=reducers.MeanReducer())
        self.last_n_triplets = 0

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor, mine: bool = True) -> torch.Tensor:
        with torch.autocast(device_type=embeddings.device.type, enabled=False):
            embeddings = embeddings.float()
            if mine:
                triplets = self.miner(embeddings, labels)
                self.last_n_triplets = int(triplets[0].numel())
                loss = self.loss(embeddings, labels, triplets)
            else:
                loss = self.all_triplets(embeddings, labels)
        # no triplet found: a zero loss that still touches the graph (DDP needs every
        # parameter to receive a gradient on every rank)
        if torch.is_grad_enabled() and loss.grad_fn is None:
            loss = embeddings.sum() * 0.0
        return loss
