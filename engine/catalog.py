"""The catalog step: scan every database of an experiment config, keep each
video once, and record videos, datasets and problems in the store.

- Roles: databases in `[sources] superset` keep their splits; those in
  `cross_db` are tested whole (every video split "test").
- De-duplication: two records whose files resolve to the same real path are
  one video (DeeperForensics and HifiFace reals *are* FF++ originals). One
  record is kept: the claim with the most test-like split (a split conflict
  is resolved towards test), ties going to the database listed first
  (superset before cross_db). Every duplicate is reported, conflicts apart.
  The kept row lists the other claims' datasets of the same split in
  `videos.also_in`, so per-database test sets keep their reals: query the
  view `video_datasets` for "every video of dataset X".
- Recording replaces all rows of the scanned databases in one transaction,
  so an interrupted write leaves the previous catalog intact.

Public: `collect(cfg, databases=None) -> CatalogReport`,
`record(store, report, cfg=None)`, `record_catalog(cfg, workspace, databases=None)`,
and `record_videos(store, records, role, ...)` for any other list of
`VideoRecord`s (synthetic benchmark, unknown sets). The rows are built and
written by `engine.store.catalog` (`videos_table`, `datasets_table`,
`problems_table`, `replace_catalog`).
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Sequence

import pyarrow as pa

from data_catalog.databases import ADAPTERS, Problem, ScanResult
from data_catalog.databases.layout import SPLIT_RANK
from data_catalog.errors import AtlasError, ConfigError
from data_catalog.names import path_to_text
from data_catalog.records import VideoRecord

from .config import ExperimentConfig
from .store import Store
from .store.catalog import datasets_table, problems_table, replace_catalog, videos_table

ROLES = ("superset", "cross_db")


@dataclass
class Duplicate:
    """One file claimed by several records; `kept` is the video id that stays."""

    path: str                          # the resolved real path
    kept: str                          # video id of the kept record
    split: str                         # the kept (resolved) split
    claims: list[tuple[str, str]]      # (video id, split) of every claim, kept first

    @property
    def conflict(self) -> bool:
        return len({s for _, s in self.claims}) > 1

    @property
    def database(self) -> str:
        return self.kept.split("/", 1)[0]

    @property
    def also_in(self) -> list[str]:
        """Datasets of the other claims in the kept split: the video still belongs
        to them (store column `videos.also_in`, view `video_datasets`)."""
        own = f"{self.database}/{self.split}"
        return sorted({f"{vid.split('/', 1)[0]}/{split}" for vid, split in self.claims[1:]
                       if split == self.split} - {own})

    def message(self) -> str:
        claims = ", ".join(f"{vid} ({split})" for vid, split in self.claims)
        what = "split conflict" if self.conflict else "same video"
        return f"{what}: claimed by {claims}; kept {self.kept} in {self.split}"

    def to_json(self) -> dict:
        return {"path": path_to_text(self.path), "kept": self.kept, "split": self.split, "also_in": self.also_in,
                "claims": [{"video_id": v, "split": s} for v, s in self.claims]}


@dataclass
class DatabaseScan:
    name: str
    adapter: str
    role: str
    root: Path
    synthetic: bool
    result: ScanResult                              # what the adapter found (cross-db: split test)
    records: list[VideoRecord] = field(default_factory=list)  # kept after de-duplication
    shared: list[VideoRecord] = field(default_factory=list)   # kept by another database, same split (also_in)

    def counts(self) -> dict[str, dict[str, int]]:
        c = Counter((r.split, r.true_class or "unlabelled") for r in self.records)
        out: dict[str, dict[str, int]] = {}
        for (split, cls), n in sorted(c.items(), key=lambda kv: (SPLIT_RANK.get(kv[0][0], 3), kv[0])):
            out.setdefault(split, {})[cls] = n
        return out

    def to_json(self) -> dict:
        return {"database": self.name, "adapter": self.adapter, "role": self.role, "root": str(self.root),
                "synthetic": self.synthetic, "counts": self.counts(),
                "found": len(self.result.records), "kept": len(self.records), "shared": len(self.shared),
                "problems": [p.to_json() for p in self.result.problems]}


@dataclass
class CatalogReport:
    scans: list[DatabaseScan]
    duplicates: list[Duplicate]
    not_scanned: list[str] = field(default_factory=list)  # configured but in neither superset nor cross_db
    config_problems: list[Problem] = field(default_factory=list)  # the taxonomy's (taxonomy_problems)

    @property
    def records(self) -> list[VideoRecord]:
        return [r for s in self.scans for r in s.records]

    def also_in(self) -> dict[str, list[str]]:
        """Kept video id -> other datasets it belongs to (same file, same split)."""
        return {d.kept: d.also_in for d in self.duplicates if d.also_in}

    @property
    def split_conflicts(self) -> list[Duplicate]:
        return [d for d in self.duplicates if d.conflict]

    def scan(self, name: str) -> DatabaseScan:
        for s in self.scans:
            if s.name == name:
                return s
        raise KeyError(name)

    def problems(self) -> list[tuple[str, Problem]]:
        """(database, problem) for every adapter problem, and for every duplicate and
        split conflict once per reported database that claims the video; the taxonomy's
        problems are filed under the first reported database."""
        out = [(s.name, p) for s in self.scans for p in s.result.problems]
        if self.scans:
            out += [(self.scans[0].name, p) for p in self.config_problems]
        names = [s.name for s in self.scans]
        for d in self.duplicates:
            # filed under every reported database that claims the video, so a
            # partial re-record replaces exactly its own rows
            claimants = dict.fromkeys(v.split("/", 1)[0] for v, _ in d.claims)
            for db in (c for c in claimants if c in names):
                out.append((db, Problem("split_conflict" if d.conflict else "duplicate", d.path, d.message())))
        return out

    def to_json(self) -> dict:
        return {
            "databases": [s.to_json() for s in self.scans],
            "duplicates": [d.to_json() for d in self.duplicates if not d.conflict],
            "split_conflicts": [d.to_json() for d in self.split_conflicts],
            "not_scanned": self.not_scanned,
            "config_problems": [p.to_json() for p in self.config_problems],
            "videos": len(self.records),
            "protocol": protocol_summary(self),
            "leakage": [leak.to_json() for leak in leakage(self)],
        }


def roles_of(cfg: ExperimentConfig) -> dict[str, str]:
    """Database name -> role, superset first, in config order."""
    roles = {n: "superset" for n in cfg.sources.superset}
    roles.update({n: "cross_db" for n in cfg.sources.cross_db})
    return roles


def collect(cfg: ExperimentConfig, databases: Iterable[str] | None = None,
            on_database: Callable[[str], None] | None = None) -> CatalogReport:
    """Scan the config's superset and cross-db databases and de-duplicate across them.

    With `databases`, the report holds only those; the others are still
    scanned so that de-duplication sees every claim (a database that cannot
    be scanned then is skipped with a problem, not an error). Fatal input
    problems of a reported database raise `AtlasError`.
    """
    roles = roles_of(cfg)
    if not roles:
        raise ConfigError(cfg.path, "[sources]", "names no databases in superset or cross_db: nothing to catalog")
    wanted = list(roles)
    if databases is not None:
        wanted = list(databases)
        for n in wanted:
            cfg.source(n)  # a clear error for an unknown name
            if n not in roles:
                raise ConfigError(cfg.path, "[sources]", f"database {n!r} is in neither superset nor cross_db")
    scans: list[DatabaseScan] = []
    context_problems: list[Problem] = []
    for name in roles:
        if on_database:
            on_database(name)
        src = cfg.source(name)
        adapter = ADAPTERS[src.adapter]
        try:
            result = adapter.scan(src.root, name=name, options=dict(src.options), taxonomy=cfg.taxonomy)
        except AtlasError as exc:
            if name in wanted:
                raise
            context_problems.append(Problem("not_checked", str(src.root),
                                            f"duplicates against {name!r} not checked: {exc}"))
            continue
        if roles[name] == "cross_db":
            result.records = [r if r.split == "test" else replace(r, split="test") for r in result.records]
        synthetic = bool(cfg.synthetic or src.options.get("synthetic", False))
        scans.append(DatabaseScan(name, src.adapter, roles[name], src.root, synthetic, result))
    duplicates = deduplicate(scans)
    kept = [s for s in scans if s.name in wanted]
    if len(kept) < len(scans):
        names = {s.name for s in kept}
        duplicates = [d for d in duplicates if any(v.split("/", 1)[0] in names for v, _ in d.claims)]
    if kept:  # recorded with the first reported database
        kept[0].result.problems.extend(context_problems)
    skipped = [n for n in cfg.sources.databases if n not in roles]
    found = [r for s in scans for r in s.result.records]
    return CatalogReport(kept, duplicates, skipped, taxonomy_problems(cfg, found))


def taxonomy_problems(cfg: ExperimentConfig, records: Sequence[VideoRecord]) -> list[Problem]:
    """Taxonomy mistakes that would otherwise pass silently, each fake then becoming `unseen-fake`:
    a fake class with no sources that no video is labelled with (a manifest's `class` column can
    name such a class), a source naming a database that is neither configured nor an adapter,
    and sources of two classes that match the same videos (`Taxonomy.class_for` takes the first)."""
    tax = cfg.taxonomy
    known = set(cfg.sources.databases) | set(ADAPTERS)
    used = {r.true_class for r in records}
    out: list[Problem] = []
    fakes = tax.classes[1:]
    for i, cls in enumerate(fakes):
        if not cls.sources and cls.id not in used:
            out.append(Problem("class_without_sources", tax.origin,
                               f"class {cls.id!r} has no sources and no video is labelled with it: "
                               "add 'database:method' sources, or no video will ever be this class"))
        for db, method in cls.sources:
            if db != "*" and db not in known:
                out.append(Problem("unknown_database", tax.origin,
                                   f"class {cls.id!r}: source '{db}:{method}' names database {db!r}, which is neither "
                                   f"configured ({', '.join(cfg.sources.databases) or 'none'}) nor an adapter: "
                                   "it matches no video, so these fakes become 'unseen-fake'"))
            for other in fakes[i + 1:]:
                for db2, method2 in other.sources:
                    if method2 == method and (db2 == db or "*" in (db, db2)):
                        out.append(Problem("source_claimed_twice", tax.origin,
                                           f"source '{db}:{method}' of class {cls.id!r} and '{db2}:{method2}' of "
                                           f"class {other.id!r} match the same videos; they all go to {cls.id!r} "
                                           "(the first)"))
    return out


def _real_path(path, real_dirs: dict[str, str]) -> str:
    """os.path.realpath, resolving each folder once per call site's `real_dirs`
    cache (thousands of videos share a few folders)."""
    head, tail = os.path.split(os.path.abspath(path))
    real_dir = real_dirs.get(head)
    if real_dir is None:
        real_dir = real_dirs[head] = os.path.realpath(head)
    full = os.path.join(real_dir, tail)
    return os.path.realpath(full) if os.path.islink(full) else full


def deduplicate(scans: Sequence[DatabaseScan]) -> list[Duplicate]:
    """Fill each scan's `records` with the records it keeps; return the duplicates.

    Records are the same video when their files resolve to the same real path.
    The kept claim is the most test-like split, ties to the earlier database
    (and, within one database, the earlier record).
    """
    groups: dict[str, list[tuple[int, int, VideoRecord]]] = defaultdict(list)
    shared: set[tuple[int, int]] = set()
    real_dirs: dict[str, str] = {}
    for d, scan in enumerate(scans):
        for i, rec in enumerate(scan.result.records):
            groups[_real_path(rec.path, real_dirs)].append((d, i, rec))
    dropped: set[tuple[int, int]] = set()
    duplicates: list[Duplicate] = []
    for real, claims in groups.items():
        if len(claims) == 1:
            continue
        best = max(claims, key=lambda c: (SPLIT_RANK.get(c[2].split, 3), -c[0], -c[1]))
        others = [c for c in claims if c is not best]
        dropped.update((d, i) for d, i, _ in others)
        shared.update((d, i) for d, i, r in others if r.split == best[2].split)
        duplicates.append(Duplicate(real, best[2].video_id, best[2].split,
                                    [(best[2].video_id, best[2].split)] + [(r.video_id, r.split) for _, _, r in others]))
    for d, scan in enumerate(scans):
        scan.records = [r for i, r in enumerate(scan.result.records) if (d, i) not in dropped]
        scan.shared = [r for i, r in enumerate(scan.result.records) if (d, i) in shared]
    duplicates.sort(key=lambda x: x.kept)
    return duplicates


# --- the store ------------------------------------------------------------------

def _datasets(records: Sequence[VideoRecord], role_of: Callable[[str], str], synthetic_of: Callable[[str], bool],
              source_of: Callable[[str], str], also_in: dict[str, list[str]] | None = None) -> pa.Table:
    """The `datasets` rows of `records`: every dataset a record belongs to (its own and `also_in`),
    labelled when any of its videos is."""
    labelled: dict[str, bool] = {}
    owner: dict[str, tuple[str, str]] = {}
    for r in records:
        owner.setdefault(r.dataset, (r.database, r.split))
        for ds in (also_in or {}).get(r.video_id, ()):
            owner.setdefault(ds, (ds.rsplit("/", 1)[0], r.split))
        for ds in [r.dataset, *(also_in or {}).get(r.video_id, ())]:
            labelled[ds] = labelled.get(ds, False) or r.is_fake is not None
    names = sorted(owner)
    dbs = [owner[d][0] for d in names]
    return datasets_table(names, dbs, [owner[d][1] for d in names], map(role_of, dbs), [labelled[d] for d in names],
                          map(synthetic_of, dbs), map(source_of, dbs))


def record_videos(store: Store, records: Sequence[VideoRecord], role: str, synthetic: bool = False,
                  source: str = "", problems: Sequence[tuple[str, Problem]] = (),
                  replace_databases: Sequence[str] | None = None, con=None) -> int:
    """Record any list of `VideoRecord`s (and their datasets) in one transaction.

    Replaces the rows of every dataset in `records` (and, if given, every row
    of `replace_databases`, problems included). `role` is the datasets' role
    (superset / cross_db / unknown). Pass `con` to write inside an open
    `store.transaction()`. Returns the number of videos written.
    """
    datasets = _datasets(records, lambda _: role, lambda _: synthetic, lambda _: source)
    replace_catalog(store, videos_table(records, synthetic), datasets, problems_table(problems),
                    list(replace_databases or ()), datasets.column("dataset").to_pylist(), con=con)
    return len(records)


def record(store: Store, report: CatalogReport, cfg: ExperimentConfig | None = None) -> int:
    """Write the report's kept videos, their datasets and every problem, replacing
    all rows of the scanned databases, in ONE transaction. Returns videos written."""
    scans = {s.name: s for s in report.scans}
    records = report.records
    synthetic = [scans[r.database].synthetic for r in records]
    also_in = report.also_in()
    datasets = _datasets(records, lambda db: scans[db].role, lambda db: scans[db].synthetic,
                         lambda db: str(scans[db].root), also_in)
    replace_catalog(store, videos_table(records, synthetic, also_in), datasets, problems_table(report.problems()),
                    list(scans))
    return len(records)


def record_catalog(cfg: ExperimentConfig, workspace, databases: Iterable[str] | None = None) -> CatalogReport:
    """Scan and record in one call (the caller holds the workspace lock)."""
    report = collect(cfg, databases)
    record(workspace.store(), report, cfg)
    return report


# --- the protocol in the paper's terms, and leakage across splits --------------------------------

def protocol_summary(report: CatalogReport) -> list[dict]:
    """Per database and split: reals, fakes per class, identities (the paper's counting)."""
    rows = []
    for scan in report.scans:
        by_split: dict[str, list[VideoRecord]] = {}
        for r in scan.records + scan.shared:
            by_split.setdefault(r.split, []).append(r)
        for split in sorted(by_split, key=lambda s: SPLIT_RANK.get(s, 3)):
            recs = by_split[split]
            fakes = Counter(r.true_class or "unlabelled" for r in recs if r.is_fake)
            rows.append({"database": scan.name, "split": split, "reals": sum(r.is_fake is False for r in recs),
                         "fakes": sum(fakes.values()), "fakes by class": dict(sorted(fakes.items())),
                         "identities": len({r.identity for r in recs if r.identity})})
    return rows


@dataclass
class Leak:
    """Ids shared between training fakes and reals of a later split (val or test)."""
    kind: str            # 'identity' (the fake's person/target) or 'source' (a video it was made from)
    train_database: str
    other_database: str
    other_split: str
    ids: list[str]
    n_train_fakes: int
    n_reals: int

    def message(self) -> str:
        shown = ", ".join(self.ids[:5]) + (f", ... ({len(self.ids)} in all)" if len(self.ids) > 5 else "")
        return (f"{len(self.ids)} {self.kind} id(s) of {self.n_train_fakes} training fakes of {self.train_database} "
                f"are also {self.n_reals} {self.other_split} reals of {self.other_database}: {shown}")

    def to_json(self) -> dict:
        return dataclasses.asdict(self) | {"ids": [path_to_text(i) for i in self.ids]}


def leakage(report: CatalogReport) -> list[Leak]:
    """Training fakes whose identity (target) or source ids are reals of a val or test split.

    Ids are compared within an adapter's `id_namespace` (FF++, HifiFace and DeeperForensics share FF++'s
    video numbers), else within one database. A leak means a person or a source video the model was
    trained on as fake is tested as real, which flatters or spoils the test split's FNR.
    """
    def space(scan: DatabaseScan) -> str:
        return getattr(ADAPTERS.get(scan.adapter), "id_namespace", None) or scan.name

    # (namespace, id) -> [(database, split, record)] of reals in val/test
    real_ids: dict[tuple[str, str], list[tuple[str, str, VideoRecord]]] = {}
    for scan in report.scans:
        for r in scan.records + scan.shared:
            if r.is_fake is False and r.split in ("val", "test") and r.identity:
                real_ids.setdefault((space(scan), str(r.identity)), []).append((scan.name, r.split, r))
    found: dict[tuple, dict] = {}
    for scan in report.scans:
        for r in scan.records:
            if not r.is_fake or r.split != "train":
                continue
            ids = [("identity", str(r.identity))] if r.identity else []
            ids += [("source", str(s)) for s in (r.source_ids or ()) if s and str(s) != str(r.identity)]
            for kind, token in ids:
                for db, split, real in real_ids.get((space(scan), token), ()):
                    entry = found.setdefault((kind, scan.name, db, split), {"ids": set(), "fakes": set(), "reals": set()})
                    entry["ids"].add(token)
                    entry["fakes"].add(r.video_id)
                    entry["reals"].add(real.video_id)
    return [Leak(kind, train_db, db, split, sorted(v["ids"]), len(v["fakes"]), len(v["reals"]))
            for (kind, train_db, db, split), v in sorted(found.items(), key=lambda kv: (SPLIT_RANK.get(kv[0][3], 3),
                                                                                        kv[0]))]
