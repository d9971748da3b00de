"""Metrics tables from stored predictions: the paper's Tables 1 and 2.

Table 1 (same-database) evaluates each super-set database's *test* split;
Table 2 (cross-database) each cross-database set as a whole. θ always comes
from the pooled *validation* split of the training super-set, at the same
level (video or frame) as the metric (DESIGN.md "Scores and thresholds").
All data is read in one query per call and aggregated with NumPy; the
dashboard calls `metrics_table` on every widget change.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from data_catalog.errors import AtlasError
from data_catalog.records import UNSEEN_FAKE, to_is_real

from .provenance import code_revision, package_versions
from .metrics import UNATTRIBUTED, attribution_accuracy, confusion_matrix, evaluate_at, far_threshold, \
    per_class_fpr, video_level
from .store import Store, arrow_to_matrix

DEFAULT_CLASSIFIER = {"binary": "native", "attribution": "native", "triplet": "knn", "arcfacemod": "lr"}
APPROACH_NAMES = {"binary": "Binary", "attribution": "Attribution", "triplet": "TripletLoss", "arcfacemod": "ArcFaceMod"}
CLASSIFIER_NAMES = {"native": "", "knn": "NN", "lr": "LR", "svm": "SVM"}
ROLE_ORDER = {"same-db": 0, "cross-db": 1, "unknown": 2}
COLUMNS = ["run_id", "approach", "classifier", "label", "dataset", "role", "level", "auc", "fpr", "fnr", "hter",
           "threshold", "accuracy", "n_real", "n_fake", "note", "auc_lo", "auc_hi", "hter_lo", "hter_hi"]


def approach_label(approach: str, classifier: str) -> str:
    """'TripletLoss-NN', 'ArcFaceMod-LR', 'Attribution' — the paper's names."""
    base = APPROACH_NAMES.get(approach, approach)
    suffix = CLASSIFIER_NAMES.get(classifier, classifier)
    return f"{base}-{suffix}" if suffix else base


# --- runs -------------------------------------------------------------------

@dataclass(frozen=True)
class RunInfo:
    run_id: str
    approach: str
    classes: tuple[str, ...]
    superset: tuple[str, ...]
    cross_db: tuple[str, ...]
    synthetic: bool
    config_hash: str | None
    code_revision: str | None
    versions: dict


def runs_info(store: Store, run_ids=None) -> dict[str, RunInfo]:
    """The runs in the store (or `run_ids`, each of which must exist)."""
    df = store.df("SELECT run_id, approach, classes, config_json, config_hash, synthetic, code_revision, versions_json "
                  "FROM runs ORDER BY created_at, run_id")
    known = set(df.run_id)
    if run_ids:
        missing = [r for r in run_ids if r not in known]
        if missing:
            raise AtlasError(f"unknown run id {missing[0]!r}; runs in this store: {', '.join(sorted(known)) or 'none'}")
        df = df[df.run_id.isin(run_ids)]
    out = {}
    for r in df.itertuples(index=False):  # one row per run: a handful
        try:
            cfg = json.loads(r.config_json or "{}")
        except ValueError:
            cfg = {}
        src = cfg.get("sources", {}) if isinstance(cfg, dict) else {}
        try:
            versions = json.loads(r.versions_json) if r.versions_json else {}
        except ValueError:
            versions = {}
        out[r.run_id] = RunInfo(r.run_id, r.approach, tuple(r.classes), tuple(src.get("superset", ())),
                                tuple(src.get("cross_db", ())), bool(r.synthetic), r.config_hash, r.code_revision,
                                versions)
    if not out and not run_ids:
        raise AtlasError("no runs in this store yet: train one (`dfatlas train --config CONFIG`) or run `dfatlas demo`")
    return out


def _dataset_roles(store: Store, infos: dict[str, RunInfo]) -> dict[str, tuple[set, set]]:
    """Super-set and cross-db databases per run; the datasets table fills gaps."""
    roles = {r: (set(i.superset), set(i.cross_db)) for r, i in infos.items()}
    if any(not s or not c for s, c in roles.values()):
        ds = store.df("SELECT DISTINCT database, role FROM datasets")
        sup = set(ds.database[ds.role == "superset"])
        cross = set(ds.database[ds.role == "cross_db"])
        roles = {r: (s or sup, c or cross) for r, (s, c) in roles.items()}
    return roles


# --- scores -----------------------------------------------------------------

class _Reader:
    """Several queries on one open connection: one unit of work (DESIGN.md 'Store')."""

    def __init__(self, con):
        self.con = con

    def df(self, sql: str, params: list | None = None) -> pd.DataFrame:
        return self.con.execute(sql, params or []).df()

    def arrow(self, sql: str, params: list | None = None) -> pa.Table:
        return self.con.sql(sql, params=params or None).to_arrow_table()


_VIDEO_CODES = "SELECT video_id, row_number() OVER (ORDER BY video_id) - 1 AS vc FROM videos WHERE split <> 'train'"


def _load_meta(q) -> pa.Table:
    """Per-video metadata, row i = video code i (labelled by ordering on the key)."""
    return q.arrow("""
        SELECT video_id, database, split, dataset, is_fake, true_class FROM videos
        WHERE split <> 'train' ORDER BY video_id""")


def _load_scores(q, pairs: list[tuple[str, str]], with_probs: bool) -> pa.Table:
    """Face rows of the wanted (run, classifier) pairs: combo code, video code, score, prediction (, probs)."""
    combos = pa.table({"run_id": [r for r, _ in pairs], "classifier": [c for _, c in pairs],
                       "combo": pa.array(range(len(pairs)), pa.int32())})
    q.con.register("_combos", combos)
    try:
        probs = ", p.probs" if with_probs else ""
        return q.arrow(f"""
            WITH vv AS ({_VIDEO_CODES})
            SELECT c.combo, vv.vc, p.real_score, p.pred_class{probs}
            FROM predictions p
            JOIN _combos c ON c.run_id = p.run_id AND c.classifier = p.classifier
            JOIN faces f ON f.face_id = p.face_id
            JOIN vv ON vv.video_id = f.video_id""")
    finally:
        q.con.unregister("_combos")


def _codes(col) -> tuple[np.ndarray, list]:
    enc = pc.dictionary_encode(col)
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.combine_chunks()
    return enc.indices.to_numpy(zero_copy_only=False).astype(np.int64), enc.dictionary.to_pylist()


@dataclass
class _Meta:
    """Per-video arrays indexed by video code."""
    video_id: pa.Array
    database: np.ndarray      # codes into names["database"]
    split: np.ndarray
    dataset: np.ndarray
    true_class: np.ndarray    # codes into names["true_class"] (None = unlabelled)
    is_real: np.ndarray
    labelled: np.ndarray
    names: dict


def _meta(table: pa.Table) -> _Meta:
    db, db_names = _codes(table["database"])
    sp, sp_names = _codes(table["split"])
    ds, ds_names = _codes(table["dataset"])
    tc, tc_names = _codes(pc.fill_null(table["true_class"], "\x00"))
    is_fake = table["is_fake"]
    labelled = pc.is_valid(is_fake).to_numpy(zero_copy_only=False)
    is_real = to_is_real(pc.fill_null(is_fake, True).to_numpy(zero_copy_only=False))
    vid = table["video_id"].combine_chunks() if table.num_rows else pa.array([], pa.string())
    return _Meta(vid, db, sp, ds, tc, is_real, labelled,
                 {"database": np.array(db_names, dtype=object), "split": np.array(sp_names, dtype=object),
                  "dataset": np.array(ds_names, dtype=object),
                  "true_class": [None if c == "\x00" else c for c in tc_names]})


@dataclass
class _Block:
    """One (run, classifier)'s samples at the requested level."""
    combo: int
    video: np.ndarray   # video code per sample
    score: np.ndarray
    pred: np.ndarray


def _blocks(table: pa.Table, level: str) -> list[_Block]:
    n = table.num_rows
    if n == 0:
        return []
    combo = table["combo"].to_numpy()
    vcode = table["vc"].to_numpy().astype(np.int64)
    score = table["real_score"].to_numpy()
    pred = pc.fill_null(table["pred_class"], UNATTRIBUTED).to_numpy(zero_copy_only=False).astype(np.int64)
    has_probs = "probs" in table.column_names
    all_probs = None
    if has_probs and table["probs"].null_count == 0 and level == "video":
        all_probs = arrow_to_matrix(table["probs"])  # one flatten when every row has probabilities
    out = []
    for k in np.unique(combo):  # one iteration per (run, classifier): a dozen
        rows = np.flatnonzero(combo == k)
        if level == "frame":
            out.append(_Block(int(k), vcode[rows], score[rows], pred[rows]))
            continue
        probs = None
        if all_probs is not None:
            probs = all_probs[rows]
        elif has_probs:
            pcol = table["probs"].take(pa.array(rows))
            if pcol.null_count == 0:
                probs = arrow_to_matrix(pcol)
        vl = video_level(vcode[rows], score[rows], pred[rows], probs)
        out.append(_Block(int(k), vl.video_id.to_numpy().astype(np.int64), vl.real_score.to_numpy(),
                          vl.pred_class.to_numpy()))
    return out


def _extra_members(q, meta: _Meta) -> dict[str, np.ndarray]:
    """dataset -> codes of videos that belong to it only through `videos.also_in`
    (a file two databases share is stored once, e.g. FF++ originals that are
    also HifiFace / DeeperForensics reals)."""
    if len(meta.video_id) == 0:
        return {}
    t = q.arrow("SELECT video_id, unnest(also_in) AS dataset FROM videos WHERE also_in IS NOT NULL AND len(also_in) > 0")
    if t.num_rows == 0:
        return {}
    idx = pc.index_in(t["video_id"], value_set=meta.video_id).to_numpy(zero_copy_only=False)
    ds = np.asarray(t["dataset"].to_pylist(), dtype=object)
    ok = ~pd.isna(idx)
    idx, ds = idx[ok].astype(np.int64), ds[ok]
    return {d: idx[ds == d] for d in np.unique(ds)}


def _resolve_classifiers(store: Store, infos: dict[str, RunInfo], classifiers) -> list[tuple[str, str]]:
    have = store.df("SELECT DISTINCT run_id, classifier FROM predictions WHERE run_id IN (SELECT unnest(?))",
                    [list(infos)])
    avail = {(r, c) for r, c in zip(have.run_id, have.classifier)}
    wanted = []
    if classifiers is None or classifiers == "default":
        for r, i in infos.items():
            c = DEFAULT_CLASSIFIER.get(i.approach, "native")
            wanted.append((r, c))
    else:
        if isinstance(classifiers, str):
            classifiers = [classifiers]
        for r in infos:
            for c in classifiers:
                if c == "all":
                    wanted.extend(sorted(x for x in avail if x[0] == r))
                else:
                    wanted.append((r, c))
    wanted = list(dict.fromkeys(wanted))
    return [w for w in wanted if w in avail], [w for w in wanted if w not in avail]


def _missing_note(approach: str, run_id: str, clf: str) -> str:
    if clf == "native":
        return f"no predictions: run `dfatlas embed --config CONFIG --run {run_id}`"
    if approach not in ("triplet", "arcfacemod"):
        return f"a {approach} run has no {clf!r} classifier (its own head is 'native')"
    return f"no {clf!r} predictions: run `dfatlas classify --config CONFIG --run {run_id}`"


def metrics_table(store: Store, run_ids=None, classifiers=None, level: str = "video", target_fpr: float = 0.10,
                  bootstrap: int = 0, seed: int = 0) -> pd.DataFrame:
    """AUC / FPR / FNR / HTER (fractions) per run, classifier and test database.

    `classifiers`: None = the paper's choice per approach (native for binary
    and attribution, knn for triplet, lr for arcfacemod); 'all'; or a list.
    Rows: role 'same-db' (a super-set database's test split), 'cross-db'
    (a cross-database set, all its splits), 'unknown' (labelled unknown sets).
    A set without reals or fakes gets auc None and a `note`, not an error.
    """
    if level not in ("video", "frame"):
        raise AtlasError(f"level must be 'video' or 'frame', got {level!r}")
    with store.connect() as con:
        q = _Reader(con)
        infos = runs_info(q, run_ids)
        pairs, missing = _resolve_classifiers(q, infos, classifiers)
        notes = [dict(run_id=r, approach=infos[r].approach, classifier=c, label=approach_label(infos[r].approach, c),
                      dataset="(all)", role="same-db", level=level, note=_missing_note(infos[r].approach, r, c))
                 for r, c in missing]
        if not pairs:
            return pd.DataFrame(notes, columns=COLUMNS)
        roles = _dataset_roles(q, infos)
        meta = _meta(_load_meta(q))
        table = _load_scores(q, pairs, with_probs=(level == "video"))
        extra = _extra_members(q, meta)
    names = meta.names
    rows = list(notes)
    for b in _blocks(table, level):
        run_id, clf = pairs[b.combo]
        info = infos[run_id]
        superset, cross = roles[run_id]
        db = names["database"][meta.database[b.video]]
        split = names["split"][meta.split[b.video]]
        is_real = meta.is_real[b.video]
        labelled = meta.labelled[b.video]
        in_super = np.isin(db, list(superset))
        in_cross = np.isin(db, list(cross))
        val = in_super & (split == "val") & labelled
        base = dict(run_id=run_id, approach=info.approach, classifier=clf,
                    label=approach_label(info.approach, clf), level=level)
        if not val.any():
            rows.append(base | dict(dataset="(all)", role="same-db", note="no validation predictions: θ undefined"))
            continue
        try:
            theta = far_threshold(b.score[val & ~is_real], target_fpr)
        except AtlasError as exc:
            rows.append(base | dict(dataset="(all)", role="same-db", note=str(exc)))
            continue
        class_idx = {c: i for i, c in enumerate(info.classes)}
        true_index = np.array([class_idx.get(c, -1) if c is not None else -1 for c in names["true_class"]] or [-1],
                              dtype=np.int64)
        true_idx = true_index[meta.true_class[b.video]]
        dataset = meta.dataset[b.video]

        def also(datasets):  # samples of videos kept once under another database but also in `datasets`
            codes = [extra[d] for d in datasets if d in extra]
            return np.isin(b.video, np.concatenate(codes)) if codes else np.zeros(b.score.size, bool)

        groups = []  # (role, display dataset, mask)
        for d in sorted(superset):
            mask = (in_super & (split == "test") & (db == d)) | also([f"{d}/test"])
            if mask.any():
                groups.append(("same-db", d, mask))
        for d in sorted(cross):
            mask = (db == d) | also([x for x in extra if x.split("/")[0] == d])
            if mask.any():
                groups.append(("cross-db", d, mask))
        other = ~in_super & ~in_cross
        for code in np.unique(dataset[other]):
            name = names["dataset"][code]
            groups.append(("unknown", name, (other & (dataset == code)) | also([name])))
        for role, name, mask in groups:
            m_lab = mask & labelled
            if not m_lab.any():
                rows.append(base | dict(dataset=name, role=role, threshold=theta, n_real=0, n_fake=0,
                                        note="unlabelled: no metrics"))
                continue
            m = evaluate_at(theta, b.score[m_lab], is_real[m_lab], bootstrap=bootstrap, seed=seed,
                            test_groups=b.video[m_lab] if level == "frame" else None)
            acc = None
            # Attribution accuracy needs every fake's class to be a known one: on sets with
            # unseen fakes it would count only the reals, so it is left out there.
            if info.approach != "binary" and not (true_idx[m_lab & ~is_real] < 0).any():
                acc = attribution_accuracy(true_idx[m_lab], b.pred[m_lab])
            rows.append(base | dict(
                dataset=name, role=role, auc=m.auc, fpr=m.fpr, fnr=m.fnr, hter=m.hter, threshold=m.threshold,
                accuracy=acc, n_real=m.n_real, n_fake=m.n_fake, note=m.note,
                auc_lo=m.auc_ci[0] if m.auc_ci else None, auc_hi=m.auc_ci[1] if m.auc_ci else None,
                hter_lo=m.hter_ci[0] if m.hter_ci else None, hter_hi=m.hter_ci[1] if m.hter_ci else None))
    df = pd.DataFrame(rows, columns=COLUMNS)
    if df.empty:
        return df
    df["_r"] = df.role.map(ROLE_ORDER).fillna(9)
    df["_a"] = df.approach.map({a: i for i, a in enumerate(APPROACH_NAMES)}).fillna(9)
    df = df.sort_values(["_r", "_a", "run_id", "classifier", "dataset"], kind="stable").drop(columns=["_r", "_a"])
    for c in ("n_real", "n_fake"):
        df[c] = df[c].fillna(0).astype(int)
    return df.reset_index(drop=True)


# --- per-video views (dashboard, analysis) ------------------------------------

def sample_scores(store: Store, run_id: str, classifier: str, datasets=None, level: str = "video") -> pd.DataFrame:
    """Per-video (or per-face) real-score, predicted class and true class for one run/classifier.

    Columns: video_id (or face_id), dataset, database, true_class, is_real,
    real_score, pred_class, pred_label, agreement/n_frames at video level.
    """
    info = runs_info(store, [run_id])[run_id]
    params: list = [run_id, classifier]
    where = "p.run_id = ? AND p.classifier = ?"
    if datasets:
        # membership through video_datasets: shared videos (videos.also_in) count for every dataset claiming them
        where += " AND f.video_id IN (SELECT video_id FROM video_datasets WHERE dataset IN (SELECT unnest(?)))"
        params.append(list(datasets))
    t = store.arrow(f"""
        SELECT p.face_id, f.video_id, p.dataset, v.database, v.true_class, v.is_fake,
               p.real_score, p.pred_class, p.probs
        FROM predictions p JOIN faces f ON f.face_id = p.face_id JOIN videos v ON v.video_id = f.video_id
        WHERE {where} ORDER BY p.face_id""", params)
    if t.num_rows == 0:
        raise AtlasError(f"run {run_id!r} has no {classifier!r} predictions"
                         f"{' for ' + ', '.join(datasets) if datasets else ''}: run `dfatlas classify` / `dfatlas embed` first")
    df = t.drop_columns(["probs"]).to_pandas()
    if level == "video":
        probs = arrow_to_matrix(t["probs"]) if t["probs"].null_count == 0 else None
        vl = video_level(df.video_id.to_numpy(), df.real_score.to_numpy(), df.pred_class.fillna(-1).to_numpy(), probs)
        meta = df.drop_duplicates("video_id").set_index("video_id")[["dataset", "database", "true_class", "is_fake"]]
        df = vl.join(meta, on="video_id")
    df["is_real"] = df.is_fake.map(lambda v: None if pd.isna(v) else not v)  # small: per video
    labels = np.array(list(info.classes) + ["fake (unattributed)"], dtype=object)
    pc_ = df.pred_class.fillna(-1).astype(int).to_numpy()
    df["pred_label"] = labels[np.where(pc_ >= 0, pc_, len(info.classes))]
    return df


def _true_display(df: pd.DataFrame) -> np.ndarray:
    tc = df.true_class.astype(object).to_numpy()
    unseen = tc == UNSEEN_FAKE
    out = tc.copy()
    out[unseen] = UNSEEN_FAKE + " (" + df.database.astype(str).to_numpy()[unseen] + ")"
    out[pd.isna(tc)] = "unlabelled"
    return out


def confusion(store: Store, run_id: str, classifier: str, datasets=None, level: str = "video") -> pd.DataFrame:
    """True vs predicted class counts; unseen fakes get one row per database."""
    info = runs_info(store, [run_id])[run_id]
    df = sample_scores(store, run_id, classifier, datasets, level)
    true = _true_display(df)
    extra = sorted(set(true) - set(info.classes))
    pred_order = list(info.classes) + (["fake (unattributed)"] if (df.pred_class == UNATTRIBUTED).any() else [])
    return confusion_matrix(true, df.pred_label.to_numpy(), true_order=list(info.classes) + extra, pred_order=pred_order)


def class_fpr(store: Store, run_id: str, classifier: str, datasets=None, level: str = "video",
              target_fpr: float = 0.10) -> pd.DataFrame:
    """FPR of each fake class at θ (θ from the pooled super-set validation split)."""
    info = runs_info(store, [run_id])
    superset, _ = _dataset_roles(store, info)[run_id]
    val = sample_scores(store, run_id, classifier, [f"{d}/val" for d in superset], level)
    val = val[val.is_real.notna()]
    theta = far_threshold(val.real_score[~val.is_real.astype(bool)], target_fpr)
    df = sample_scores(store, run_id, classifier, datasets, level)
    df = df[df.is_real.notna()]
    return per_class_fpr(theta, df.real_score.to_numpy(), _true_display(df), df.is_real.astype(bool).to_numpy())


def detection_losses(store: Store, settings_key: str | None = None) -> pd.DataFrame:
    """Videos per (dataset, class) lost to face extraction, by status."""
    where = "WHERE fv.settings_key = ?" if settings_key else ""
    return store.df(f"""
        SELECT v.dataset, coalesce(v.true_class, 'unlabelled') AS true_class, count(*) AS n_videos,
               count(*) FILTER (WHERE fv.status <> 'ok') AS n_lost,
               count(*) FILTER (WHERE fv.status <> 'ok')::DOUBLE / count(*) AS lost_share,
               string_agg(DISTINCT fv.status, ',') FILTER (WHERE fv.status <> 'ok') AS statuses
        FROM face_videos fv JOIN videos v USING (video_id) {where}
        GROUP BY ALL ORDER BY 1, 2""", [settings_key] if settings_key else None)


# --- provenance and formatting ----------------------------------------------

def provenance(store: Store, run_ids=None) -> list[str]:
    """Footer lines: data kind, config hashes, code revision(s), package versions."""
    infos = runs_info(store, run_ids)
    synthetic = {i.synthetic for i in infos.values()}
    lines = []
    if synthetic == {True}:
        lines.append("data: SYNTHETIC benchmark (procedurally generated) — not comparable with the paper's numbers")
    elif synthetic == {False}:
        lines.append("data: real databases as configured")
    else:
        lines.append("data: MIXED — some runs on the SYNTHETIC benchmark, some on real data")
    hashes = sorted({i.config_hash for i in infos.values() if i.config_hash})
    lines.append(f"config hash: {', '.join(hashes) or 'unknown'}; runs: {', '.join(infos)}")
    revs = sorted({i.code_revision for i in infos.values() if i.code_revision})
    now = code_revision()
    lines.append(f"code revision: trained at {', '.join(revs) or 'unknown'}; evaluated at {now or 'unknown (not a git checkout)'}")
    lines.append("packages: " + ", ".join(f"{k} {v}" for k, v in package_versions().items()))
    return lines


def _pct(v, digits=2) -> str:
    return "—" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{100 * v:.{digits}f}"


def paper_rows(df: pd.DataFrame, role: str, with_ci: bool = False) -> list[dict]:
    """Rows of Table 1 ('same-db') or Table 2 ('cross-db') in the paper's layout (percentages)."""
    out = []
    sub = df[df.role == role]
    prev = None
    for r in sub.itertuples(index=False):  # a few dozen rows
        show = r.label if (r.label, r.run_id) != prev else ""
        prev = (r.label, r.run_id)
        row = {"Approach": show, "Test DB": r.dataset, "AUC": _pct(r.auc), "FNR (%)": _pct(r.fnr),
               "FPR (%)": _pct(r.fpr), "HTER (%)": _pct(r.hter), "Acc (%)": _pct(r.accuracy),
               "videos (real/fake)" if r.level == "video" else "faces (real/fake)": f"{r.n_real}/{r.n_fake}"}
        if with_ci:
            row["AUC 95% CI"] = "—" if pd.isna(r.auc_lo) else f"{_pct(r.auc_lo)}–{_pct(r.auc_hi)}"
            row["HTER 95% CI"] = "—" if pd.isna(r.hter_lo) else f"{_pct(r.hter_lo)}–{_pct(r.hter_hi)}"
        if isinstance(r.note, str) and r.note:
            row["note"] = r.note
        out.append(row)
    cols = list(dict.fromkeys(k for row in out for k in row))
    return [{c: row.get(c, "") for c in cols} for row in out]


def render(rows: list[dict], fmt: str) -> str:
    """Rows as a text table, CSV, Markdown or LaTeX."""
    if not rows:
        return "(no rows)\n"
    cols = list(rows[0])
    cells = [[str(r.get(c, "")) for c in cols] for r in rows]
    if fmt == "csv":
        return pd.DataFrame(cells, columns=cols).to_csv(index=False)
    if fmt == "markdown":
        lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
        return "\n".join(lines) + "\n"
    if fmt == "latex":
        def esc(s: str) -> str:
            for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                         ("–", "--"), ("—", "---")):
                s = s.replace(a, b)
            return s
        lines = [r"\begin{tabular}{" + "l" * 2 + "r" * (len(cols) - 2) + "}", r"\hline",
                 " & ".join(esc(c) for c in cols) + r" \\", r"\hline"]
        lines += [" & ".join(esc(c) for c in row) + r" \\" for row in cells]
        lines += [r"\hline", r"\end{tabular}"]
        return "\n".join(lines) + "\n"
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines) + "\n"
