"""Attribution: one logit per taxonomy class, cross-entropy; real-score = softmax P(real)."""

from __future__ import annotations

import numpy as np

from .base import Approach
from .registry import register_approach


@register_approach
class Attribution(Approach):
    name = "attribution"
    label = "Attribution"

    def head_size(self, n_classes, embedding_dim):
        return n_classes

    def build_criterion(self, spec, train_cfg, real_class=0):
        from torch import nn

        return nn.CrossEntropyLoss()

    def loss(self, criterion, out, labels, is_real, mine=True):
        return criterion(out.float(), labels)

    def correct_count(self, criterion, out, labels, is_real):
        return int((out.argmax(1) == labels).sum())

    def infer(self, features, out, criterion):
        import torch

        return features, torch.softmax(out, 1)

    def probs_width(self, n_classes):
        return n_classes

    def native_predictions(self, probs, real_score):
        p = np.asarray(probs, dtype=np.float32)
        return {"pred_class": p.argmax(1).astype(np.int32), "real_score": p[:, 0].astype(np.float64), "probs": p}
