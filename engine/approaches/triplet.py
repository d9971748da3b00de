"""TripletLoss: a 64-d L2-normalised embedding, semi-hard triplets mined in P x K batches; kNN on top."""

from __future__ import annotations

from .base import Approach
from .registry import register_approach


@register_approach
class Triplet(Approach):
    name = "triplet"
    label = "TripletLoss"
    embedding_classifiers = True
    default_classifier = "knn"   # the paper's TripletLoss-NN
    needs_class_batches = True
    embedding_metric = "cosine"

    def head_size(self, n_classes, embedding_dim):
        return embedding_dim

    def head_output(self, out):
        import torch.nn.functional as F

        return F.normalize(out.float(), dim=1)

    def embedding_dim(self, embedding_dim, num_features):
        return embedding_dim

    def build_criterion(self, spec, train_cfg, real_class=0):
        from ..losses import TripletLoss

        return TripletLoss(margin=train_cfg.triplet_margin)

    def loss(self, criterion, out, labels, is_real, mine=True):
        return criterion(out, labels, mine=mine)

    def correct_count(self, criterion, out, labels, is_real):
        return None  # nearest-neighbour accuracy over the whole split (training validation)

    def validation_batch_size(self, batch_size):
        return max(batch_size, 64)  # enough samples per batch for its triplets

    def infer(self, features, out, criterion):
        return out, None
