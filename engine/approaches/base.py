"""What every approach is: the hooks a head, its loss and its predictions plug into.

An approach is one small object (see `binary.py` ... `arcfacemod.py`) that the
registry in `engine.approaches` hands out by name, in the spirit of timm's
`register_model`. Training, inference, the classify stage, evaluation and the
dashboard ask it what they need instead of comparing approach names, so
adding an approach is one new module.

torch is imported inside the hooks that need it: the dashboard reads labels
and default classifiers without loading it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..metrics import UNATTRIBUTED  # noqa: F401  (pred_class of a 'fake' without attribution)


class Approach:
    """Base class: hooks with the behaviour of a trainable classification head."""

    name: str = ""
    label: str = ""                  # the paper's display name
    trains: bool = True              # False: embeddings come from outside (an imported detector)
    embedding_classifiers: bool = False  # kNN / LR / SVM are fitted on its embeddings
    default_classifier: str = "native"   # the classifier its Table 1/2 rows use (the paper's choice)
    attributes: bool = True          # predicts a class per sample (so attribution accuracy applies)
    needs_class_batches: bool = False    # batches must hold several samples of several classes (P x K)
    embedding_metric: str = "euclidean"  # distance that suits its embedding (open-set checks)
    embedding_layer: str = "the backbone's pooled features (pre-logits)"  # where the stored embedding is taken

    # -- model -------------------------------------------------------------
    def head_size(self, n_classes: int, embedding_dim: int) -> int:
        """Outputs of the linear head on the pooled backbone features."""
        raise NotImplementedError

    def head_output(self, out):
        """The head's raw output as the approach uses it (squeeze, normalise)."""
        return out

    def embedding_dim(self, embedding_dim: int, num_features: int) -> int:
        """Width of the embedding stored per face."""
        return num_features

    def build_criterion(self, spec, train_cfg, real_class: int = 0):
        raise NotImplementedError

    def criterion_state(self, criterion) -> dict:
        """Trainable state of the loss saved with a checkpoint (ArcFaceMod's class weights)."""
        return {}

    def load_criterion(self, state: dict):
        """The loss needed at inference, rebuilt from `criterion_state`; None when inference needs none."""
        return None

    # -- training step ---------------------------------------------------------
    def loss(self, criterion, out, labels, is_real, mine: bool = True):
        raise NotImplementedError

    def correct_count(self, criterion, out, labels, is_real) -> int | None:
        """Correct predictions in a batch; None when accuracy is measured over a whole split."""
        raise NotImplementedError

    def sampler_labels(self, labels: np.ndarray, is_real: np.ndarray) -> np.ndarray:
        """What class-balanced sampling balances: the taxonomy class by default."""
        return np.asarray(labels, dtype=np.int64)

    def validation_batch_size(self, batch_size: int) -> int:
        return batch_size * 4

    #: what the best epoch is chosen by (docs/TRAINING.md)
    selection_name: str = "validation loss"

    def selection_score(self, val_loss: float, embeddings, labels) -> float:
        """The number the best epoch minimises; the validation loss unless the approach says otherwise.

        `embeddings` / `labels` are the validation embeddings (up to 4,000) when `correct_count` gives
        None (the approach is judged over the whole split), else None.
        """
        return val_loss

    # -- inference -------------------------------------------------------------
    def infer(self, features, out, criterion) -> tuple[Any, Any]:
        """(embedding, class probabilities or None) of one batch, as torch tensors."""
        raise NotImplementedError

    def probs_width(self, n_classes: int) -> int | None:
        """Columns of `infer`'s probabilities (None: the head gives none)."""
        return None

    def native_predictions(self, probs, real_score) -> dict | None:
        """The head's own predictions (classifier 'native'): pred_class, real_score, probs; None if it has none."""
        return None
