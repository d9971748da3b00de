"""TripletLoss: a 64-d L2-normalised embedding, semi-hard triplets mined in P x K batches; kNN on top."""

from __future__ import annotations

from .base import Approach
from .registry import register_approach


@register_approach
class Triplet(Approach):
    name = "triplet"
    label = "TripletLoss"
    embedding_layer = "a linear projection of the pooled features, L2-normalised (the triplet loss's input)"
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

    # The batch triplet loss with pml's default non-zero averaging does not track the embedding (0.399 for
    # a near-perfect embedding with one misplaced sample, 0.205 for a random one), and even its plain mean
    # over all triplets ranks half-shuffled labels below random ones; neighbourhood purity ranks them right.
    selection_name = "1 - validation precision@10 (share of same-class faces among each face's 10 nearest)"

    def selection_score(self, val_loss, embeddings, labels):
        from ..metrics import neighbour_precision

        return 1.0 - neighbour_precision(embeddings, labels, k=10)

    def infer(self, features, out, criterion):
        return out, None
