"""The experiment config: one TOML file that every command takes (`--config`).

Sections: [experiment] [sources] [taxonomy] [faces] [model] [train]
[classifiers] [openset] [projection] [dashboard]. Relative paths are relative to the
file. Validation happens at load and names the file, the key and the problem.
Each section is a dataclass below; its field defaults are the paper's values.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data_catalog.databases.options import coerce_kind
from data_catalog.errors import ConfigError
from data_catalog.taxonomy import Taxonomy, paper_taxonomy

from .metrics import AGGREGATIONS, DEFAULT_AGGREGATION, DEFAULT_TOP_K
from .openset import SCORES as OPEN_SET_SCORES



def _choices(*values: str) -> dict:
    return {"choices": values}


@dataclass(frozen=True)
class Range:
    """The values a numeric option allows; declared once, in its field's metadata (`_range`).

    Checked at load for every value the file gives (each element of a list option), and by the
    command line's number arguments (`engine.commands.common.option_arg` / `number_arg`).
    NaN and infinities are never allowed.
    """

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False   # `lo` itself is not allowed ("greater than")
    hi_open: bool = False   # `hi` itself is not allowed ("below")
    special: tuple = ()     # values allowed outside [lo, hi], e.g. 0 = "automatic"
    items: type | None = None  # a list option: the type of each element (int or float)

    def allows(self, value: float) -> bool:
        if value in self.special:
            return True
        if not math.isfinite(value):
            return False
        if self.lo is not None and (value < self.lo or (self.lo_open and value == self.lo)):
            return False
        return self.hi is None or not (value > self.hi or (self.hi_open and value == self.hi))

    def describe(self) -> str:
        """The range in words: '1 to 10000', 'greater than 0 and at most 10', '0 or 16 to 4096'."""
        if self.lo is not None and self.hi is not None and not (self.lo_open or self.hi_open):
            text = f"{_number(self.lo)} to {_number(self.hi)}"
        else:
            parts = []
            if self.lo is not None:
                parts.append(f"{'greater than' if self.lo_open else 'at least'} {_number(self.lo)}")
            if self.hi is not None:
                parts.append(f"{'below' if self.hi_open else 'at most'} {_number(self.hi)}")
            text = " and ".join(parts) or "any finite number"
        return " or ".join([*(_number(v) for v in self.special), text])

    def problem(self, value: float) -> str | None:
        """None when `value` is allowed, else the one-line reason (with the allowed range)."""
        if self.allows(value):
            return None
        what = "is not a finite number" if not math.isfinite(value) else "is out of range"
        return f"{value!r} {what} (allowed: {self.describe()})"


def _number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def _range(lo: float | None = None, hi: float | None = None, **kw) -> dict:
    """Field metadata declaring a numeric option's allowed values (see `Range`)."""
    return {"range": Range(lo, hi, **kw)}


def option_range(section: type, name: str) -> Range:
    """The declared range of `[section] name` (section: one of the dataclasses in SECTIONS)."""
    return next(f.metadata["range"] for f in dataclasses.fields(section) if f.name == name)


PROJECTION_METHODS = ("tsne", "tsne-full", "tsne-video")  # described in engine.projection.METHODS
SEED = _range(0, 2**32 - 1)   # numpy's seeds are 32-bit
WORKERS = _range(0, 1024)     # 0 = automatic (one per core)


@dataclass(frozen=True)
class ExperimentSection:
    name: str = "experiment"
    synthetic: bool = False  # data is the synthetic benchmark: labelled so everywhere
    seed: int = field(default=0, metadata=SEED)


@dataclass(frozen=True)
class DatabaseSource:
    """One database root; `adapter` picks the layout reader (default: the name)."""

    name: str
    adapter: str
    root: Path
    options: dict = field(default_factory=dict)  # adapter-specific (compression, manifest, ...)


@dataclass(frozen=True)
class SourcesSection:
    databases: dict = field(default_factory=dict)  # name -> DatabaseSource
    superset: tuple = ()   # databases whose splits form the training super-set
    cross_db: tuple = ()   # databases tested as a whole, never trained on


@dataclass(frozen=True)
class FacesSection:
    frames_per_video: int = field(default=15, metadata=_range(1, 10_000))
    crop_size: int = field(default=224, metadata=_range(16, 4096))  # pixels
    box_scale: float = field(default=1.3, metadata=_range(0.5, 5.0))  # crop side / detector box side
    detector: str = field(default="short_range", metadata=_choices("short_range", "full_range"))
    tiling: str = field(default="auto", metadata=_choices("off", "auto", "always"))
    # faces found by a fall-back pass (tiles, the other model) must pass MediaPipe's face-landmark
    # presence check (engine.faces.confirm); "off" takes them as they are (title text became faces)
    confirm: str = field(default="landmarks", metadata=_choices("landmarks", "off"))
    min_confidence: float = field(default=0.5, metadata=_range(0.0, 1.0))
    thumbnail_size: int = field(default=64, metadata=_range(8, 1024))
    crop_format: str = field(default="png", metadata=_choices("png", "jpg"))
    crop_quality: int = field(default=95, metadata=_range(1, 100))  # JPEG quality
    workers: int = field(default=0, metadata=WORKERS)  # 0 = one per core
    blazeface_model: str = ""  # explicit .tflite path; else $DFATLAS_BLAZEFACE, cache, download, wheel
    # Frames a database ships as face crops (DeepfakeBench's): "use" them as the crops (squared and resized,
    # no detection) or "detect" a face in them like in any frame.
    pre_cropped: str = field(default="use", metadata=_choices("use", "detect"))

    def keyed(self) -> dict:
        """The settings as a run's identity and the settings key see them: options added after crops and
        runs were recorded (`ADDED_LATER`) count only when they differ from the value that reproduces the
        earlier behaviour, so the ids of earlier workspaces stay the same (and a new default that changes
        the crops, such as `confirm`, gives a new settings key: the crops are made anew)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in ADDED_LATER or v != ADDED_LATER[k]}

    def settings_key(self) -> str:
        """Short hash of the settings that change the crops (not workers/model path)."""
        return _short_hash(self.crop_settings())

    def crop_settings(self) -> dict:
        """The settings that change the crops: what the settings key hashes and `face_settings` records."""
        return {k: v for k, v in self.keyed().items() if k not in ("workers", "blazeface_model")}


# [faces] options added after crops and runs were recorded -> the value that reproduces the behaviour from
# before the option existed: what a stored run's section without it means (engine.runs.RunRecord.section)
# and what the ids leave out (FacesSection.keyed). `confirm`'s default ("landmarks") differs from it.
ADDED_LATER = {"pre_cropped": "use", "confirm": "off"}
FacesSection.EARLIER_VALUES = ADDED_LATER


@dataclass(frozen=True)
class ModelSection:
    backbone: str = "legacy_xception"
    pretrained: bool = True
    checkpoint: str = ""  # local weights file for the backbone (offline path)
    embedding_dim: int = field(default=64, metadata=_range(1, 65_536))
    residual_input: bool = False  # extra SRM-style high-pass residual channels
    input_size: int = field(default=0, metadata=_range(16, 4096, special=(0,)))  # 0 = use the face crop size
    drop_rate: float = field(default=0.0, metadata=_range(0.0, 1.0, hi_open=True))


@dataclass(frozen=True)
class TrainSection:
    epochs: int = field(default=20, metadata=_range(1, 100_000))
    batch_size: int = field(default=16, metadata=_range(1, 1_000_000))
    lr: float = field(default=2e-4, metadata=_range(0.0, 10.0, lo_open=True))
    weight_decay: float = field(default=0.0, metadata=_range(0.0, 10.0))
    optimizer: str = field(default="adam", metadata=_choices("adam", "adamw", "sgd"))
    lr_schedule: str = field(default="constant", metadata=_choices("constant", "cosine"))  # paper: constant
    balanced_sampling: bool = False  # class-balanced batches for the real/fake imbalance
    samples_per_class: int = field(default=4, metadata=_range(1, 10_000))  # K of the P x K batches (triplet; balanced sampling)
    augment: bool = False
    num_workers: int = field(default=2, metadata=_range(0, 1024))  # data-loader processes
    device: str = "auto"  # auto / cpu / cuda / cuda:N
    precision: str = field(default="auto", metadata=_choices("auto", "fp32", "bf16"))
    compile: bool = False
    channels_last: bool = True
    triplet_margin: float = field(default=0.2, metadata=_range(0.0, 100.0))
    arcface_scale: float = field(default=64.0, metadata=_range(0.0, 1000.0, lo_open=True))
    arcface_real_margin: float = field(default=0.6, metadata=_range(0.0, math.pi, hi_open=True))  # radians
    arcface_fake_margin: float = field(default=0.4, metadata=_range(0.0, math.pi, hi_open=True))  # radians
    max_faces_per_video: int = field(default=0, metadata=_range(0, 1_000_000))  # 0 = all extracted faces
    seed: int = field(default=0, metadata=SEED)


@dataclass(frozen=True)
class ClassifiersSection:
    enabled: tuple = ("knn", "lr", "svm")
    knn_k: int = field(default=14, metadata=_range(1, 100_000))
    lr_c: float = field(default=0.001, metadata=_range(0.0, 1e12, lo_open=True))
    svm_c: float = field(default=0.01, metadata=_range(0.0, 1e12, lo_open=True))
    svm_kernel: str = field(default="rbf", metadata=_choices("rbf", "linear"))  # linear: LinearSVC + calibration (large sets)
    model_selection: bool = False  # pick hyper-parameters by CV on the validation split only
    cv_folds: int = field(default=5, metadata=_range(2, 1000))
    knn_k_grid: tuple = field(default=(1, 3, 5, 9, 14, 21, 31), metadata=_range(1, 100_000, items=int))
    c_grid: tuple = field(default=(0.0001, 0.001, 0.01, 0.1, 1.0, 10.0),
                          metadata=_range(0.0, 1e12, lo_open=True, items=float))
    # How a video's real-score comes from its frames' (engine.metrics.AGGREGATIONS; θ follows it):
    # mean (the paper's), median, max-fake (the lowest), top-k (mean of the top_k most fake frames).
    aggregation: str = field(default=DEFAULT_AGGREGATION, metadata=_choices(*AGGREGATIONS))
    top_k: int = field(default=DEFAULT_TOP_K, metadata=_range(1, 100_000))


@dataclass(frozen=True)
class OpenSetSection:
    """The "resembles no known class" verdict (`engine.openset`): which novelty score, and its threshold as the
    share of known validation videos it may flag."""

    score: str = field(default="knn+mahalanobis", metadata=_choices(*OPEN_SET_SCORES))
    false_alarm: float = field(default=0.05, metadata=_range(0.0, 0.5, lo_open=True))
    knn_k: int = field(default=10, metadata=_range(1, 10_000))  # the k-th nearest reference face sets the score
    shrinkage: str = field(default="ledoit-wolf", metadata=_choices("ledoit-wolf", "oas"))  # mahalanobis covariance
    max_reference_faces: int = field(default=20_000, metadata=_range(10, 100_000_000))  # training faces kept


@dataclass(frozen=True)
class ProjectionSection:
    # how the map is made (engine.projection.METHODS): "tsne" fits openTSNE on a stratified sample of at most
    # max_reference_points faces and places the others with transform (at 100k faces the 50,000 sample kept
    # the full fit's neighbourhoods; at 1M the full fit is too slow: docs/BENCHMARKS.md); "tsne-full" fits on
    # every reference face; "tsne-video" fits on per-video mean embeddings and draws each face at its video's point
    method: str = field(default="tsne", metadata=_choices(*PROJECTION_METHODS))
    reference: str = "superset/test"  # dataset(s) the map is fitted on
    perplexity: float = field(default=30.0, metadata=_range(0.0, 10_000.0, lo_open=True))
    n_iter: int = field(default=500, metadata=_range(1, 1_000_000))
    early_exaggeration_iter: int = field(default=250, metadata=_range(0, 1_000_000))
    metric: str = field(default="euclidean", metadata=_choices("euclidean", "cosine"))
    max_reference_points: int = field(default=50000, metadata=_range(2, 100_000_000))  # faces (videos) fitted
    seed: int = field(default=0, metadata=SEED)
    n_jobs: int = field(default=0, metadata=WORKERS)  # 0 = all cores


TOUR_URL_PATH = "tour"  # the dashboard's guided-tour page (dashboard.app.PAGES); `dfatlas demo` prints its URL


@dataclass(frozen=True)
class DashboardSection:
    allowed_roots: tuple = ()  # folders the Analyse page may read
    max_upload_mb: int = field(default=200, metadata=_range(1, 1_000_000))
    default_level: str = field(default="video", metadata=_choices("video", "frame"))
    host: str = "127.0.0.1"
    port: int = field(default=8501, metadata=_range(1, 65535))


SECTIONS = {
    "experiment": ExperimentSection,
    "faces": FacesSection,
    "model": ModelSection,
    "train": TrainSection,
    "classifiers": ClassifiersSection,
    "openset": OpenSetSection,
    "projection": ProjectionSection,
    "dashboard": DashboardSection,
}


@dataclass(frozen=True)
class ExperimentConfig:
    path: Path
    experiment: ExperimentSection
    sources: SourcesSection
    taxonomy: Taxonomy
    faces: FacesSection
    model: ModelSection
    train: TrainSection
    classifiers: ClassifiersSection
    openset: OpenSetSection
    projection: ProjectionSection
    dashboard: DashboardSection
    raw: dict = field(default_factory=dict, repr=False)

    @property
    def synthetic(self) -> bool:
        return self.experiment.synthetic

    def source(self, name: str) -> DatabaseSource:
        try:
            return self.sources.databases[name]
        except KeyError:
            raise ConfigError(self.path, "sources", f"no database named {name!r} (configured: {', '.join(self.sources.databases) or 'none'})") from None

    def training_key(self, approach: str) -> dict:
        """What a run's identity depends on: approach, training sections, sources, seed."""
        return {
            "approach": approach,
            "faces": self.faces.keyed() | {"workers": None, "blazeface_model": None},
            "model": dataclasses.asdict(self.model),
            "train": dataclasses.asdict(self.train) | {"num_workers": None, "device": None},
            "sources": {
                "superset": list(self.sources.superset),
                "databases": {n: {"adapter": s.adapter, "root": str(s.root), "options": s.options}
                              for n, s in sorted(self.sources.databases.items()) if n in self.sources.superset},
            },
            "taxonomy": self.taxonomy.ids,
            "seed": self.experiment.seed,
        }

    def run_id(self, approach: str) -> str:
        from .approaches import approach_names

        if approach not in approach_names():
            raise ConfigError(self.path, "approach",
                              f"unknown approach {approach!r} (choose from {', '.join(approach_names())})")
        return f"{approach}-{_short_hash(self.training_key(approach))}"

    def to_json(self) -> str:
        """The resolved config as JSON (stored with every run)."""
        out: dict[str, Any] = {"path": str(self.path), "taxonomy": self.taxonomy.to_dict()}
        for name in SECTIONS:
            out[name] = dataclasses.asdict(getattr(self, name))
        out["sources"] = {
            "superset": list(self.sources.superset),
            "cross_db": list(self.sources.cross_db),
            "databases": {n: {"adapter": s.adapter, "root": str(s.root), "options": s.options}
                          for n, s in self.sources.databases.items()},
        }
        return json.dumps(out, sort_keys=True, default=str)

    def config_hash(self) -> str:
        return _short_hash(json.loads(self.to_json()) | {"path": None})


def _short_hash(obj: Any, n: int = 10) -> str:
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:n]


def _check_value(file: Path, key: str, value: Any, hint: Any, f: dataclasses.Field) -> Any:
    rng = f.metadata.get("range")
    if hint is tuple or typing.get_origin(hint) is tuple:
        if not isinstance(value, list):
            raise ConfigError(file, key, f"expected a list, got {value!r}")
        if rng is not None and rng.items is not None:
            value = [_checked_number(file, key, v, rng.items.__name__, rng) for v in value]
        return tuple(value)
    if hint in (int, float):
        return _checked_number(file, key, value, hint.__name__, rng or _UNDECLARED)
    if hint is str and not isinstance(value, str):  # unlike adapter options, no list of strings here
        raise ConfigError(file, key, f"expected a string, got {value!r}")
    kind = f.metadata.get("choices") or {bool: "bool", int: "int", float: "float", str: "str"}.get(hint)
    if kind is None:
        return value
    try:
        return coerce_kind(kind, value)
    except ValueError as exc:
        raise ConfigError(file, key, str(exc)) from None


def _build_section(cls, data: Any, file: Path, section: str):
    if data is None:
        return cls()
    if not isinstance(data, dict):
        raise ConfigError(file, f"[{section}]", "expected a table")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(file, f"[{section}] {unknown[0]}", f"unknown key (known: {', '.join(fields)})")
    values = {k: _check_value(file, f"[{section}] {k}", v, hints[k], fields[k]) for k, v in data.items()}
    return cls(**values)


_UNDECLARED = Range(0)  # a numeric field without `_range` metadata: finite and not negative


def _checked_number(file: Path, key: str, value: Any, kind: str, rng: Range) -> int | float:
    """`value` as an int/float inside `rng`, else a ConfigError naming file, key, value and range."""
    try:
        number = coerce_kind(kind, value)
    except ValueError as exc:
        raise ConfigError(file, key, f"{exc} (allowed: {rng.describe()})") from None
    problem = rng.problem(number)
    if problem:
        raise ConfigError(file, key, problem)
    return number


def _resolve_path(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p)


def _build_sources(data: Any, file: Path) -> SourcesSection:
    from data_catalog.databases import ADAPTERS
    from data_catalog.databases.options import coerce_option

    if data is None:
        return SourcesSection()
    if not isinstance(data, dict):
        raise ConfigError(file, "[sources]", "expected a table")
    base = file.parent
    databases: dict[str, DatabaseSource] = {}
    lists = {}
    for key, value in data.items():
        if key in ("superset", "cross_db"):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(file, f"[sources] {key}", "expected a list of database names")
            lists[key] = tuple(value)
            continue
        if not isinstance(value, dict):
            raise ConfigError(file, f"[sources] {key}", "expected a [sources.NAME] table with at least `root`")
        adapter_name = value.get("adapter", key)
        adapter = ADAPTERS.get(adapter_name)
        if adapter is None:
            raise ConfigError(file, f"[sources.{key}] adapter",
                              f"unknown database adapter {adapter_name!r} (known: {', '.join(sorted(ADAPTERS))})")
        if "root" not in value or not isinstance(value["root"], str):
            raise ConfigError(file, f"[sources.{key}] root", "missing: the folder holding this database")
        options = {}
        for opt, v in value.items():
            if opt in ("adapter", "root"):
                continue
            try:
                options[opt] = coerce_option(adapter, opt, v, base)
            except ValueError as exc:
                raise ConfigError(file, f"[sources.{key}] {opt}", str(exc)) from None
        databases[key] = DatabaseSource(key, adapter_name, _resolve_path(base, value["root"]), options)
    superset = lists.get("superset", ())
    cross_db = lists.get("cross_db", ())
    for key, names in (("superset", superset), ("cross_db", cross_db)):
        for n in names:
            if n not in databases:
                raise ConfigError(file, f"[sources] {key}", f"names {n!r}, which has no [sources.{n}] table")
    overlap = set(superset) & set(cross_db)
    if overlap:
        raise ConfigError(file, "[sources] cross_db", f"{sorted(overlap)[0]!r} is also in the training super-set")
    return SourcesSection(databases, superset, cross_db)


def _build_taxonomy(data: Any, file: Path) -> Taxonomy:
    if data is None:
        return paper_taxonomy()
    if not isinstance(data, dict):
        raise ConfigError(file, "[taxonomy]", "expected a table with `path` or [[taxonomy.class]] entries")
    if "path" in data:
        if set(data) != {"path"}:
            raise ConfigError(file, "[taxonomy]", "give either `path` or [[taxonomy.class]] entries, not both")
        if data["path"] == "paper":
            return paper_taxonomy()
        return Taxonomy.load(_resolve_path(file.parent, data["path"]))
    return Taxonomy.from_dict(data, f"{file} [taxonomy]")


def load_config(path: str | Path) -> ExperimentConfig:
    """Read and validate an experiment config; a ConfigError names file and key."""
    file = Path(path).expanduser().absolute()
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(file, None, "config file not found") from None
    except IsADirectoryError:
        raise ConfigError(file, None, "is a folder, expected an EXPERIMENT.toml file") from None
    except UnicodeDecodeError:
        raise ConfigError(file, None, "not a UTF-8 text file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, None, f"not valid TOML ({exc})") from None
    known = set(SECTIONS) | {"sources", "taxonomy"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(file, f"[{unknown[0]}]", f"unknown section (known: {', '.join(sorted(known))})")
    sections = {name: _build_section(cls, data.get(name), file, name) for name, cls in SECTIONS.items()}
    dash = sections["dashboard"]
    if dash.allowed_roots:
        roots = tuple(str(_resolve_path(file.parent, r)) for r in dash.allowed_roots)
        sections["dashboard"] = dataclasses.replace(dash, allowed_roots=roots)
    faces = sections["faces"]
    if faces.blazeface_model:
        sections["faces"] = dataclasses.replace(faces, blazeface_model=str(_resolve_path(file.parent, faces.blazeface_model)))
    model = sections["model"]
    if model.checkpoint:
        sections["model"] = dataclasses.replace(model, checkpoint=str(_resolve_path(file.parent, model.checkpoint)))
    from .classify import NAMES  # the embedding classifiers (classify imports this module: import late)

    for name, f in (("classifiers", "enabled"),):
        for c in getattr(sections[name], f):
            if c not in NAMES:
                raise ConfigError(file, f"[{name}] {f}", f"unknown classifier {c!r} (choose from {', '.join(NAMES)})")
    return ExperimentConfig(
        path=file,
        sources=_build_sources(data.get("sources"), file),
        taxonomy=_build_taxonomy(data.get("taxonomy"), file),
        raw=data,
        **sections,
    )
