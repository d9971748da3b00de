"""One score selection: which validation scores set θ and which scores are tested.

DESIGN.md "Scores and thresholds": θ comes from the pooled validation split
of the run's training super-set, **restricted to the taxonomy's classes**
(so every approach sets θ on the same validation fakes — a super-set
database's `unseen-fake` videos are tested, never used for θ), at the same
level (video or frame) as the metric. Validation predictions of the
embedding classifiers are out-of-fold (`engine.classify`).

`evaluate` (Tables 1/2), per-class FPR, the analysis report and the
dashboard's live metrics of a selection all come through here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from data_catalog.errors import AtlasError
from data_catalog.records import UNSEEN_FAKE, to_is_real

from .metrics import (DEFAULT_AGGREGATION, DEFAULT_TOP_K, Metrics, check_aggregation, evaluate_at, far_threshold,
                      video_level)
from .runs import RunRecord, read_run
from .store import Store, arrow_to_matrix
from .store import predictions as prediction_table

LEVELS = ("video", "frame")
UNATTRIBUTED_LABEL = "fake (unattributed)"


def check_level(level: str) -> str:
    if level not in LEVELS:
        raise AtlasError(f"level must be 'video' or 'frame', got {level!r}")
    return level


def theta_population(run: RunRecord, database, split, true_class, labelled) -> np.ndarray:
    """Mask of the samples whose scores set θ: labelled super-set validation samples of taxonomy classes."""
    database = np.asarray(database, dtype=object)
    true_class = np.asarray(true_class, dtype=object)
    return (np.isin(database, list(run.superset)) & (np.asarray(split, dtype=object) == "val")
            & np.asarray(labelled, dtype=bool) & np.isin(true_class, list(run.classes)))


def sample_scores(store: Store, run: RunRecord | str, classifier: str, datasets=None,
                  level: str = "video", aggregation: str = DEFAULT_AGGREGATION,
                  top_k: int = DEFAULT_TOP_K) -> pd.DataFrame:
    """Per-video (or per-face) real-score, predicted and true class of one run and classifier.

    Columns: video_id (face_id too at frame level), dataset, database, split,
    true_class, is_fake, is_real (None when unlabelled), real_score,
    pred_class, pred_label; agreement / n_frames at video level. A video's
    real-score (by `aggregation`, `engine.metrics.AGGREGATIONS`) and class come
    from `engine.metrics.video_level`; at frame level the aggregation does nothing.
    """
    check_level(level)
    check_aggregation(aggregation, top_k)
    run = read_run(store, run) if isinstance(run, str) else run
    t = prediction_table.face_scores(store, run.run_id, classifier, datasets)
    if t.num_rows == 0:
        raise AtlasError(f"run {run.run_id!r} has no {classifier!r} predictions"
                         f"{' for ' + ', '.join(datasets) if datasets else ''}: "
                         "run `dfatlas classify` / `dfatlas embed` first")
    df = t.drop_columns(["probs"]).to_pandas()
    if level == "video":
        probs = arrow_to_matrix(t["probs"]) if t["probs"].null_count == 0 else None
        vl = video_level(df.video_id.to_numpy(), df.real_score.to_numpy(), df.pred_class.fillna(-1).to_numpy(), probs,
                         aggregation=aggregation, top_k=top_k)
        meta = df.drop_duplicates("video_id").set_index("video_id")[
            ["dataset", "database", "split", "true_class", "is_fake"]]
        df = vl.join(meta, on="video_id")
    is_fake = df.is_fake
    df["is_real"] = pd.Series(np.where(is_fake.isna(), None, to_is_real(is_fake.fillna(False).to_numpy(bool))),
                              index=df.index, dtype=object)
    labels = np.array(list(run.classes) + [UNATTRIBUTED_LABEL], dtype=object)
    pc_ = df.pred_class.fillna(-1).astype(int).to_numpy()
    df["pred_label"] = labels[np.where(pc_ >= 0, pc_, len(run.classes))]
    return df.reset_index(drop=True)


def validation_scores(store: Store, run: RunRecord, classifier: str, level: str = "video",
                      aggregation: str = DEFAULT_AGGREGATION, top_k: int = DEFAULT_TOP_K) -> pd.DataFrame:
    """The θ population of one run and classifier (see `theta_population`), its videos scored by `aggregation`."""
    val = sample_scores(store, run, classifier, run.validation_datasets, level, aggregation, top_k)
    mask = theta_population(run, val.database, val.split, val.true_class, val.is_real.notna())
    return val.loc[mask].reset_index(drop=True)


MIN_THETA_FAKES = 2


def theta_note(n_fakes: int, n_reals: int) -> str:
    """A flag for tables when θ rests on too little: fewer than two validation fakes (bob.measure warns
    then too) or no validation reals (FNR at θ then says nothing about how θ was placed)."""
    notes = []
    if n_fakes < MIN_THETA_FAKES:
        notes.append(f"θ from {n_fakes} validation fake{'s' if n_fakes != 1 else ''} only")
    if n_reals == 0:
        notes.append("no validation reals")
    return "; ".join(notes)


def threshold_of(validation: pd.DataFrame, target_fpr: float = 0.10) -> float:
    """θ = bob.measure's far_threshold on the validation fakes."""
    fakes = validation.real_score.to_numpy(float)[~validation.is_real.astype(bool).to_numpy()]
    return far_threshold(fakes, target_fpr)


def theta_summary(store: Store, run: RunRecord, classifier: str, level: str = "video",
                  aggregation: str = DEFAULT_AGGREGATION, top_k: int = DEFAULT_TOP_K,
                  target_fpr: float = 0.10) -> dict:
    """θ of one run and classifier and how it was set, for reports: theta (None when undefined),
    target_fpr, level, aggregation, top_k, n_fake / n_real validation samples, datasets, note."""
    out = {"theta": None, "target_fpr": target_fpr, "level": level, "aggregation": aggregation, "top_k": top_k,
           "n_fake": 0, "n_real": 0, "datasets": list(run.validation_datasets), "note": ""}
    try:
        val = validation_scores(store, run, classifier, level, aggregation, top_k)
    except AtlasError as exc:
        return out | {"note": str(exc)}
    if val.empty:
        return out | {"note": "no labelled validation samples of the taxonomy's classes: θ undefined"}
    fake = ~val["is_real"].astype(bool).to_numpy()
    out |= {"n_fake": int(fake.sum()), "n_real": int((~fake).sum())}
    try:
        out["theta"] = threshold_of(val, target_fpr)
    except AtlasError as exc:
        out["note"] = str(exc)
    out["note"] = out["note"] or theta_note(out["n_fake"], out["n_real"])
    return out


@dataclass
class Selection:
    """θ's validation scores and the tested scores of one (run, classifier, datasets) at one level and
    video aggregation (θ is set at that same aggregation)."""

    run: RunRecord
    classifier: str
    level: str
    theta: float
    validation: pd.DataFrame
    test: pd.DataFrame
    aggregation: str = DEFAULT_AGGREGATION
    top_k: int = DEFAULT_TOP_K

    @property
    def note(self) -> str:
        """A flag when θ rests on too little (see `theta_note`), else ''."""
        fakes = int((~self.validation.is_real.astype(bool)).sum())
        return theta_note(fakes, len(self.validation) - fakes)

    def labelled(self, mask=None) -> pd.DataFrame:
        sub = self.test if mask is None else self.test.loc[np.asarray(mask, dtype=bool)]
        return sub.loc[sub.is_real.notna()]

    def metrics(self, mask=None, bootstrap: int = 0, seed: int = 0) -> Metrics | None:
        """AUC / FPR / FNR / HTER at θ of the labelled tested samples (under `mask`); None if none."""
        lab = self.labelled(mask)
        if lab.empty:
            return None
        return evaluate_samples(self.theta, lab.real_score.to_numpy(float), lab.is_real.astype(bool).to_numpy(),
                                bootstrap=bootstrap, seed=seed,
                                groups=lab.video_id.to_numpy() if self.level == "frame" else None)


def select_scores(store: Store, run: RunRecord | str, classifier: str, datasets=None, level: str = "video",
                  target_fpr: float = 0.10, aggregation: str = DEFAULT_AGGREGATION,
                  top_k: int = DEFAULT_TOP_K) -> Selection:
    """θ from the run's validation population, and the scores of `datasets` (None: every predicted one),
    both with videos scored by `aggregation` (`engine.metrics.AGGREGATIONS`; θ follows the choice)."""
    run = read_run(store, run) if isinstance(run, str) else run
    validation = validation_scores(store, run, classifier, level, aggregation, top_k)
    if validation.empty:
        raise AtlasError(f"run {run.run_id}: no labelled {classifier!r} validation predictions of the taxonomy's "
                         f"classes in {', '.join(run.validation_datasets)}: θ undefined")
    theta = threshold_of(validation, target_fpr)
    test = sample_scores(store, run, classifier, datasets, level, aggregation, top_k)
    return Selection(run, classifier, level, theta, validation, test, aggregation, top_k)


def evaluate_samples(theta: float, real_score, is_real, bootstrap: int = 0, seed: int = 0, groups=None) -> Metrics:
    """Metrics of any set of samples (a map selection, an analysed set) at a θ chosen here."""
    return evaluate_at(theta, np.asarray(real_score, float), np.asarray(is_real, bool), bootstrap=bootstrap,
                       seed=seed, test_groups=groups)


def true_display(df: pd.DataFrame) -> np.ndarray:
    """True class as confusion views show it: unseen fakes one row per database, 'unlabelled'."""
    tc = df.true_class.astype(object).to_numpy()
    unseen = tc == UNSEEN_FAKE
    out = tc.copy()
    out[unseen] = UNSEEN_FAKE + " (" + df.database.astype(str).to_numpy()[unseen] + ")"
    out[pd.isna(tc)] = "unlabelled"
    return out
