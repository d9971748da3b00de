"""The experiment config: one TOML file that every command takes (`--config`).

Sections: [experiment] [sources] [taxonomy] [faces] [model] [train]
[classifiers] [projection] [dashboard]. Relative paths are relative to the
file. Validation happens at load and names the file, the key and the problem.
Each section is a dataclass below; its field defaults are the paper's values.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data_catalog.databases.options import coerce_kind
from data_catalog.errors import ConfigError
from data_catalog.taxonomy import Taxonomy, paper_taxonomy



def _choices(*values: str) -> dict:
    return {"choices": values}


@dataclass(frozen=True)
class ExperimentSection:
    name: str = "experiment"
    synthetic: bool = False  # data is the synthetic benchmark: labelled so everywhere
    seed: int = 0


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
    frames_per_video: int = 15
    crop_size: int = 224
    box_scale: float = 1.3
    detector: str = field(default="short_range", metadata=_choices("short_range", "full_range"))
    tiling: str = field(default="auto", metadata=_choices("off", "auto", "always"))
    min_confidence: float = 0.5
    thumbnail_size: int = 64
    crop_format: str = field(default="png", metadata=_choices("png", "jpg"))
    crop_quality: int = 95
    workers: int = 0  # 0 = one per core
    blazeface_model: str = ""  # explicit .tflite path; else $DFATLAS_BLAZEFACE, cache, download, wheel

    def settings_key(self) -> str:
        """Short hash of the settings that change the crops (not workers/model path)."""
        keyed = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("workers", "blazeface_model")}
        return _short_hash(keyed)


@dataclass(frozen=True)
class ModelSection:
    backbone: str = "legacy_xception"
    pretrained: bool = True
    checkpoint: str = ""  # local weights file for the backbone (offline path)
    embedding_dim: int = 64
    residual_input: bool = False  # extra SRM-style high-pass residual channels
    input_size: int = 0  # 0 = use the face crop size
    drop_rate: float = 0.0


@dataclass(frozen=True)
class TrainSection:
    epochs: int = 20
    batch_size: int = 16
    lr: float = 2e-4
    weight_decay: float = 0.0
    optimizer: str = field(default="adam", metadata=_choices("adam", "adamw", "sgd"))
    lr_schedule: str = field(default="constant", metadata=_choices("constant", "cosine"))  # paper: constant
    balanced_sampling: bool = False  # class-balanced batches for the real/fake imbalance
    samples_per_class: int = 4  # K of the P x K batches (triplet; balanced sampling)
    augment: bool = False
    num_workers: int = 2
    device: str = "auto"  # auto / cpu / cuda / cuda:N
    precision: str = field(default="auto", metadata=_choices("auto", "fp32", "bf16"))
    compile: bool = False
    channels_last: bool = True
    triplet_margin: float = 0.2
    arcface_scale: float = 64.0
    arcface_real_margin: float = 0.6  # radians
    arcface_fake_margin: float = 0.4  # radians
    max_faces_per_video: int = 0  # 0 = all extracted faces
    seed: int = 0


@dataclass(frozen=True)
class ClassifiersSection:
    enabled: tuple = ("knn", "lr", "svm")
    knn_k: int = 14
    lr_c: float = 0.001
    svm_c: float = 0.01
    svm_kernel: str = field(default="rbf", metadata=_choices("rbf", "linear"))  # linear: LinearSVC + calibration (large sets)
    model_selection: bool = False  # pick hyper-parameters by CV on the validation split only
    cv_folds: int = 5
    knn_k_grid: tuple = (1, 3, 5, 9, 14, 21, 31)
    c_grid: tuple = (0.0001, 0.001, 0.01, 0.1, 1.0, 10.0)


@dataclass(frozen=True)
class ProjectionSection:
    reference: str = "superset/test"  # dataset(s) the map is fitted on
    perplexity: float = 30.0
    n_iter: int = 500
    early_exaggeration_iter: int = 250
    metric: str = field(default="euclidean", metadata=_choices("euclidean", "cosine"))
    max_reference_points: int = 20000
    seed: int = 0
    n_jobs: int = 0  # 0 = all cores


@dataclass(frozen=True)
class DashboardSection:
    allowed_roots: tuple = ()  # folders the Analyse page may read
    max_upload_mb: int = 200
    default_level: str = field(default="video", metadata=_choices("video", "frame"))
    host: str = "127.0.0.1"
    port: int = 8501


SECTIONS = {
    "experiment": ExperimentSection,
    "faces": FacesSection,
    "model": ModelSection,
    "train": TrainSection,
    "classifiers": ClassifiersSection,
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
            "faces": dataclasses.asdict(self.faces) | {"workers": None, "blazeface_model": None},
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
    if hint is tuple or typing.get_origin(hint) is tuple:
        if not isinstance(value, list):
            raise ConfigError(file, key, f"expected a list, got {value!r}")
        return tuple(value)
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
    obj = cls(**values)
    for f in dataclasses.fields(cls):
        v = getattr(obj, f.name)
        if hints[f.name] in (int, float) and not isinstance(v, bool) and v < 0:
            raise ConfigError(file, f"[{section}] {f.name}", f"must not be negative, got {v!r}")
    return obj


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
