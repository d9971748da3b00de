"""The embedded SYNTHETIC deepfake-attribution benchmark (DESIGN.md "The embedded default").

`generate(out_dir, seed=0, size="default", progress=None) -> Summary` writes
procedurally drawn face videos, real manipulation methods applied to them, a
generic-adapter CSV manifest per database and the experiment config
`demo.toml`. numpy + OpenCV only.
"""

from .benchmark import (DATABASES, GENERATOR_VERSION, MARKER_NAME, SIZES, Summary, config_template, config_text,
                        generate, is_synthetic_path, plan, render_job)
from .manipulations import KNOWN_METHODS, NOVEL_METHODS, VARIANT_METHODS

__all__ = ["DATABASES", "GENERATOR_VERSION", "KNOWN_METHODS", "MARKER_NAME", "NOVEL_METHODS", "SIZES", "Summary",
           "VARIANT_METHODS", "config_template", "config_text", "generate", "is_synthetic_path", "plan", "render_job"]
