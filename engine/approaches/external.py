"""External: embeddings made by another detector and imported (`dfatlas import-embeddings`); trains nothing.

Its runs hold no model: classifiers (kNN / LR / SVM) are refitted on the
imported validation rows as for the metric heads, θ and Tables 1/2, maps and
Compare work on the stored embeddings, and an unknown set can only be added
as imported embeddings too (`dfatlas analyze --input VIDEOS` is refused:
there is nothing to embed new videos with). `engine.embedding_import` writes
these runs.
"""

from __future__ import annotations

from .base import Approach
from .registry import register_approach


@register_approach
class External(Approach):
    name = "external"
    label = "External"
    trains = False
    embedding_classifiers = True
    default_classifier = "lr"   # a linear probe: the usual reading of another model's features
    embedding_layer = "imported from another detector (whatever layer it exported)"
    selection_name = "— (imported)"

    def head_size(self, n_classes, embedding_dim):
        raise NotImplementedError("an external run has no head: its embeddings are imported")

    def infer(self, features, out, criterion):
        raise NotImplementedError("an external run has no model: its embeddings are imported")
