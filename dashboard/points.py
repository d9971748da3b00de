"""One run's map points, held once per run as codes: every placed face with its video, dataset, true class
and every classifier's prediction at face and at video level.

Built from one store query (`engine.store.projections.run_map_points`) without a Python loop or a string
conversion per face; the pages take their points from it (`RunPoints.frame`: pandas categoricals over the
shared codes) and the browser map its payload (`dashboard.components.scatter_map.payload.encode`). So a
change of classifier, dataset or level reads nothing from the store and re-encodes nothing: at a million
faces that was 11 s per (classifier, level) and 46 s for the payload.

Rows are in one seeded shuffled order (the map's draw order: no class is drawn last over the others).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from data_catalog.records import UNSEEN_FAKE

from .queries import FAKE, NO_PRED, UNLABELLED, correctness

CORRECT = ("correct", "incorrect", "unknown")
DRAW_ORDER_SEED = 0
LEVELS = ("frame", "video")


@dataclass(frozen=True, eq=False)
class RunPoints:
    """Codes per row (face); the vocabularies they index. Read-only: shared between sessions."""

    face_id: pa.Array                  # string
    video: np.ndarray                  # int32 -> videos
    videos: np.ndarray                 # object: video ids
    dataset: np.ndarray                # int16 -> datasets
    datasets: tuple[str, ...]          # sorted
    database_of: tuple[str, ...]       # the database of each dataset
    x: np.ndarray                      # float32
    y: np.ndarray
    true: np.ndarray                   # int16 -> labels
    labels: tuple[str, ...]            # the run's classes, fake, unseen fake, unlabelled, no prediction, others
    classifiers: tuple[str, ...]
    pred: dict = field(repr=False)     # (classifier, level) -> int16 label codes per face
    score: dict = field(repr=False)    # (classifier, level) -> float32 real-score per face (NaN: none)
    ok_table: np.ndarray = field(repr=False)  # [true code, pred code] -> CORRECT code

    @property
    def n(self) -> int:
        return len(self.x)

    def code(self, label: str) -> int:
        return self.labels.index(label)

    def predicted(self, classifier: str, level: str) -> tuple[np.ndarray, np.ndarray]:
        """(label codes, real-scores) of a classifier at a level ('video': every face carries its video's)."""
        key = (classifier, "video" if level == "video" else "frame")
        if key not in self.pred:  # a classifier without predictions on this map
            return np.full(self.n, self.code(NO_PRED), np.int16), np.full(self.n, np.nan, np.float32)
        return self.pred[key], self.score[key]

    def correct(self, pred: np.ndarray) -> np.ndarray:
        return self.ok_table[self.true, pred]

    def rows_of(self, datasets) -> np.ndarray:
        """Row positions of the points of `datasets` (in draw order)."""
        want = [i for i, d in enumerate(self.datasets) if d in set(datasets)]
        if len(want) == len(self.datasets):
            return np.arange(self.n)
        return np.flatnonzero(np.isin(self.dataset, want))

    def frame(self, classifier: str, datasets, level: str) -> pd.DataFrame:
        """The pages' points (dashboard.queries.map_points' columns) as categoricals over these codes."""
        rows = self.rows_of(datasets)
        pred, score = self.predicted(classifier, level)
        db_names = sorted(set(self.database_of))
        db_code = np.array([db_names.index(d) for d in self.database_of], np.int16)

        def cat(codes, categories):
            return pd.Categorical.from_codes(codes[rows], dtype=pd.CategoricalDtype(categories))

        labels = pd.Index(self.labels, dtype=object)
        return pd.DataFrame({
            "face_id": pd.arrays.ArrowStringArray(self.face_id.take(pa.array(rows))),
            "video_id": cat(self.video, pd.Index(self.videos, dtype=object)),
            "dataset": cat(self.dataset, pd.Index(self.datasets, dtype=object)),
            "database": cat(db_code[self.dataset], pd.Index(db_names, dtype=object)),
            "x": self.x[rows], "y": self.y[rows],
            "true_class": cat(self.true, labels), "pred": cat(pred, labels),
            "real_score": score[rows].astype(np.float64),
            "correct": cat(self.correct(pred), pd.Index(CORRECT, dtype=object)),
        })


def _dictionary(column) -> tuple[np.ndarray, np.ndarray]:
    """(int32 codes, sorted object values) of a string column: the same codes whatever the rows' order."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    enc = pc.dictionary_encode(arr)
    values = np.asarray(enc.dictionary.to_pylist(), dtype=object)
    order = np.argsort(values.astype(str), kind="stable")
    rank = np.empty(len(order), np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    return rank[enc.indices.to_numpy(zero_copy_only=False)], values[order]


def _label_lut(classes: list[str], labels: list[str]) -> np.ndarray:
    """Stored class index -> label code, as `queries._pred_labels` maps it: index k -> classes[k], len(classes)
    (and -1) -> fake, anything else (and NULL) -> no prediction."""
    return np.array([labels.index(c) for c in classes] + [labels.index(FAKE), labels.index(NO_PRED)], np.int16)


def _raw_codes(pred_idx: np.ndarray, n_classes: int) -> np.ndarray:
    """Stored class indices (NaN for none) -> positions in `_label_lut`."""
    idx = np.asarray(pred_idx, dtype=np.float64)
    codes = np.where(np.isnan(idx), n_classes + 1, np.where(idx < 0, n_classes, np.nan_to_num(idx)))
    return np.clip(codes, 0, n_classes + 1).astype(np.int64)


def from_table(table: pa.Table, classes: list[str], classifiers: tuple[str, ...]) -> RunPoints:
    """RunPoints from `run_map_points`' table (classifier i's columns `pred_idx_<i>`, `real_score_<i>`, `probs_<i>`)."""
    from engine.metrics import video_level
    from engine.store import arrow_to_matrix

    n = table.num_rows
    # the rows by face id (a canonical order), then one seeded shuffle of it: the draw order
    order = pc.sort_indices(table.column("face_id")).to_numpy()[np.random.default_rng(DRAW_ORDER_SEED).permutation(n)]
    video, videos = _dictionary(table.column("video_id"))
    video = video[order]
    ds_codes, ds_names = _dictionary(table.column("dataset"))
    datasets = sorted(ds_names)
    dataset = np.array([datasets.index(d) for d in ds_names], np.int16)[ds_codes[order]] if n else np.zeros(0, np.int16)
    db_codes, db_names = _dictionary(table.column("database"))
    _, first = np.unique(dataset, return_index=True)  # the first row of each dataset, in dataset order
    database_of = tuple(str(db_names[db_codes[order[i]]]) for i in first)
    t_codes, t_names = _dictionary(pc.fill_null(table.column("true_class"), UNLABELLED))
    base = list(classes) + [FAKE, UNSEEN_FAKE, UNLABELLED, NO_PRED]
    labels = list(dict.fromkeys(base)) + sorted(set(t_names) - set(base))
    true = np.array([labels.index(t) for t in t_names], np.int16)[t_codes[order]] if n else np.zeros(0, np.int16)
    lut = _label_lut(list(classes), labels)
    pred, score = {}, {}
    for i, clf in enumerate(classifiers):
        idx = table.column(f"pred_idx_{i}").to_numpy(zero_copy_only=False).astype(np.float64)[order]
        face_score = table.column(f"real_score_{i}").to_numpy(zero_copy_only=False).astype(np.float64)[order]
        pcol = table.column(f"probs_{i}")
        probs = arrow_to_matrix(pcol)[order] if n and pcol.null_count == 0 else None
        pred[(clf, "frame")] = lut[_raw_codes(idx, len(classes))]
        score[(clf, "frame")] = face_score.astype(np.float32)
        # video level (engine.metrics.video_level): every face carries its video's score and majority class
        has = ~np.isnan(idx)
        v_score = np.full(len(videos), np.nan)
        v_pred = np.full(len(videos), np.nan)
        if has.any():
            per_video = video_level(video[has], face_score[has], idx[has].astype(np.int64),
                                    None if probs is None else probs[has])
            at = per_video["video_id"].to_numpy(np.int64)
            v_score[at] = per_video["real_score"].to_numpy(float)
            v_pred[at] = per_video["pred_class"].to_numpy(float)
        vs, vp = v_score[video], v_pred[video]
        score[(clf, "video")] = np.where(np.isnan(vs), face_score, vs).astype(np.float32)
        pred[(clf, "video")] = lut[_raw_codes(np.where(np.isnan(vp), idx, vp), len(classes))]
    grid_true, grid_pred = np.meshgrid(np.arange(len(labels)), np.arange(len(labels)), indexing="ij")
    lab = np.asarray(labels, dtype=object)
    ok = correctness(lab[grid_true.ravel()], lab[grid_pred.ravel()])
    ok_table = np.array([CORRECT.index(v) for v in ok], np.int8).reshape(len(labels), len(labels))
    return RunPoints(
        face_id=table.column("face_id").combine_chunks().take(pa.array(order)), video=video, videos=videos, dataset=dataset,
        datasets=tuple(datasets), database_of=database_of,
        x=table.column("x").to_numpy().astype(np.float32)[order], y=table.column("y").to_numpy().astype(np.float32)[order],
        true=true, labels=tuple(labels), classifiers=tuple(classifiers), pred=pred, score=score, ok_table=ok_table)
