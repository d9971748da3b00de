"""One run record: what a trained (or imported) run is, read from the store.

Every reader — evaluation, classify, embed, projection, analysis, the demo
and the dashboard — gets a run as a `RunRecord` from `read_run` /
`read_runs`, and rebuilds a stored config section with `RunRecord.section`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

from data_catalog.errors import AtlasError

from .approaches import get_approach
from .store import Store
from .store import runs as run_table
from .store.catalog import dataset_databases


class UnknownRun(AtlasError):
    """A run id that the store does not hold."""


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    approach: str
    classes: tuple[str, ...]            # taxonomy order used by the run; classes[0] == 'real'
    superset: tuple[str, ...]           # databases of the training super-set
    cross_db: tuple[str, ...]           # cross-database sets named by its config
    config: dict = field(default_factory=dict, compare=False, hash=False)  # the stored config sections
    status: str = "finished"
    seed: int = 0
    settings_key: str | None = None     # face settings it was trained on
    embedding_dim: int | None = None
    backbone: str | None = None
    synthetic: bool = False
    config_hash: str | None = None
    code_revision: str | None = None
    versions: dict = field(default_factory=dict, compare=False, hash=False)
    pretrained_source: str | None = None
    taxonomy_json: str | None = field(default=None, compare=False, hash=False)  # names and colours of its classes

    @property
    def kind(self):
        """The registered approach object (engine.approaches)."""
        return get_approach(self.approach)

    @property
    def validation_datasets(self) -> tuple[str, ...]:
        """The super-set's validation split: where classifiers are fitted and θ is set."""
        return self.split_datasets("val")

    def split_datasets(self, split: str) -> tuple[str, ...]:
        return tuple(f"{db}/{split}" for db in self.superset)

    @property
    def imported(self) -> dict | None:
        """The `[import]` record of a run of imported embeddings (file, granularity, ...), else None."""
        value = self.config.get("import") if isinstance(self.config, dict) else None
        return value if isinstance(value, dict) else None

    @property
    def default_classifier(self) -> str:
        return self.kind.default_classifier

    def class_name(self, idx: int) -> str:
        return "fake" if idx < 0 else (self.classes[idx] if idx < len(self.classes) else f"class-{idx}")

    def taxonomy(self):
        """The run's stored taxonomy (`data_catalog.taxonomy.Taxonomy`: names, colours), or None without one."""
        from data_catalog.taxonomy import Taxonomy

        tax = _json(self.taxonomy_json, None) or (self.config.get("taxonomy") if isinstance(self.config, dict) else None)
        try:
            return Taxonomy.from_dict(tax, f"run {self.run_id}") if tax else None
        except (AtlasError, ValueError, TypeError):
            return None

    def style(self):
        """Names, colours and marker symbols of the run's classes (`engine.map_view.ClassStyle`, their one home)."""
        from .map_view import ClassStyle

        return ClassStyle.for_taxonomy(self.classes, self.taxonomy())

    def display_names(self) -> dict[str, str]:
        """Class id -> the name people read (the run's stored taxonomy; the id where it has none)."""
        return dict(self.style().names)

    def section(self, cls, name: str, fallback=None):
        """The run's stored `[name]` config section as `cls` (else `fallback`, else the defaults).

        Keys this dfatlas does not know are left out; lists become tuples; options added after the run was
        stored (a section's `EARLIER_VALUES`) take the value that reproduces how the run was made.
        """
        stored = self.config.get(name) if isinstance(self.config, dict) else None
        if not stored:
            return fallback if fallback is not None else cls()
        known = {f.name for f in dataclasses.fields(cls)}
        # an option added after the run was stored means what the run was made with (its earlier value)
        earlier = {k: v for k, v in getattr(cls, "EARLIER_VALUES", {}).items() if k not in stored}
        return cls(**earlier, **{k: tuple(v) if isinstance(v, list) else v for k, v in stored.items() if k in known})


def _json(text, default):
    try:
        return json.loads(text) if text else default
    except (TypeError, ValueError):
        return default


def _int_or_none(v):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else int(v)


def _str_or_none(v):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)


def read_runs(store: Store, run_ids=None) -> dict[str, RunRecord]:
    """The runs in the store, oldest first (or `run_ids`, each of which must exist)."""
    df = run_table.run_rows(store, run_ids)
    if run_ids:
        missing = [r for r in run_ids if r not in set(df.run_id)]
        if missing:
            raise unknown_run(store, missing[0])
    superset_default = cross_default = None
    out = {}
    for r in df.to_dict("records"):  # one row per run: a handful
        cfg = _json(r.get("config_json"), {})
        cfg = cfg if isinstance(cfg, dict) else {}
        src = cfg.get("sources", {}) if isinstance(cfg.get("sources"), dict) else {}
        superset, cross = tuple(src.get("superset", ())), tuple(src.get("cross_db", ()))
        if not superset:  # a run stored without its sources: the catalog's roles fill the gap
            if superset_default is None:
                superset_default = tuple(dataset_databases(store, "superset"))
            superset = superset_default
        if not cross:
            if cross_default is None:
                cross_default = tuple(dataset_databases(store, "cross_db"))
            cross = cross_default
        out[r["run_id"]] = RunRecord(
            run_id=r["run_id"], approach=r["approach"], classes=tuple(r["classes"]), superset=superset,
            cross_db=cross, config=cfg, status=r["status"], seed=_int_or_none(r.get("seed")) or 0,
            settings_key=_str_or_none(r.get("settings_key")), embedding_dim=_int_or_none(r.get("embedding_dim")),
            backbone=_str_or_none(r.get("backbone")), synthetic=bool(r.get("synthetic")),
            config_hash=_str_or_none(r.get("config_hash")), code_revision=_str_or_none(r.get("code_revision")),
            versions=_json(r.get("versions_json"), {}), pretrained_source=_str_or_none(r.get("pretrained_source")),
            taxonomy_json=_str_or_none(r.get("taxonomy_json")))
    return out


def read_run(store: Store, run_id: str) -> RunRecord:
    """One run, or `UnknownRun` listing the runs the store holds."""
    return read_runs(store, [run_id])[run_id]


def unknown_run(store: Store, run_id: str) -> UnknownRun:
    known = run_table.run_ids_with_status(store)
    listing = ", ".join(f"{r.run_id} ({r.status})" for r in known.itertuples()) or "none — train one first"
    return UnknownRun(f"unknown run id {run_id!r}; runs in this store: {listing}")


def config_runs(store: Store, cfg, run: str | None = None, need: str | None = "finished") -> list[str]:
    """`--run RUN` (which must exist), else the config's runs that the store holds (with status `need`)."""
    from .approaches import approach_names

    if run:
        read_run(store, run)
        return [run]
    ids = [cfg.run_id(a) for a in approach_names(trainable_only=True)]
    have = read_runs(store)
    ok = [r for r in ids if r in have and (not need or have[r].status == need)]
    if not ok:
        raise AtlasError(f"no {need + ' ' if need else ''}runs of {cfg.path.name} in this store: "
                         "train them first (`dfatlas train --config CONFIG`)")
    return ok


def run_overview(store: Store, run_ids=None) -> "pd.DataFrame":
    """The runs as `dfatlas runs` lists them (and `dfatlas.Atlas.runs` returns them), oldest first:
    run_id, approach, label, backbone, status, best_epoch (counted from 1, as the dashboard shows it),
    epochs_done, embedding_dim, classifiers (with predictions, menu order), default_classifier (the one
    Tables 1/2 use), maps, faces (embedded), synthetic, imported (per-face / per-video, else None)."""
    import pandas as pd

    from .approaches import choose_classifier, display_label
    from .classify import classifier_order

    records = read_runs(store, run_ids)
    rows = run_table.run_listing(store)
    rows = rows.loc[rows["run_id"].isin(list(records))].reset_index(drop=True)
    clfs = [classifier_order(list(c)) for c in rows["classifiers"]]
    imported = [(records[r].imported or {}).get("granularity") for r in rows["run_id"]]
    return pd.DataFrame({
        "run_id": rows["run_id"].astype(object), "approach": rows["approach"].astype(object),
        "label": [display_label(a, "native") for a in rows["approach"]],
        "backbone": rows["backbone"].astype(object), "status": rows["status"].astype(object),
        "best_epoch": pd.array([None if pd.isna(b) or b < 0 else int(b) + 1 for b in rows["best_epoch"]], "Int64"),
        "epochs_done": pd.array(rows["epochs_done"], "Int64"),
        "embedding_dim": pd.array(rows["embedding_dim"], "Int64"),
        "classifiers": clfs,
        "default_classifier": [choose_classifier(a, c) if c else None for a, c in zip(rows["approach"], clfs)],
        "maps": rows["maps"].astype(int), "faces": rows["n_embedded"].astype(int),
        "synthetic": rows["synthetic"].astype(bool),
        "imported": [None if g is None else f"per-{g}" for g in imported],
    })
