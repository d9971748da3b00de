"""The approach registry: `register_approach` on a class, `get_approach(name)` everywhere else."""

from __future__ import annotations

from data_catalog.errors import AtlasError

_REGISTRY: dict = {}


def register_approach(cls):
    """Class decorator: one instance of `cls` becomes available under `cls.name` (in registration order)."""
    if not cls.name or cls.name in _REGISTRY:
        raise ValueError(f"approach {cls.__name__}: name {cls.name!r} is empty or taken")
    _REGISTRY[cls.name] = cls()
    return cls


def get_approach(name: str):
    """The registered approach called `name`, or a clear error listing the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise AtlasError(f"unknown approach {name!r} (choose from {', '.join(_REGISTRY)})") from None


def approach_names(trainable_only: bool = False) -> tuple[str, ...]:
    """Registered approach names in the paper's order (binary, attribution, triplet, arcfacemod, ...)."""
    return tuple(n for n, a in _REGISTRY.items() if a.trains or not trainable_only)
