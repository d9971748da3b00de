"""ArcFaceMod: a 64-d embedding under an ArcFace head whose margin depends on the true class; LR on top."""

from __future__ import annotations

from .base import Approach
from .registry import register_approach


@register_approach
class ArcFaceModApproach(Approach):
    name = "arcfacemod"
    label = "ArcFaceMod"
    embedding_layer = "a linear projection of the pooled features (the ArcFaceMod head's input)"
    embedding_classifiers = True
    default_classifier = "lr"   # the paper reports ArcFaceMod-LR
    embedding_metric = "cosine"

    def head_size(self, n_classes, embedding_dim):
        return embedding_dim

    def embedding_dim(self, embedding_dim, num_features):
        return embedding_dim

    def build_criterion(self, spec, train_cfg, real_class=0):
        from ..losses import ArcFaceMod

        return ArcFaceMod(spec.embedding_dim, spec.n_classes, real_class=real_class,
                          real_margin=train_cfg.arcface_real_margin, fake_margin=train_cfg.arcface_fake_margin,
                          scale=train_cfg.arcface_scale)

    def criterion_state(self, criterion):
        return criterion.state_dict()

    def load_criterion(self, state):
        if not state:
            return None
        from ..losses import ArcFaceMod

        w = state["weight"]
        criterion = ArcFaceMod(w.shape[1], w.shape[0])
        criterion.load_state_dict(state)
        return criterion

    def loss(self, criterion, out, labels, is_real, mine=True):
        return criterion(out, labels)

    def correct_count(self, criterion, out, labels, is_real):
        return int((criterion.logits(out).argmax(1) == labels).sum())

    def infer(self, features, out, criterion):
        import torch.nn.functional as F

        return F.normalize(out, dim=1), None
