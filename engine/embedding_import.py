"""Any detector's embeddings as a run: `dfatlas import-embeddings` (and `dfatlas.Atlas.analyze` on such a run).

A file of per-face (or per-video) embeddings with ids, labels, classes, identities and splits
(`engine.embedding_file`: the schema, reading and checking) becomes a run of the `external` approach
(`engine.approaches.external`): nothing is trained; the run's kNN / LR / SVM are fitted on its super-set
validation rows exactly as for a metric head (`engine.classify.classify_run`), θ, Tables 1/2 and Compare
read it like any run, and its t-SNE map is `engine.projection.project_run`'s. An unknown set's embeddings
imported the same way (`import_unknown_set`) go through the analysis' own steps after the embedding (the
run's classifiers refitted, the run's map, `engine.analysis.build_report`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from data_catalog.errors import AtlasError
from data_catalog.names import printable
from data_catalog.records import REAL, UNSEEN_FAKE
from data_catalog.taxonomy import Taxonomy

from .config import ClassifiersSection, ProjectionSection
from .embedding_file import (DEFAULT_DATABASE, EmbeddingFile, check_against_store, face_ids_of, faces_table,
                             read_embedding_file, statuses_table, store_rows, videos_table)

APPROACH = "external"


# --- a run -------------------------------------------------------------------------------

@dataclass
class ImportSummary:
    """What `import_run` did."""
    run_id: str
    status: str                  # imported / already imported
    rows: int
    videos: int
    granularity: str
    embedding_dim: int
    classes: list[str]
    superset: list[str]
    cross_db: list[str]
    classifiers: list[dict] = field(default_factory=list)
    projection_id: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _classes(f: EmbeddingFile, rows: pd.DataFrame, superset: list[str], taxonomy: Taxonomy | None) -> list[str]:
    """The run's classes, real first: the config's taxonomy, else the export's, else the super-set's fake
    classes in sorted order."""
    if taxonomy is not None:
        return list(taxonomy.ids)
    if isinstance(f.metadata.get("classes"), list) and f.metadata["classes"][:1] == [REAL]:
        return [str(c) for c in f.metadata["classes"]]
    fakes = rows.loc[rows["database"].isin(superset) & (rows["is_fake"] == True), "true_class"]  # noqa: E712
    return [REAL] + sorted(set(fakes.dropna()) - {UNSEEN_FAKE, REAL})


def _roles(f: EmbeddingFile, rows: pd.DataFrame, superset, cross_db) -> tuple[list[str], list[str]]:
    """(super-set, cross-db) databases: as given, else the export's (the run's own), else the file's `role`
    column, else the databases with validation rows; every other database is a cross-database set."""
    from .analysis.paths import UNKNOWN_DB

    databases = list(dict.fromkeys(rows["database"].astype(str)))
    missing = [d for d in list(superset or ()) + list(cross_db or ()) if d not in databases]
    if missing:
        raise AtlasError(f"{f.path}: holds no rows of database {printable(missing[0])!r} "
                         f"(databases in the file: {', '.join(databases)})")
    if superset:
        sup, cross = list(superset), list(cross_db or ())
    elif isinstance(f.metadata.get("superset"), list):
        sup = [d for d in f.metadata["superset"] if d in databases]
        cross = [d for d in f.metadata.get("cross_db", []) if d in databases]
    elif rows["role"].notna().any():
        by_db = rows.groupby("database")["role"].agg(lambda r: set(r.dropna()))
        mixed = [d for d, r in by_db.items() if len(r) > 1]
        if mixed:
            raise AtlasError(f"{f.path}: database {printable(mixed[0])!r} has rows of several roles")
        sup = [d for d in databases if by_db.get(d) == {"superset"}]
        cross = [d for d in databases if by_db.get(d) == {"cross_db"}]
    else:
        with_val = set(rows.loc[rows["split"] == "val", "database"])
        sup, cross = [d for d in databases if d in with_val], []
    cross += [d for d in databases if d not in sup and d not in cross and d != UNKNOWN_DB]
    if not sup:
        raise AtlasError(f"{f.path}: no training super-set: give --superset DB (the databases whose val rows the "
                         "classifiers are fitted on and θ is set on), a 'role' column, or val rows")
    return sup, cross


def _sections(f: EmbeddingFile, cfg) -> tuple[ClassifiersSection, ProjectionSection, int]:
    """[classifiers], [projection] and the seed: the config's, else the export's (its classifiers as they
    were fitted), else the defaults."""
    from .classify import section_of_requests

    if cfg is not None:
        return cfg.classifiers, cfg.projection, cfg.experiment.seed

    def section(cls, name):
        stored = f.metadata.get(name)
        if not isinstance(stored, dict):
            return cls()
        known = {x.name for x in dataclasses.fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in stored.items() if k in known})

    fits = f.metadata.get("fits")
    seed = f.metadata.get("seed", 0)
    if isinstance(fits, dict) and fits and all(isinstance(r, dict) for r in fits.values()):
        classifiers = section_of_requests(fits)
        seed = next(iter(fits.values())).get("seed", seed)
    else:
        classifiers = section(ClassifiersSection, "classifiers")
    return classifiers, section(ProjectionSection, "projection"), int(seed) if isinstance(seed, int) else 0


def _check_validation(f: EmbeddingFile, rows: pd.DataFrame, X: np.ndarray, classes: list[str], superset,
                      section: ClassifiersSection) -> None:
    """The super-set's validation rows must support classifiers and θ — checked before anything is written."""
    from .classify import ValSplit, fold_count, identity_groups

    index = {c: i for i, c in enumerate(classes)}
    val = (rows["database"].isin(superset) & (rows["split"] == "val")).to_numpy()
    y = rows["true_class"].map(index).fillna(-1).astype(np.int64).to_numpy()
    keep = val & (y >= 0)
    if not (keep & (y == 0)).any() or not (keep & (y > 0)).any():
        raise AtlasError(f"{f.path}: the super-set's validation rows ({', '.join(f'{d}/val' for d in superset)}) need "
                         "reals and fakes of the run's classes: classifiers are fitted there and θ is set there")
    sub = rows.loc[keep]
    groups = identity_groups(sub["video_id"].to_numpy(), sub["identity"].tolist(), sub["source_ids"].tolist())
    try:
        fold_count(ValSplit(X[keep], y[keep], groups, [], [], len(classes), sub["video_id"].to_numpy()),
                   section.cv_folds)
    except AtlasError as exc:
        raise AtlasError(f"{f.path}: {exc}") from None


def import_key(digest: str) -> str:
    """The face-settings key of an import's faces (the file's digest: its faces are its own)."""
    return "import-" + digest[:10]


def import_run(workspace, path: str | Path, cfg=None, database: str = DEFAULT_DATABASE, superset=None,
               cross_db=None, name: str | None = None, replace: bool = False, project: bool = True,
               progress=None) -> ImportSummary:
    """Register an embedding file as a run of the `external` approach; the caller holds the workspace lock.

    Writes the run, its embeddings and the videos / faces the store lacks in one transaction, then fits its
    classifiers (`engine.classify.classify_run` with the run's [classifiers]) and, with `project`, its map
    (`engine.projection.project_run`). The run id is `external-<hash of the file and the options>`: the same
    import again resumes (classifiers and map are skipped when stored); `replace` imports it anew.
    """
    from .classify import classify_run
    from .projection import project_run
    from .provenance import code_revision, environment
    from .runs import read_runs
    from .store.catalog import datasets_table
    from .store.faces import settings_table
    from .store.embeddings import embeddings_table
    from .store.runs import RUNS_SCHEMA, discard_run_results
    from .store import interchange

    f = read_embedding_file(path)
    rows = store_rows(f, database)
    sup, cross = _roles(f, rows, superset, cross_db)
    taxonomy = cfg.taxonomy if cfg is not None else None
    if taxonomy is None and isinstance(f.metadata.get("taxonomy"), dict):
        try:
            taxonomy = Taxonomy.from_dict(f.metadata["taxonomy"], f"{f.path} metadata")
        except AtlasError:
            taxonomy = None
    classes = _classes(f, rows, sup, taxonomy)
    notes = []
    outside = (rows["is_fake"] == True) & rows["true_class"].notna() & ~rows["true_class"].isin(classes) \
        & (rows["true_class"] != UNSEEN_FAKE)  # noqa: E712
    if outside.any():
        rows.loc[outside, "method"] = rows.loc[outside, "method"].fillna(rows.loc[outside, "true_class"])
        rows.loc[outside, "true_class"] = UNSEEN_FAKE
        notes.append(f"{int(outside.sum())} rows of fake classes outside the run's classes are unseen fakes "
                     "(tested, never fitted on)")
    classifiers, projection, seed = _sections(f, cfg)
    _check_validation(f, rows, f.embedding, classes, sup, classifiers)
    key = {"sha256": f.sha256, "granularity": f.granularity, "superset": sup, "cross_db": cross,
           "classes": classes, "seed": seed, "name": name, "database": database,
           "classifiers": dataclasses.asdict(classifiers)}
    run_id = f"{APPROACH}-{hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]}"
    settings_key = import_key(f.sha256)
    store = workspace.store()
    status = "imported"
    if run_id in read_runs(store) and not replace:
        status = "already imported"
    else:
        if replace:
            discard_run_results(store, run_id)
        face_ids = face_ids_of(f, rows, settings_key)
        reused = check_against_store(store, f, rows, face_ids)
        source = f"import:{f.path.absolute()}"
        roles = {d: "superset" for d in sup} | {d: "cross_db" for d in cross}
        ds = rows.drop_duplicates("dataset")
        ds_role = [r if isinstance(r, str) else roles.get(db, "unknown") for r, db in zip(ds["role"], ds["database"])]
        labelled = rows.groupby("dataset")["is_fake"].apply(lambda s: bool(s.notna().any()))
        synthetic = bool(rows.loc[rows["database"].isin(sup), "synthetic"].any())
        datasets = datasets_table(ds["dataset"], ds["database"].astype(str), ds["split"].astype(str), ds_role,
                                  [bool(labelled[d]) for d in ds["dataset"]], [synthetic] * len(ds), [source] * len(ds))
        imported = {"file": str(f.path.absolute()), "sha256": f.sha256, "granularity": f.granularity,
                    "rows": len(rows), "reused_faces": reused, "name": name, "source_run": f.metadata.get("run_id"),
                    "source_approach": f.metadata.get("approach")}
        config = {"path": str(f.path.absolute()), "experiment": {"seed": seed, "synthetic": synthetic},
                  "sources": {"superset": sup, "cross_db": cross,
                              "databases": {d: {"adapter": "import", "root": source} for d in sup + cross}},
                  "classifiers": dataclasses.asdict(classifiers), "projection": dataclasses.asdict(projection),
                  "import": imported}
        if taxonomy is not None:
            config["taxonomy"] = taxonomy.to_dict()
        run_row = pa.Table.from_pylist([{
            "run_id": run_id, "approach": APPROACH, "backbone": name or f.metadata.get("backbone") or "external",
            "config_json": json.dumps(config, default=str), "config_hash": run_id.split("-", 1)[1],
            "classes": classes, "taxonomy_json": json.dumps(taxonomy.to_dict()) if taxonomy is not None else None,
            "settings_key": settings_key, "embedding_dim": f.dim, "pretrained_source": f"imported from {f.path.name}",
            "seed": seed, "status": "finished", "message": None, "best_epoch": None, "epochs_done": None,
            "synthetic": synthetic, "train_seconds": None, "timings_json": None, "code_revision": code_revision(),
            "versions_json": json.dumps(environment())}], schema=RUNS_SCHEMA)
        interchange.write_imported_run(
            store, run_row, datetime.now(), videos_table(rows, source), datasets,
            settings_table(settings_key, {"imported": f.path.name, "sha256": f.sha256, "granularity": f.granularity}),
            faces_table(rows, face_ids, settings_key), statuses_table(rows, settings_key),
            embeddings_table(run_id, face_ids.to_pylist(), rows["dataset"].tolist(), f.embedding))
    fitted = classify_run(store, run_id, classifiers, progress=progress)
    pid = project_run(store, run_id, projection) if project else None
    return ImportSummary(run_id, status, len(rows), int(rows["video_id"].nunique()), f.granularity, f.dim, classes,
                         sup, cross, fitted, pid, notes)


# --- an unknown set ----------------------------------------------------------------------

def import_unknown_set(workspace, run_id: str, path: str | Path, name: str | None = None, replace: bool = False,
                       classifier: str | None = None, progress=None):
    """An unknown set's embeddings into an external run, analysed as `dfatlas analyze` analyses videos.

    The set is `unknown/<name>`; the run's classifiers are refitted on its stored validation embeddings
    and applied (`engine.classify.apply_to_embeddings`), the set is placed into the run's map
    (`engine.projection.transform_into`, the map fitted first when it has none) and everything is written
    in one transaction; returns `engine.analysis.build_report`'s report. The caller holds the lock.
    """
    from .analysis import AnalysisError, build_report, calibrate_open_set, read_val_embeddings, sanitize_name
    from .analysis.paths import ROLE, UNKNOWN_DB
    from .analysis.stages import prepare_set
    from .classify import apply_to_embeddings
    from .projection import project_run, transform_into
    from .runs import read_run
    from .store import interchange
    from .store.catalog import datasets_table
    from .store.embeddings import embeddings_table
    from .store.predictions import predictions_table
    from .store.projections import latest_projection_id, points_table

    report = progress or (lambda stage, done, total: None)
    store = workspace.store()
    run = read_run(store, run_id)
    if run.kind.trains:
        raise AnalysisError(f"run {run_id} embeds videos with its own model: analyse videos with `dfatlas analyze "
                            f"--run {run_id} --input VIDEOS`; imported embeddings go into runs of imported "
                            "embeddings (`dfatlas import-embeddings FILE` first)")
    f = read_embedding_file(path)
    if f.dim != run.embedding_dim:
        raise AnalysisError(f"{f.path}: {f.dim}-d embeddings, but run {run_id} holds {run.embedding_dim}-d ones "
                            "(the set must come from the same detector)")
    name = sanitize_name(name or f.path.stem)
    rows = store_rows(f, UNKNOWN_DB, unknown=name)
    outside = (rows["is_fake"] == True) & rows["true_class"].notna() & ~rows["true_class"].isin(run.classes)  # noqa: E712
    rows.loc[outside, "method"] = rows.loc[outside, "method"].fillna(rows.loc[outside, "true_class"])
    rows.loc[outside, "true_class"] = UNSEEN_FAKE
    dataset = f"{UNKNOWN_DB}/{name}"
    source = f"import:{f.path.absolute()}"
    fresh = prepare_set(workspace, store, dataset, name, source, run_id, replace)
    val = read_val_embeddings(store, run)
    osm = calibrate_open_set(store, run, val)
    key = run.settings_key or import_key(f.sha256)
    face_ids = face_ids_of(f, rows, key)
    check_against_store(store, f, rows, face_ids)
    report("classify", 0, 1)
    preds = apply_to_embeddings(store, run_id, f.embedding, progress=lambda d, t: report("classify", d, t))
    section = run.section(ProjectionSection, "projection")
    pid = latest_projection_id(store, run_id) or project_run(store, run_id, section,
                                                             progress=lambda d, t: report("project", d, t))
    coords = transform_into(store, pid, f.embedding, n_jobs=section.n_jobs, progress=lambda d, t: report("project", d, t))
    ids = face_ids.to_pylist()
    sets = [dataset] * len(ids)
    labelled = bool(rows["is_fake"].notna().any())
    interchange.write_imported_set(
        store, videos_table(rows, source), faces_table(rows, face_ids, key), statuses_table(rows, key),
        embeddings_table(run_id, ids, sets, f.embedding),
        [predictions_table(run_id, c, ids, sets, p["pred_class"], p["real_score"], p["probs"], out_of_fold=False)
         for c, p in preds.items()],
        points_table(pid, dataset, ids, np.asarray(coords), False),
        datasets_table([dataset], [UNKNOWN_DB], [name], [ROLE], [labelled], [run.synthetic], [source])
        if fresh else None)
    report("store", 1, 1)
    return build_report(store, run_id, dataset, classifier=classifier, osm=osm, val=val)


def import_note(config: dict | None) -> str:
    """What the pages lack for an imported run ('' for a trained run): the frame level for per-video
    embeddings, thumbnails where its faces are not this workspace's own."""
    imported = (config or {}).get("import") if isinstance(config, dict) else None
    if not isinstance(imported, dict):
        return ""
    own = imported.get("reused_faces") == imported.get("rows")  # an export of this workspace: its faces
    if imported.get("granularity") == "video":
        return ("imported per-video embeddings: one point per video, so the frame level shows videos too"
                + ("" if own else ", and there are no face thumbnails"))
    return "" if own else "imported embeddings: no face thumbnails (the detector's crops are not in this workspace)"


__all__ = ["ImportSummary", "import_key", "import_note", "import_run", "import_unknown_set", "read_embedding_file"]
