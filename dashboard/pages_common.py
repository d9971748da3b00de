"""Small helpers shared by several pages."""

from __future__ import annotations


def default_classifier(approach: str, available) -> str:
    """The paper's reported choice: kNN for TripletLoss, LR for ArcFaceMod, else the native head."""
    available = list(available)
    from engine.evaluation import DEFAULT_CLASSIFIER

    want = DEFAULT_CLASSIFIER.get(approach, "native")
    if want in available:
        return want
    return available[0] if available else want
