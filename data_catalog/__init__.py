"""What the data is: databases in their published layouts, splits, classes,
and the synthetic demo benchmark. No torch, no DuckDB here."""

from .errors import AtlasError, ConfigError
from .records import REAL, SPLITS, UNSEEN_FAKE, VideoRecord, to_is_real
from .taxonomy import Taxonomy, paper_taxonomy

__all__ = [
    "AtlasError", "ConfigError", "REAL", "SPLITS", "UNSEEN_FAKE", "VideoRecord",
    "to_is_real", "Taxonomy", "paper_taxonomy",
]
