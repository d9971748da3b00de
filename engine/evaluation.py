"""Metrics tables from stored predictions: the paper's Tables 1 and 2.

Table 1 (same-database) evaluates each super-set database's *test* split;
Table 2 (cross-database) each cross-database set as a whole. θ always comes
from the pooled *validation* split of the training super-set, at the same
level (video or frame) as the metric (DESIGN.md "Scores and thresholds").
All data is read in one query per call and aggregated with NumPy; the
dashboard calls `metrics_table` on every widget change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from data_catalog.errors import AtlasError
from data_catalog.records import to_is_real

from .approaches import approach_names, choose_classifier, display_label
from .metrics import DEFAULT_AGGREGATION, DEFAULT_TOP_K, UNATTRIBUTED, aggregation_key, attribution_accuracy, \
    attribution_accuracy_ci, check_aggregation, confusion_matrix, evaluate_at, far_threshold, per_class_fpr, video_level
from .runs import RunRecord, read_runs
from .scores import (UNATTRIBUTED_LABEL, check_level, sample_scores, select_scores, theta_note, theta_population,
                     true_display)
from .store import Store, arrow_to_matrix
from .store import evaluation as evaluation_data
from .store import predictions as prediction_table

ROLE_ORDER = {"same-db": 0, "cross-db": 1, "unknown": 2}
COLUMNS = ["run_id", "approach", "classifier", "label", "dataset", "role", "level", "auc", "fpr", "fnr", "hter",
           "threshold", "accuracy", "n_real", "n_fake", "note", "auc_lo", "auc_hi", "hter_lo", "hter_hi",
           "accuracy_lo", "accuracy_hi", "n_known", "n_new", "new_as_fake", "aggregation"]


# --- scores -----------------------------------------------------------------

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


def _blocks(table: pa.Table, level: str, aggregation: str = DEFAULT_AGGREGATION,
            top_k: int = DEFAULT_TOP_K) -> list[_Block]:
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
        vl = video_level(vcode[rows], score[rows], pred[rows], probs, aggregation=aggregation, top_k=top_k)
        out.append(_Block(int(k), vl.video_id.to_numpy().astype(np.int64), vl.real_score.to_numpy(),
                          vl.pred_class.to_numpy()))
    return out


def _extra_members(t: pa.Table, meta: _Meta) -> dict[str, np.ndarray]:
    """dataset -> codes of videos that belong to it only through `videos.also_in`
    (a file two databases share is stored once, e.g. FF++ originals that are
    also HifiFace / DeeperForensics reals)."""
    if len(meta.video_id) == 0 or t.num_rows == 0:
        return {}
    idx = pc.index_in(t["video_id"], value_set=meta.video_id).to_numpy(zero_copy_only=False)
    ds = np.asarray(t["dataset"].to_pylist(), dtype=object)
    ok = ~pd.isna(idx)
    idx, ds = idx[ok].astype(np.int64), ds[ok]
    return {d: idx[ds == d] for d in np.unique(ds)}


def _resolve_classifiers(store: Store, infos: dict[str, RunRecord], classifiers):
    """(wanted pairs with predictions, wanted pairs without) of (run, classifier)."""
    avail = prediction_table.predicted_pairs(store, infos)
    wanted = []
    if classifiers is None or classifiers == "default":
        wanted = [(r, i.default_classifier) for r, i in infos.items()]
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


def _missing_note(run: RunRecord, clf: str) -> str:
    if clf == "native":
        return f"no predictions: run `dfatlas embed --config CONFIG --run {run.run_id}`"
    if not run.kind.embedding_classifiers:
        return f"a {run.approach} run has no {clf!r} classifier (its own head is 'native')"
    return f"no {clf!r} predictions: run `dfatlas classify --config CONFIG --run {run.run_id}`"


def metrics_table(store: Store, run_ids=None, classifiers=None, level: str = "video", target_fpr: float = 0.10,
                  bootstrap: int = 0, seed: int = 0, aggregation: str = DEFAULT_AGGREGATION,
                  top_k: int = DEFAULT_TOP_K) -> pd.DataFrame:
    """AUC / FPR / FNR / HTER (fractions) per run, classifier and test database.

    `classifiers`: None = the paper's choice per approach (native for binary
    and attribution, knn for triplet, lr for arcfacemod); 'all'; or a list.
    Rows: role 'same-db' (a super-set database's test split), 'cross-db'
    (a cross-database set, all its splits), 'unknown' (labelled unknown sets).
    A set without reals or fakes gets auc None and a `note`, not an error.
    At video level, `aggregation` (`engine.metrics.AGGREGATIONS`, with `top_k`) scores every video, the
    validation videos that set θ included; column `aggregation` records it ('' at frame level).
    """
    check_level(level)
    check_aggregation(aggregation, top_k)
    agg_tag = aggregation_key(aggregation, top_k) if level == "video" else ""
    infos = read_runs(store, run_ids)
    if not infos and not run_ids:
        raise AtlasError("no runs in this store yet: train one (`dfatlas train --config CONFIG`) or run `dfatlas demo`")
    pairs, missing = _resolve_classifiers(store, infos, classifiers)
    notes = [dict(run_id=r, approach=infos[r].approach, classifier=c, label=display_label(infos[r].approach, c),
                  dataset="(all)", role="same-db", level=level, note=_missing_note(infos[r], c), aggregation=agg_tag)
             for r, c in missing]
    if not pairs:
        return pd.DataFrame(notes, columns=COLUMNS)
    data = evaluation_data.evaluation_data(store, pairs, with_probs=(level == "video"))
    meta = _meta(data["videos"])
    table = data["scores"]
    extra = _extra_members(data["also_in"], meta)
    names = meta.names
    true_names = np.array(names["true_class"] or [None], dtype=object)
    rows = list(notes)
    for b in _blocks(table, level, aggregation, top_k):
        run_id, clf = pairs[b.combo]
        info = infos[run_id]
        superset, cross = info.superset, info.cross_db
        db = names["database"][meta.database[b.video]]
        split = names["split"][meta.split[b.video]]
        is_real = meta.is_real[b.video]
        labelled = meta.labelled[b.video]
        in_super = np.isin(db, list(superset))
        in_cross = np.isin(db, list(cross))
        val = theta_population(info, db, split, true_names[meta.true_class[b.video]], labelled)
        base = dict(run_id=run_id, approach=info.approach, classifier=clf,
                    label=display_label(info.approach, clf), level=level, aggregation=agg_tag)
        if not val.any():
            rows.append(base | dict(dataset="(all)", role="same-db", note="no validation predictions: θ undefined"))
            continue
        try:
            theta = far_threshold(b.score[val & ~is_real], target_fpr)
            theta_flag = theta_note(int((val & ~is_real).sum()), int((val & is_real).sum()))
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
            # Attribution accuracy as open-world papers report it ("known / new"): over the samples of
            # the run's known classes only; the unseen fakes are counted apart, with the share of them
            # rejected as fake at θ (no class of theirs exists to be right about).
            known = m_lab & (true_idx >= 0)
            new = m_lab & (true_idx < 0) & ~is_real
            acc = acc_ci = None
            if info.kind.attributes and known.any():
                acc = attribution_accuracy(true_idx[known], b.pred[known])
                if bootstrap:
                    acc_ci = attribution_accuracy_ci(true_idx[known], b.pred[known], n_boot=bootstrap, seed=seed,
                                                     groups=b.video[known])
            rows.append(base | dict(
                dataset=name, role=role, auc=m.auc, fpr=m.fpr, fnr=m.fnr, hter=m.hter, threshold=m.threshold,
                accuracy=acc, n_real=m.n_real, n_fake=m.n_fake,
                n_known=int(known.sum()), n_new=int(new.sum()),
                new_as_fake=float((b.score[new] < theta).mean()) if new.any() else None,
                accuracy_lo=acc_ci[0] if acc_ci else None, accuracy_hi=acc_ci[1] if acc_ci else None,
                note="; ".join(n for n in (m.note, theta_flag) if n),
                auc_lo=m.auc_ci[0] if m.auc_ci else None, auc_hi=m.auc_ci[1] if m.auc_ci else None,
                hter_lo=m.hter_ci[0] if m.hter_ci else None, hter_hi=m.hter_ci[1] if m.hter_ci else None))
    df = pd.DataFrame(rows, columns=COLUMNS)
    if df.empty:
        return df
    df["_r"] = df.role.map(ROLE_ORDER).fillna(9)
    df["_a"] = df.approach.map({a: i for i, a in enumerate(approach_names())}).fillna(9)
    df = df.sort_values(["_r", "_a", "run_id", "classifier", "dataset"], kind="stable").drop(columns=["_r", "_a"])
    for c in ("n_real", "n_fake", "n_known", "n_new"):
        df[c] = df[c].fillna(0).astype(int)
    return df.reset_index(drop=True)


def default_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of a `metrics_table(..., classifiers='all')` that use each run's default classifier."""
    if table.empty:
        return table
    avail = table.groupby("run_id")["classifier"].unique()
    keep = {r: choose_classifier(a, avail.get(r, [])) for r, a in zip(table["run_id"], table["approach"])}
    return table.loc[[keep.get(r) == c for r, c in zip(table["run_id"], table["classifier"])]]


# --- per-video views (dashboard, analysis) ------------------------------------

def confusion(store: Store, run_id: str, classifier: str, datasets=None, level: str = "video") -> pd.DataFrame:
    """True vs predicted class counts; unseen fakes get one row per database."""
    info = read_runs(store, [run_id])[run_id]
    df = sample_scores(store, info, classifier, datasets, level)
    true = true_display(df)
    extra = sorted(set(true) - set(info.classes))
    pred_order = list(info.classes) + ([UNATTRIBUTED_LABEL] if (df.pred_class == UNATTRIBUTED).any() else [])
    return confusion_matrix(true, df.pred_label.to_numpy(), true_order=list(info.classes) + extra, pred_order=pred_order)


def class_fpr(store: Store, run_id: str, classifier: str, datasets=None, level: str = "video",
              target_fpr: float = 0.10, aggregation: str = DEFAULT_AGGREGATION,
              top_k: int = DEFAULT_TOP_K) -> pd.DataFrame:
    """FPR of each fake class at θ (θ from the run's validation population, `engine.scores`)."""
    sel = select_scores(store, run_id, classifier, datasets, level, target_fpr, aggregation, top_k)
    df = sel.labelled()
    return per_class_fpr(sel.theta, df.real_score.to_numpy(), true_display(df), df.is_real.astype(bool).to_numpy())


def detection_losses(store: Store, settings_key: str | None = None) -> pd.DataFrame:
    """Videos per (dataset, class) lost to face extraction, by status."""
    return evaluation_data.detection_losses(store, settings_key)
