"""Classifiers on stored embeddings: kNN, logistic regression and SVM.

For the metric-learning heads (triplet, arcfacemod) the paper fits these on
the embeddings of the training super-set's *validation* split. Here they are
plain scikit-learn estimators, fitted on that split only:

- validation predictions are **out-of-fold** (`cross_val_predict`, folds
  grouped by video so no video's frames sit on both sides), so θ is never set
  on in-sample scores (DESIGN.md "Scores and thresholds");
- every other dataset is predicted by the model fitted on all of the split;
- `[classifiers] model_selection = true` picks hyper-parameters by grouped
  cross-validation on the validation split only (the paper tuned on test).

Nothing is pickled: the parameters go to the `classifiers` table and a later
analysis refits from the stored validation embeddings (`fit_classifier`,
deterministic), then applies the model (`apply_to_embeddings`).
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

from data_catalog.errors import AtlasError

from .config import ClassifiersSection
from .runs import RunRecord, read_run
from .store import Store, arrow_to_matrix
from .store import embeddings as embedding_table
from .store import predictions as prediction_table

REAL = 0  # runs.classes[0] is always 'real'


@dataclass(frozen=True)
class ClassifierName:
    """How a classifier id is shown: the paper's suffix ('TripletLoss-NN') and a title for menus."""
    suffix: str
    title: str


# The one classifier naming: ids as stored in `predictions.classifier`, in menu order.
CLASSIFIERS = {"native": ClassifierName("", "native head"), "knn": ClassifierName("NN", "kNN"),
               "lr": ClassifierName("LR", "logistic regression"), "svm": ClassifierName("SVM", "SVM")}
NAMES = ("knn", "lr", "svm")  # the embedding classifiers fitted here


def classifier_order(names) -> list[str]:
    """Classifier ids in menu order (unknown ones last, sorted)."""
    have = set(names)
    return [c for c in CLASSIFIERS if c in have] + sorted(have - set(CLASSIFIERS))


# --- estimators ---------------------------------------------------------------

def build_estimator(name: str, params: dict, seed: int = 0):
    """A fresh scikit-learn estimator for classifier `name` with `params`."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC, LinearSVC

    if name == "knn":
        # uniform weights: P(real) is exactly the share of real neighbours
        return KNeighborsClassifier(n_neighbors=int(params["k"]), weights="uniform")
    if name == "lr":
        return LogisticRegression(C=float(params["C"]), max_iter=2000)
    if name == "svm":
        if params.get("kernel", "rbf") == "linear":
            return CalibratedClassifierCV(LinearSVC(C=float(params["C"]), random_state=seed), cv=3)
        return SVC(C=float(params["C"]), kernel=params.get("kernel", "rbf"), probability=True, random_state=seed)
    raise AtlasError(f"unknown classifier {name!r} (choose from {', '.join(NAMES)})")


def default_params(name: str, cfg: ClassifiersSection) -> dict:
    if name == "knn":
        return {"k": cfg.knn_k}
    if name == "lr":
        return {"C": cfg.lr_c}
    if name == "svm":
        return {"C": cfg.svm_c, "kernel": cfg.svm_kernel}
    raise AtlasError(f"unknown classifier {name!r} (choose from {', '.join(NAMES)})")


def _grid(name: str, cfg: ClassifiersSection) -> list[dict]:
    base = default_params(name, cfg)
    if name == "knn":
        return [base | {"k": int(k)} for k in cfg.knn_k_grid]
    return [base | {"C": float(c)} for c in cfg.c_grid]


def _request(name: str, cfg: ClassifiersSection, seed: int) -> dict:
    """What was asked (the cache key of a fit): defaults, or the selection grid."""
    req = {"classifier": name, "seed": seed, "cv_folds": cfg.cv_folds, "model_selection": cfg.model_selection,
           "folds_grouped_by": "identity"}
    if cfg.model_selection:
        req["grid"] = _grid(name, cfg)
    else:
        req["params"] = default_params(name, cfg)
    return req


def section_of_requests(requests: dict[str, dict]) -> ClassifiersSection:
    """The [classifiers] section that makes `classify_run` repeat stored fits: {classifier: its recorded
    request (`_request`)}, as `dfatlas export` writes them, so an imported export refits the same models."""
    base = ClassifiersSection()
    if not requests:
        return base
    any_req = next(iter(requests.values()))
    fields: dict = {"enabled": tuple(n for n in NAMES if n in requests),
                    "cv_folds": int(any_req.get("cv_folds", base.cv_folds)),
                    "model_selection": bool(any_req.get("model_selection", False))}
    for name, req in requests.items():
        if fields["model_selection"]:
            grid = req.get("grid") or []
            if name == "knn":
                fields["knn_k_grid"] = tuple(int(g["k"]) for g in grid)
            elif grid:
                fields["c_grid"] = tuple(float(g["C"]) for g in grid)
                if name == "svm":
                    fields["svm_kernel"] = grid[0].get("kernel", base.svm_kernel)
            continue
        params = req.get("params") or {}
        if name == "knn" and "k" in params:
            fields["knn_k"] = int(params["k"])
        elif name == "lr" and "C" in params:
            fields["lr_c"] = float(params["C"])
        elif name == "svm" and "C" in params:
            fields["svm_c"] = float(params["C"])
            fields["svm_kernel"] = params.get("kernel", base.svm_kernel)
    return dataclasses.replace(base, **fields)


def recorded_requests(store: Store, run_id: str) -> dict[str, dict]:
    """{classifier: the request its stored fit was made with} of a run's embedding classifiers."""
    out = {}
    for name in fitted_names(store, run_id):
        rec = stored_params(store, run_id, name)
        if rec and isinstance(rec.get("request"), dict):
            out[name] = rec["request"]
    return out


def _clip_k(params: dict, n_train: int) -> dict:
    if "k" in params and params["k"] > n_train:
        return params | {"k": max(1, n_train)}
    return params


# --- data -----------------------------------------------------------------------

@dataclass
class ValSplit:
    X: np.ndarray
    y: np.ndarray         # index into runs.classes
    groups: np.ndarray    # identity group per face (CV folds never split one; see `identity_groups`)
    face_ids: list
    datasets: list
    n_classes: int
    videos: np.ndarray | None = None  # video id per face


def identity_groups(video_ids, identities, source_ids) -> np.ndarray:
    """Group label per row: connected components of the videos linked by a shared identity or source id.

    An FF++ pair's reals and fakes share their video numbers (identity = target, source_ids = target and
    source), so they land in one group, and so does everything else made from the same people; a video
    with neither is its own group. Folds grouped this way never put one person on both sides.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    vid_codes, vid_index = np.unique(np.asarray(video_ids, dtype=object).astype(str), return_inverse=True)
    n_vid = len(vid_codes)
    rows, tokens = [], []
    for i, ident, srcs in zip(vid_index, identities, source_ids):  # one row per face: tokens are few
        if ident is not None and ident == ident and str(ident):
            rows.append(i)
            tokens.append(str(ident))
        for s in (srcs if srcs is not None else ()):
            if s is not None and str(s):
                rows.append(i)
                tokens.append(str(s))
    if not tokens:
        return vid_index.astype(np.int64)
    tok_codes, tok_index = np.unique(np.asarray(tokens, dtype=object).astype(str), return_inverse=True)
    graph = coo_matrix((np.ones(len(rows)), (np.asarray(rows), n_vid + tok_index)),
                       shape=(n_vid + len(tok_codes), n_vid + len(tok_codes)))
    _, labels = connected_components(graph, directed=False)
    return labels[vid_index].astype(np.int64)


def classifiers_config(run: RunRecord, fallback: ClassifiersSection | None = None) -> ClassifiersSection:
    """The run's own stored [classifiers] section (else `fallback`, else the defaults)."""
    return run.section(ClassifiersSection, "classifiers", fallback)


def load_val(store: Store, run_id: str) -> ValSplit:
    """The run's embeddings of the super-set validation split, with labels."""
    run = read_run(store, run_id)
    if not run.superset:
        raise AtlasError(f"run {run_id}: cannot tell which databases form its training super-set")
    datasets = list(run.validation_datasets)
    t = embedding_table.dataset_embeddings(store, run_id, datasets, labelled=True)
    if t.num_rows == 0:
        if not embedding_table.embedded_count(store, run_id):
            raise AtlasError(f"run {run_id} has no embeddings yet: run `dfatlas embed --config CONFIG --run {run_id}` first")
        raise AtlasError(f"run {run_id} has no embeddings of the validation split ({', '.join(datasets)}): "
                         "classifiers are fitted there; re-run `dfatlas embed`")
    classes = run.classes
    index = {c: i for i, c in enumerate(classes)}
    true = t["true_class"].to_pylist()
    y = np.array([index.get(c, -1) for c in true], dtype=np.int64)
    keep = y >= 0
    X = arrow_to_matrix(t["embedding"])
    # Faces of classes outside the taxonomy (a super-set database's unseen fakes) are not fitted on;
    # classify_run predicts them with the model fitted on the rest, like any other held-out face.
    if REAL not in set(y[keep]):
        raise AtlasError(f"run {run_id}: the validation split has no real faces; a real-score cannot be learnt")
    if len(set(y[keep])) < 2:
        raise AtlasError(f"run {run_id}: the validation split holds a single class; nothing to classify")
    vids = np.asarray(t["video_id"].to_pylist(), dtype=object)
    groups = identity_groups(vids, t["identity"].to_pylist(), t["source_ids"].to_pylist())
    return ValSplit(X[keep], y[keep], groups[keep], [f for f, k in zip(t["face_id"].to_pylist(), keep) if k],
                    [d for d, k in zip(t["dataset"].to_pylist(), keep) if k], len(classes), vids[keep])


def fold_count(val: ValSplit, folds: int) -> tuple[int, str]:
    """Folds the validation split supports, and a note when that is fewer than asked.

    Out-of-fold real-scores need real and fake groups on both sides of every split: at least two identity
    groups holding reals and two holding fakes. Fewer is a clear error naming what is missing.
    """
    real_groups = len(set(val.groups[val.y == REAL].tolist()))
    fake_groups = len(set(val.groups[val.y != REAL].tolist()))
    n_videos = len(set(val.videos.tolist())) if val.videos is not None else None
    possible = min(folds, real_groups, fake_groups)
    if possible < 2:
        vids = "" if n_videos is None else f" ({n_videos} video{'s' if n_videos != 1 else ''})"
        raise AtlasError(f"the validation split{vids} has {real_groups} real and {fake_groups} fake identity "
                         f"group(s): out-of-fold scores need at least 2 of each (add validation videos of "
                         "other people, or fit no embedding classifiers for this run)")
    note = "" if possible == folds else (f"{possible}-fold instead of {folds}-fold out-of-fold scores: the "
                                         f"validation split has {real_groups} real and {fake_groups} fake "
                                         "identity groups")
    return possible, note


def _cv(val: ValSplit, folds: int, seed: int):
    from sklearn.model_selection import StratifiedGroupKFold

    n, _note = fold_count(val, folds)
    return StratifiedGroupKFold(n_splits=n, shuffle=True, random_state=seed)


def _real_auc_scorer(est, X, y):
    from sklearn.metrics import roc_auc_score

    p = est.predict_proba(X)
    cls = list(est.classes_)
    score = p[:, cls.index(REAL)] if REAL in cls else np.zeros(len(X))
    is_real = y == REAL
    if is_real.all() or not is_real.any():
        return np.nan
    return roc_auc_score(is_real, score)


def select_params(name: str, val: ValSplit, cfg: ClassifiersSection, seed: int) -> tuple[dict, list[dict]]:
    """Hyper-parameters by grouped CV on the validation split (score: real-vs-fake AUC)."""
    from sklearn.model_selection import cross_val_score

    cv = _cv(val, cfg.cv_folds, seed)
    n_train = int(len(val.y) * (cv.get_n_splits() - 1) / cv.get_n_splits())
    results = []
    for params in _grid(name, cfg):
        params = _clip_k(params, n_train - 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = cross_val_score(build_estimator(name, params, seed), val.X, val.y, groups=val.groups, cv=cv,
                                scoring=_real_auc_scorer)
        results.append({"params": params, "mean_auc": float(np.nanmean(s)), "fold_auc": [float(v) for v in s]})
    best = max(results, key=lambda r: (np.nan_to_num(r["mean_auc"], nan=-1), -results.index(r)))
    return best["params"], results


def _full_probs(est, p: np.ndarray, n_classes: int) -> np.ndarray:
    out = np.zeros((p.shape[0], n_classes), dtype=np.float32)
    out[:, np.asarray(est.classes_, dtype=np.int64)] = p
    return out


def predict_with(est, X: np.ndarray, n_classes: int) -> dict:
    """`pred_class`, `real_score` (= P(real); kNN: share of real neighbours) and `probs` [N, C]."""
    probs = _full_probs(est, est.predict_proba(X), n_classes)
    return {"pred_class": probs.argmax(1).astype(np.int32), "real_score": probs[:, REAL].astype(np.float64),
            "probs": probs}


def stored_params(store: Store, run_id: str, name: str) -> dict | None:
    return prediction_table.classifier_record(store, run_id, name)


def fit_classifier(store: Store, run_id: str, name: str, cfg: ClassifiersSection | None = None, val: ValSplit | None = None):
    """Refit classifier `name` of a run on its stored validation embeddings.

    Uses the parameters recorded by `dfatlas classify` (so model selection is
    not repeated), else the run's stored config, else `cfg`. Deterministic.
    The estimator's `classes_` are indices into `runs.classes`.
    """
    run = read_run(store, run_id)
    val = val or load_val(store, run_id)
    rec = stored_params(store, run_id, name)
    if rec is not None:
        params, seed = rec["params"], int(rec["request"]["seed"])
    else:
        ccfg = cfg or classifiers_config(run)
        seed = run.seed
        params = select_params(name, val, ccfg, seed)[0] if ccfg.model_selection else default_params(name, ccfg)
    params = _clip_k(params, len(val.y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_estimator(name, params, seed).fit(val.X, val.y)


def fitted_names(store: Store, run_id: str) -> list[str]:
    return prediction_table.fitted_classifiers(store, run_id)


def apply_to_embeddings(store: Store, run_id: str, embeddings: np.ndarray, names=None, cfg=None,
                        progress: Callable[[int, int], None] | None = None) -> dict[str, dict]:
    """Refit the run's classifiers from stored data and apply them to new embeddings.

    Returns {name: {pred_class, real_score, probs}}; used to analyse unknown sets.
    """
    names = list(names or fitted_names(store, run_id))
    if not names:
        raise AtlasError(f"run {run_id} has no fitted classifiers: run `dfatlas classify --config CONFIG --run {run_id}` first")
    val = load_val(store, run_id)
    out = {}
    for i, name in enumerate(names):
        est = fit_classifier(store, run_id, name, cfg, val=val)
        out[name] = predict_with(est, np.asarray(embeddings, dtype=np.float32), val.n_classes)
        if progress:
            progress(i + 1, len(names))
    return out


# --- the classify job ---------------------------------------------------------------

def _pred_table(run_id: str, name: str, face_ids, datasets, pred: dict, out_of_fold: bool):
    return prediction_table.predictions_table(run_id, name, face_ids, datasets, pred["pred_class"],
                                              pred["real_score"], pred["probs"], out_of_fold)


def classify_run(store: Store, run_id: str, cfg: ClassifiersSection, names=None, force: bool = False,
                 progress: Callable[[str, int, int], None] | None = None, chunk: int = 50_000) -> list[dict]:
    """Fit and apply the enabled classifiers of one run; returns a summary row per classifier.

    Skips a classifier whose recorded request matches and whose predictions
    cover every embedded face; otherwise predicts only the faces that are
    missing. Validation faces it is fitted on get out-of-fold predictions;
    every other face (other splits, and validation faces of classes outside
    the taxonomy) is predicted by the model fitted on the whole split.
    """
    run = read_run(store, run_id)
    if not run.kind.embedding_classifiers:
        raise AtlasError(f"run {run_id} is a {run.approach} run: it is evaluated with its own head "
                         f"(classifier 'native'); kNN/LR/SVM are for runs whose embedding they classify")
    names = list(names or cfg.enabled)
    emb_counts = embedding_table.embedding_counts(store, run_id)
    if not emb_counts:
        raise AtlasError(f"run {run_id} has no embeddings yet: run `dfatlas embed --config CONFIG --run {run_id}` first")
    val = None
    summary = []
    for name in names:
        req = _request(name, cfg, run.seed)
        rec = stored_params(store, run_id, name)
        same = rec is not None and rec.get("request") == req and not force
        have_n = prediction_table.prediction_counts(store, run_id, name) if same else {}
        if val is None:
            val = load_val(store, run_id)
            try:
                _folds, fold_note = fold_count(val, cfg.cv_folds)
            except AtlasError as exc:
                raise AtlasError(f"run {run_id}: {exc}") from None
        val_sets = set(val.datasets)
        missing = [d for d, n in emb_counts.items() if have_n.get(d, 0) < n]
        if same and not missing:
            summary.append({"classifier": name, "status": "cached", "params": rec["params"], "datasets": 0})
            continue
        selection = None
        if same:
            params = rec["params"]
        elif cfg.model_selection:
            params, selection = select_params(name, val, cfg, run.seed)
        else:
            params = default_params(name, cfg)
        cv = _cv(val, cfg.cv_folds, run.seed)
        n_train = int(len(val.y) * (cv.get_n_splits() - 1) / cv.get_n_splits())
        params = _clip_k(params, n_train - 1)
        tables = []
        if not same or any(d in val_sets for d in missing):
            tables.append(_pred_table(run_id, name, val.face_ids, val.datasets,
                                      _out_of_fold(name, params, val, cv, run.seed), True))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = build_estimator(name, params, run.seed).fit(val.X, val.y)
        todo = missing if same else list(emb_counts)
        record = {"run_id": run_id, "classifier": name,
                  "params_json": json.dumps({"request": req, "params": params}, sort_keys=True),
                  "fitted_on": ",".join(sorted(val_sets)), "n_fit": int(len(val.y)),
                  "selection_json": json.dumps(selection) if selection else None}
        prediction_table.write_predictions(store, tables, replace_classifier=None if same else (run_id, name),
                                           fit_record=record)
        pending, n_pending, n_sets = [], 0, 0
        for i, d in enumerate(todo):
            t = embedding_table.unpredicted_embeddings(store, run_id, name, d)
            fids = t["face_id"].to_pylist()
            n_sets += bool(fids)
            X = arrow_to_matrix(t["embedding"])
            for s in range(0, len(fids), chunk):
                pred = predict_with(est, X[s:s + chunk], val.n_classes)
                pending.append(_pred_table(run_id, name, fids[s:s + chunk], [d] * len(fids[s:s + chunk]), pred, False))
                n_pending += len(fids[s:s + chunk])
            if n_pending >= 500_000 or i == len(todo) - 1:  # few, large transactions
                prediction_table.write_predictions(store, pending)
                pending, n_pending = [], 0
            if progress:
                progress(name, i + 1, len(todo))
        summary.append({"classifier": name, "status": "fitted" if not same else "extended", "params": params,
                        "datasets": n_sets, "n_fit": int(len(val.y)), "note": fold_note})
    return summary


def _out_of_fold(name: str, params: dict, val: ValSplit, cv, seed: int) -> dict:
    """Cross-validated predictions of the validation split (folds grouped by video)."""
    from sklearn.model_selection import cross_val_predict

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        oof = cross_val_predict(build_estimator(name, params, seed), val.X, val.y, groups=val.groups, cv=cv,
                                method="predict_proba")
    # cross_val_predict orders columns by the sorted labels present in y
    probs = np.zeros((len(val.y), val.n_classes), dtype=np.float32)
    probs[:, np.unique(val.y)] = oof
    return {"pred_class": probs.argmax(1).astype(np.int32), "real_score": probs[:, REAL].astype(np.float64),
            "probs": probs}
