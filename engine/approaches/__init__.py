"""The four approaches of the paper as registered objects (see `base.Approach`).

Import order is registration order, which is the order tables list them.
To add an approach, write one module with a `@register_approach` class and
import it here.
"""

from . import binary, attribution, triplet, arcfacemod  # noqa: F401  (registration, in the paper's order)
from . import external  # noqa: F401  (imported embeddings: trains nothing; listed after the paper's four)
from .base import UNATTRIBUTED, Approach
from .registry import approach_names, get_approach, register_approach

from data_catalog.errors import AtlasError


def display_label(approach: str, classifier: str) -> str:
    """'TripletLoss-NN', 'ArcFaceMod-LR', 'Attribution' — the paper's names."""
    from ..classify import CLASSIFIERS

    try:
        base = get_approach(approach).label
    except AtlasError:  # a run of an approach this dfatlas does not know: show its id
        base = approach
    suffix = CLASSIFIERS[classifier].suffix if classifier in CLASSIFIERS else classifier
    return f"{base}-{suffix}" if suffix else base


def choose_classifier(approach: str, available) -> str:
    """The approach's default classifier when it has predictions, else the first available (menu order)."""
    from ..classify import classifier_order

    available = classifier_order(available)
    try:
        want = get_approach(approach).default_classifier
    except AtlasError:
        want = "native"
    if want in available or not available:
        return want
    return available[0]


__all__ = ["choose_classifier", "Approach", "UNATTRIBUTED", "approach_names", "get_approach", "register_approach", "display_label"]
