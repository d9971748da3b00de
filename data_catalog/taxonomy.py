"""The class taxonomy: an ordered list of classes, `real` first, read from TOML.

Kept in a config file so users can add classes; the order is saved with every
run so a class index always means the same class for that run.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import ConfigError
from .records import REAL, UNSEEN_FAKE

UNSEEN_FAKE_COLOR = "#5A5A5A"
# A binary run's "fake, no attribution": its own colour, which no taxonomy class may take (in the
# Okabe-Ito palette the demo uses, #D55E00 is a method's colour).
FAKE_COLOR = "#000000"
RESERVED_COLORS = {UNSEEN_FAKE_COLOR: "unseen fakes", FAKE_COLOR: "a binary run's 'fake (no attribution)'"}
_HEX = re.compile(r"^#[0-9A-Fa-f]{6}$")
_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
# Marker symbols for true classes (plotly names), in class order.
MARKER_SYMBOLS = (
    "circle", "x", "diamond", "square", "cross", "triangle-up", "star",
    "pentagon", "hexagram", "triangle-down", "star-square", "hourglass",
    "bowtie", "triangle-left", "triangle-right", "asterisk-open",
)


@dataclass(frozen=True)
class TaxonomyClass:
    id: str
    name: str
    color: str
    sources: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Taxonomy:
    classes: tuple[TaxonomyClass, ...]
    origin: str = "<inline>"

    @property
    def ids(self) -> list[str]:
        return [c.id for c in self.classes]

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def index(self, class_id: str) -> int:
        try:
            return self.ids.index(class_id)
        except ValueError:
            raise ConfigError(
                self.origin, class_id,
                f"unknown class {class_id!r}; known classes: {', '.join(self.ids)} (or {UNSEEN_FAKE!r})",
            ) from None

    def check_class(self, class_id: str, where: object = None) -> str:
        """Return `class_id` if it is a taxonomy class or `unseen-fake`, else a clear error."""
        if class_id == UNSEEN_FAKE or class_id in self.ids:
            return class_id
        raise ConfigError(
            where or self.origin, None,
            f"unknown class {class_id!r}: it is neither in the taxonomy ({', '.join(self.ids)}) nor {UNSEEN_FAKE!r}",
        )

    def class_for(self, databases: tuple[str, ...] | str, method: str, is_fake: bool) -> str:
        """The true class of a video made by `method` in one of `databases`
        (its configured name and adapter kind); fakes of methods the taxonomy
        does not cover are `unseen-fake`."""
        if isinstance(databases, str):
            databases = (databases,)
        if not is_fake:
            return REAL
        for cls in self.classes[1:]:
            for db, m in cls.sources:
                if m == method and (db == "*" or db in databases):
                    return cls.id
        return UNSEEN_FAKE

    def color(self, class_id: str) -> str:
        for c in self.classes:
            if c.id == class_id:
                return c.color
        return UNSEEN_FAKE_COLOR

    def display_name(self, class_id: str) -> str:
        for c in self.classes:
            if c.id == class_id:
                return c.name
        return "Unseen fake" if class_id == UNSEEN_FAKE else class_id

    def to_dict(self) -> dict:
        return {"class": [
            {"id": c.id, "name": c.name, "color": c.color,
             "sources": [f"{d}:{m}" for d, m in c.sources]}
            for c in self.classes
        ]}

    @classmethod
    def from_dict(cls, data: dict, origin: str = "<inline>") -> "Taxonomy":
        entries = data.get("class")
        if not isinstance(entries, list) or not entries:
            raise ConfigError(origin, "class", "expected a non-empty list of [[class]] tables")
        classes: list[TaxonomyClass] = []
        seen: set[str] = set()
        for i, entry in enumerate(entries):
            key = f"class[{i}]"
            if not isinstance(entry, dict):
                raise ConfigError(origin, key, "expected a table")
            unknown = set(entry) - {"id", "name", "color", "sources"}
            if unknown:
                raise ConfigError(origin, f"{key}.{sorted(unknown)[0]}", "unknown key (known: id, name, color, sources)")
            cid = entry.get("id")
            if not isinstance(cid, str) or not _ID.match(cid):
                raise ConfigError(origin, f"{key}.id", f"expected a lower-case id like 'ff-faceswap', got {cid!r}")
            if cid in seen:
                raise ConfigError(origin, f"{key}.id", f"duplicate class id {cid!r}")
            if cid == UNSEEN_FAKE:
                raise ConfigError(origin, f"{key}.id", f"{UNSEEN_FAKE!r} is reserved for fakes of methods outside the taxonomy")
            seen.add(cid)
            color = entry.get("color", "")
            if not isinstance(color, str) or not _HEX.match(color):
                raise ConfigError(origin, f"{key}.color", f"expected a colour like '#0072B2', got {color!r}")
            taken = next((c.id for c in classes if c.color == color.upper()), None)
            if taken:
                raise ConfigError(origin, f"{key}.color", f"{color} is already class {taken!r}'s colour: "
                                  "each class needs its own, or the map cannot tell them apart")
            if color.upper() in RESERVED_COLORS:
                raise ConfigError(origin, f"{key}.color", f"{color} is reserved for {RESERVED_COLORS[color.upper()]}")
            sources = []
            for s in entry.get("sources", []):
                if not isinstance(s, str) or s.count(":") != 1:
                    raise ConfigError(origin, f"{key}.sources", f"expected 'database:method' strings, got {s!r}")
                db, m = s.split(":")
                sources.append((db, m))
            classes.append(TaxonomyClass(cid, str(entry.get("name", cid)), color.upper(), tuple(sources)))
        if classes[0].id != REAL:
            raise ConfigError(origin, "class[0].id", f"the first class must be {REAL!r} (index 0), got {classes[0].id!r}")
        if len(classes) < 2:
            raise ConfigError(origin, "class", "need 'real' and at least one fake class")
        return cls(tuple(classes), origin)

    @classmethod
    def load(cls, path: str | Path) -> "Taxonomy":
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(path, None, "taxonomy file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(path, None, f"not valid TOML: {exc}") from None
        return cls.from_dict(data, str(path))


def paper_taxonomy() -> Taxonomy:
    """The paper's ten classes, from the packaged `taxonomies/paper.toml`."""
    ref = resources.files("data_catalog") / "taxonomies" / "paper.toml"
    return Taxonomy.from_dict(tomllib.loads(ref.read_text(encoding="utf-8")), "data_catalog/taxonomies/paper.toml")
