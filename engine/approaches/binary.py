"""Binary: one logit, binary cross-entropy; real-score = sigmoid(logit), high = real."""

from __future__ import annotations

import numpy as np

from .base import UNATTRIBUTED, Approach
from .registry import register_approach


@register_approach
class Binary(Approach):
    name = "binary"
    label = "Binary"
    attributes = False

    def head_size(self, n_classes, embedding_dim):
        return 1

    def head_output(self, out):
        return out.squeeze(1)

    def build_criterion(self, spec, train_cfg, real_class=0):
        from torch import nn

        return nn.BCEWithLogitsLoss()

    def loss(self, criterion, out, labels, is_real, mine=True):
        return criterion(out.float(), is_real.float())

    def correct_count(self, criterion, out, labels, is_real):
        return int(((out.float() > 0) == is_real.bool()).sum())

    def sampler_labels(self, labels, is_real):
        return (~np.asarray(is_real, dtype=bool)).astype(np.int64)  # real vs fake

    def infer(self, features, out, criterion):
        import torch

        p_real = torch.sigmoid(out)
        return features, torch.stack([p_real, 1 - p_real], 1)

    def probs_width(self, n_classes):
        return 2  # [P(real), P(fake)]

    def native_predictions(self, probs, real_score):
        real = np.asarray(real_score if real_score is not None else np.asarray(probs)[:, 0], dtype=np.float64)
        return {"pred_class": np.where(real >= 0.5, 0, UNATTRIBUTED).astype(np.int32), "real_score": real,
                "probs": None}
