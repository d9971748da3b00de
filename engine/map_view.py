"""A run's map as it is shown: the points with their labels at a level, the class colours and marker
symbols, and the plotly figure — one home that the dashboard (`dashboard.figures`, `dashboard.queries`,
the map component) and the Python API (`dfatlas.Atlas.map`) share.

One colour per class everywhere (the run's taxonomy; `real` always #0072B2), one marker symbol per true
class (`data_catalog.taxonomy.MARKER_SYMBOLS` in class order). plotly is imported only to draw.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from data_catalog.errors import AtlasError
from data_catalog.names import printable
from data_catalog.records import REAL, UNSEEN_FAKE
from data_catalog.taxonomy import FAKE_COLOR, MARKER_SYMBOLS, UNSEEN_FAKE_COLOR, Taxonomy

from .metrics import DEFAULT_AGGREGATION, DEFAULT_TOP_K

# what a point is when it has no class of the run's own
UNLABELLED = "unlabelled"
FAKE = "fake"          # binary predictions: fake without attribution
NO_PRED = "no prediction"

REAL_COLOR = "#0072B2"
NEUTRAL = "#BBBBBB"
CORRECT_COLORS = {"correct": "#009E73", "incorrect": "#D55E00", "unknown": "#999999"}
# Okabe-Ito without blue/vermillion/green (taken above), then Tol's extra.
DATABASE_PALETTE = ("#E69F00", "#56B4E9", "#CC79A7", "#F0E442", "#000000", "#332288", "#44AA99", "#AA4499",
                    "#999933", "#661100")
COLOUR_MODES = {"pred": "predicted class", "true": "true class", "correct": "correct / incorrect",
                "database": "database"}


def marker_meaning(colour_mode: str) -> str:
    """What a marker's shape shows in a colour mode: the true class, or the predicted class when the colour
    already shows the true class (the one rule of `map_figure` and the map component)."""
    return "predicted class" if colour_mode == "true" else "true class"


# Colours for classes a run's stored taxonomy does not colour (runs stored without one): Paul Tol's
# muted colour-blind-safe set first; past its 11 colours, hues spaced by the golden angle at two
# lightness levels (distinct, no longer guaranteed colour-blind safe; the marker shapes still differ).
FALLBACK_COLORS = ("#CC6677", "#DDCC77", "#117733", "#88CCEE", "#882255", "#44AA99", "#999933", "#AA4499",
                   "#332288", "#E69F00", "#56B4E9")


def fallback_color(i: int) -> str:
    """The i-th fallback colour (see FALLBACK_COLORS)."""
    if i < len(FALLBACK_COLORS):
        return FALLBACK_COLORS[i]
    import colorsys

    k = i - len(FALLBACK_COLORS)
    r, g, b = colorsys.hls_to_rgb((k * 0.381966) % 1.0, 0.38 if k % 2 else 0.55, 0.65)
    return "#{:02X}{:02X}{:02X}".format(round(255 * r), round(255 * g), round(255 * b))


@dataclass(frozen=True)
class ClassStyle:
    """Names, colours and symbols for one run's classes (from its stored taxonomy)."""

    ids: tuple[str, ...]
    names: dict
    colors: dict

    @classmethod
    def for_run(cls, classes, taxonomy_json: str | None) -> "ClassStyle":
        """The style of a run's classes from its stored taxonomy (the `runs.taxonomy_json` text)."""
        tax = None
        if isinstance(taxonomy_json, str) and taxonomy_json:  # NULL (NaN in a DataFrame): no taxonomy stored
            try:
                tax = Taxonomy.from_dict(json.loads(taxonomy_json), "runs.taxonomy_json")
            except (ValueError, AtlasError):
                tax = None
        return cls.for_taxonomy(classes, tax)

    @classmethod
    def for_taxonomy(cls, classes, tax: Taxonomy | None) -> "ClassStyle":
        """Names and colours from a taxonomy (None: the class ids and the fallback colours)."""
        classes = tuple(classes)
        names, colors = {}, {}
        for i, c in enumerate(classes):
            names[c] = tax.display_name(c) if tax else c
            colors[c] = tax.color(c) if tax and c in tax.ids else fallback_color(i)
        colors[REAL] = REAL_COLOR
        names.setdefault(REAL, "Real")
        names.update({UNSEEN_FAKE: "Unseen fake", FAKE: "Fake (no attribution)", UNLABELLED: "Unlabelled",
                      NO_PRED: "No prediction"})
        colors.update({UNSEEN_FAKE: UNSEEN_FAKE_COLOR, FAKE: FAKE_COLOR, UNLABELLED: NEUTRAL, NO_PRED: NEUTRAL})
        return cls(classes, names, colors)

    def order(self) -> list[str]:
        return list(self.ids) + [FAKE, UNSEEN_FAKE, UNLABELLED, NO_PRED]

    def name(self, c: str) -> str:
        return self.names.get(c, str(c))

    def color(self, c: str) -> str:
        return self.colors.get(c, NEUTRAL)

    def symbol(self, c: str) -> str:
        order = self.order()
        i = order.index(c) if c in order else len(order)
        return MARKER_SYMBOLS[i % len(MARKER_SYMBOLS)]


def hover_text(name) -> str:
    """A name as plotly hover text: plotly renders `<b>`, `<a href>` and `<br>` in labels, so a video
    id or folder name is escaped (and kept on one line) before it reaches a label."""
    return html.escape(printable(name), quote=False)


def hover_names(video_ids: pd.Series) -> np.ndarray:
    """`hover_text` of every point's video id, computed once per distinct video (many faces share one)."""
    codes, uniques = pd.factorize(video_ids, sort=False)
    escaped = np.array([hover_text(v) for v in uniques], dtype=object)
    return escaped[codes] if len(uniques) else np.array([], dtype=object)


def _colour_of(mode: str, style: ClassStyle, databases: list[str]):
    if mode == "correct":
        return lambda k: CORRECT_COLORS.get(k, NEUTRAL), lambda k: k
    if mode == "database":
        lut = {d: DATABASE_PALETTE[i % len(DATABASE_PALETTE)] for i, d in enumerate(databases)}
        return lambda k: lut.get(k, NEUTRAL), lambda k: k
    return style.color, style.name


def map_figure(pts: pd.DataFrame, style: ClassStyle, colour_mode: str = "pred", density: bool = False,
               title: str = "", height: int = 620, highlight=None, highlight_name: str = ""):
    """The t-SNE map as Scattergl traces, one per (colour group, symbol group).

    Returns the figure and, per trace, the row indices into `pts` it draws
    (None for legend-only and density traces), to map a selection back.
    Colour = `colour_mode` (predicted class by default); marker symbol = true
    class (predicted class when colouring by true class). `highlight` (a mask
    over `pts`, e.g. an analysed set) draws those rows last — above every other
    point — larger and outlined in black, with `highlight_name` in the legend.
    """
    import plotly.graph_objects as go

    colour_col = {"pred": "pred", "true": "true_class", "correct": "correct", "database": "database"}[colour_mode]
    symbol_col = "pred" if marker_meaning(colour_mode) == "predicted class" else "true_class"
    databases = sorted(pts["database"].unique()) if len(pts) else []
    colour_fn, label_fn = _colour_of(colour_mode, style, databases)
    order = style.order()
    rank = {c: i for i, c in enumerate(order)}

    def key(k):
        return (rank.get(k, len(rank)), str(k))

    fig = go.Figure()
    rows: list = []
    marked = np.zeros(len(pts), bool) if highlight is None else np.asarray(highlight, bool)
    if len(pts):
        groups = pts.groupby([colour_col, symbol_col], sort=False).indices
        x, y = pts["x"].to_numpy(np.float32), pts["y"].to_numpy(np.float32)
        vid = hover_names(pts["video_id"])
        score = np.round(pts["real_score"].to_numpy(float), 3).astype(np.float32)
        true_arr, pred_arr = pts["true_class"].to_numpy(dtype=object), pts["pred"].to_numpy(dtype=object)
        colour_keys = []
        on_top = []  # (colour, symbol, rows) of highlighted points, drawn after everything else
        for (ck, sk) in sorted(groups, key=lambda g: (key(g[0]), key(g[1]))):
            idx = groups[(ck, sk)]
            if marked.any():
                if marked[idx].any():
                    on_top.append((ck, sk, idx[marked[idx]]))
                idx = idx[~marked[idx]]
                if not len(idx):
                    if ck not in colour_keys:
                        colour_keys.append(ck)
                    continue
            t, p = true_arr[idx[0]], pred_arr[idx[0]]
            where = f" ({hover_text(ck)})" if colour_mode == "database" else ""
            hover = (f"<b>%{{text}}</b>{where}<br>true: {hover_text(style.name(t))}<br>"
                     f"predicted: {hover_text(style.name(p))}"
                     "<br>real-score: %{customdata:.3f}<extra></extra>")
            fig.add_trace(go.Scattergl(
                x=x[idx], y=y[idx], mode="markers", text=vid[idx].tolist(), customdata=score[idx],
                hovertemplate=hover, name=hover_text(f"{label_fn(ck)} / {style.name(sk)}"), legendgroup=f"c:{ck}",
                showlegend=False,
                marker=dict(color=colour_fn(ck), symbol=style.symbol(sk), size=6, opacity=0.85,
                            line=dict(width=0)),
            ))
            rows.append(idx)
            if ck not in colour_keys:
                colour_keys.append(ck)
        # Legend entries: one per colour (clicking toggles all its traces), then the marker symbols.
        for ck in colour_keys:
            fig.add_trace(go.Scattergl(
                x=[None], y=[None], mode="markers", name=hover_text(label_fn(ck)), legendgroup=f"c:{ck}",
                legendgrouptitle_text=None, marker=dict(color=colour_fn(ck), symbol="circle", size=9),
                hoverinfo="skip"))
            rows.append(None)
        # Legend-only entries explaining the marker symbols.
        for sk in sorted(pts[symbol_col].unique(), key=key):
            fig.add_trace(go.Scattergl(
                x=[None], y=[None], mode="markers", name=hover_text(style.name(sk)), legendgroup="symbols",
                legendgrouptitle_text="marker = " + marker_meaning(colour_mode),
                marker=dict(color="#444444", symbol=style.symbol(sk), size=8), hoverinfo="skip",
            ))
            rows.append(None)
        if density:
            fig.add_trace(go.Histogram2dContour(
                x=x, y=y, ncontours=12, colorscale="Greys", showscale=False, contours_coloring="lines",
                line_width=1, opacity=0.5, hoverinfo="skip", name="density", showlegend=False))
            rows.append(None)
        for n, (ck, sk, idx) in enumerate(on_top):  # the highlighted points, last: above every other point
            t, p = true_arr[idx[0]], pred_arr[idx[0]]
            hover = (f"<b>%{{text}}</b><br>true: {hover_text(style.name(t))}<br>"
                     f"predicted: {hover_text(style.name(p))}<br>real-score: %{{customdata:.3f}}<extra></extra>")
            fig.add_trace(go.Scattergl(
                x=x[idx], y=y[idx], mode="markers", text=vid[idx].tolist(), customdata=score[idx],
                hovertemplate=hover, name=hover_text(highlight_name or "highlighted"), legendgroup="highlight",
                showlegend=n == 0, marker=dict(color=colour_fn(ck), symbol=style.symbol(sk), size=12, opacity=1.0,
                                               line=dict(width=2, color="#000000"))))
            rows.append(idx)
    fig.update_layout(
        title=title or None, height=height, margin=dict(l=10, r=10, t=40 if title else 10, b=10),
        dragmode="lasso", legend=dict(itemsizing="constant", groupclick="togglegroup", font=dict(size=11)),
        xaxis=dict(showticklabels=False, title=None, zeroline=False),
        yaxis=dict(showticklabels=False, title=None, zeroline=False, scaleanchor="x"),
        plot_bgcolor="white", uirevision="map", template="plotly_white",
    )
    return fig, rows


def pred_labels(pred_idx: np.ndarray, classes: list[str]) -> np.ndarray:
    """Class index -> class id; -1 -> 'fake' (binary); missing -> 'no prediction'."""
    lut = np.array(list(classes) + [FAKE, NO_PRED], dtype=object)
    idx = np.asarray(pred_idx, dtype=float)
    codes = np.where(np.isnan(idx), len(classes) + 1, np.where(idx < 0, len(classes), idx)).astype(int)
    codes = np.clip(codes, 0, len(lut) - 1)
    return lut[codes]


def correctness(true_class: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """'correct' / 'incorrect' / 'unknown' per point.

    Attribution must match the true class; for unseen fakes, and for binary
    predictions (no attribution), only real-vs-fake must match.
    """
    true_class = np.asarray(true_class, dtype=object)
    pred = np.asarray(pred, dtype=object)
    exact = true_class == pred
    real_vs_fake = (true_class == REAL) == (pred == REAL)
    coarse = (pred == FAKE) | (true_class == UNSEEN_FAKE)
    ok = np.where(coarse, real_vs_fake, exact)
    unknown = (true_class == UNLABELLED) | (pred == NO_PRED)
    return np.where(unknown, "unknown", np.where(ok, "correct", "incorrect")).astype(object)


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

    def video_scores(self, classifier: str, aggregation: str, top_k: int) -> np.ndarray:
        """Every face's video real-score by `aggregation` (the mean is precomputed; `engine.metrics.video_level`)."""
        from .metrics import video_level

        face = self.predicted(classifier, "frame")[1].astype(np.float64)
        has = ~np.isnan(face)
        out = np.full(len(self.videos), np.nan)
        if has.any():
            per_video = video_level(self.video[has], face[has], aggregation=aggregation, top_k=top_k)
            out[per_video["video_id"].to_numpy(np.int64)] = per_video["real_score"].to_numpy(float)
        return np.where(np.isnan(out[self.video]), face, out[self.video]).astype(np.float32)

    def correct(self, pred: np.ndarray) -> np.ndarray:
        return self.ok_table[self.true, pred]

    def rows_of(self, datasets) -> np.ndarray:
        """Row positions of the points of `datasets` (in draw order)."""
        want = [i for i, d in enumerate(self.datasets) if d in set(datasets)]
        if len(want) == len(self.datasets):
            return np.arange(self.n)
        return np.flatnonzero(np.isin(self.dataset, want))

    def frame(self, classifier: str, datasets, level: str, aggregation: str = DEFAULT_AGGREGATION,
              top_k: int = DEFAULT_TOP_K) -> pd.DataFrame:
        """The points of `datasets` as the pages and `map_points` give them (categoricals over these codes); at
        video level every face carries its video's majority class and real-score, its frames' by `aggregation`."""
        rows = self.rows_of(datasets)
        pred, score = self.predicted(classifier, level)
        if level == "video" and (aggregation, top_k) != (DEFAULT_AGGREGATION, DEFAULT_TOP_K):
            score = self.video_scores(classifier, aggregation, top_k)
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
    """Stored class index -> label code, as `pred_labels` maps it: index k -> classes[k], len(classes)
    (and -1) -> fake, anything else (and NULL) -> no prediction."""
    return np.array([labels.index(c) for c in classes] + [labels.index(FAKE), labels.index(NO_PRED)], np.int16)


def _raw_codes(pred_idx: np.ndarray, n_classes: int) -> np.ndarray:
    """Stored class indices (NaN for none) -> positions in `_label_lut`."""
    idx = np.asarray(pred_idx, dtype=np.float64)
    codes = np.where(np.isnan(idx), n_classes + 1, np.where(idx < 0, n_classes, np.nan_to_num(idx)))
    return np.clip(codes, 0, n_classes + 1).astype(np.int64)


def from_table(table: pa.Table, classes: list[str], classifiers: tuple[str, ...]) -> RunPoints:
    """RunPoints from `run_map_points`' table (classifier i's columns `pred_idx_<i>`, `real_score_<i>`, `probs_<i>`)."""
    from .metrics import video_level
    from .store import arrow_to_matrix

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

def run_points(store, run_id: str, classes, classifiers, projection_id: str | None = None) -> RunPoints | None:
    """Every point of the run's latest map (or of `projection_id`) with `classifiers`' predictions
    (`RunPoints`), or None without a map."""
    from .store import projections as map_table

    projection_id = projection_id or map_table.latest_projection_id(store, run_id)
    if projection_id is None:
        return None
    table = map_table.run_map_points(store, projection_id, run_id, tuple(classifiers))
    return from_table(table, list(classes), tuple(classifiers))


def map_points(store, run_id: str, classifier: str, datasets, level: str, classes,
               aggregation: str = DEFAULT_AGGREGATION, top_k: int = DEFAULT_TOP_K,
               projection_id: str | None = None) -> pd.DataFrame:
    """The map's points for one run and classifier: one row per face on the run's latest projection.

    Columns: face_id, video_id, dataset, database, x, y (float32), true_class ('unlabelled' when
    unknown), pred (class id / 'fake' / 'no prediction'), real_score, correct (`RunPoints.frame`); of the run's
    latest map, or of `projection_id`. At level
    'video' every face carries its video's prediction and real-score (its frames' by `aggregation`,
    `engine.metrics.video_level`).
    """
    points = run_points(store, run_id, classes, (classifier,), projection_id) if datasets else None
    return empty_points() if points is None else points.frame(classifier, datasets, level, aggregation, top_k)


def empty_points() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in [
        ("face_id", object), ("video_id", object), ("dataset", object), ("database", object), ("x", np.float32),
        ("y", np.float32), ("true_class", object), ("pred", object), ("real_score", float), ("correct", object)]})
