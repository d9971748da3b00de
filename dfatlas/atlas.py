"""`dfatlas.open(workspace)` and the `Atlas` it returns: one method per thing a notebook asks for.

Each method opens the workspace's store for one unit of work and closes it (DuckDB's rule: an open
reader blocks writers in other processes), and calls the engine function that the matching command
or dashboard page calls — so there is no second path to a number.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from data_catalog.errors import AtlasError

MAP_POINTS = 200_000  # above this many points `Atlas.map` draws a uniform sample (and says so in its title)


class Atlas:
    """A workspace seen from Python. Make one with `dfatlas.open`.

    Example::

        atlas = dfatlas.open("dfatlas-workspace")
        runs = atlas.runs()
        atlas.metrics().query("role == 'cross-db'")[["label", "dataset", "auc", "hter"]]
    """

    def __init__(self, workspace, writable: bool = False):
        self.workspace = workspace
        self.writable = writable

    def __repr__(self) -> str:
        return f"Atlas({str(self.workspace.root)!r}{', writable' if self.writable else ''})"

    @property
    def root(self) -> Path:
        """The workspace folder."""
        return self.workspace.root

    def _store(self):
        return self.workspace.store(read_only=True)

    def _need_writable(self, what: str) -> None:
        if not self.writable:
            raise AtlasError(f"{what} writes into the workspace: open it with dfatlas.open(..., writable=True)")

    # --- what the workspace holds ------------------------------------------------------------

    def runs(self, config: str | Path | None = None) -> pd.DataFrame:
        """The runs, oldest first — what `dfatlas runs` lists (`engine.runs.run_overview`).

        Columns: run_id, approach, label, backbone, status, best_epoch (from 1), epochs_done, embedding_dim,
        classifiers (list), default_classifier, maps, faces, synthetic, imported. `config`: only the runs
        of that experiment config.

        Example::

            atlas.runs()[["run_id", "label", "status", "classifiers", "maps"]]
        """
        from engine.config import load_config
        from engine.runs import config_runs, run_overview

        store = self._store()
        ids = config_runs(store, load_config(config), need=None) if config else None
        return run_overview(store, ids)

    def metrics(self, level: str = "video", classifier=None, runs=None, target_fpr: float = 0.10,
                bootstrap: int = 0) -> pd.DataFrame:
        """Tables 1/2 as one tidy table — the numbers of `dfatlas evaluate` (`engine.evaluation.metrics_table`,
        `engine.rendering.tidy_metrics`).

        One row per run, classifier and test set; `role` is 'same-db' (Table 1), 'cross-db' (Table 2) or
        'unknown'; auc, fpr, fnr, hter, threshold and accuracy are fractions. `classifier`: None for each
        run's default (the paper's choice), 'all', one name or a list; `runs`: run ids (default: all).

        Example::

            m = atlas.metrics(classifier="all")
            m.pivot_table(index="label", columns="dataset", values="hter")
        """
        from engine.evaluation import metrics_table
        from engine.rendering import tidy_metrics

        return tidy_metrics(metrics_table(self._store(), runs, classifier, level=level, target_fpr=target_fpr,
                                        bootstrap=bootstrap))

    def table(self, role: str = "same-db", level: str = "video", classifier=None, runs=None) -> pd.DataFrame:
        """Table 1 (`role='same-db'`) or Table 2 (`'cross-db'`) in the paper's layout, percentages as text —
        the rows `dfatlas evaluate` prints (`engine.rendering.paper_rows`).

        Example::

            print(atlas.table("cross-db").to_string(index=False))
        """
        from engine.evaluation import metrics_table
        from engine.rendering import paper_rows

        rows = paper_rows(metrics_table(self._store(), runs, classifier, level=level), role)
        return pd.DataFrame(rows)

    def embeddings(self, run_id: str, dataset: str) -> tuple[pd.DataFrame, np.ndarray]:
        """One dataset's faces of a run and their embeddings: (table, array [n, d] float32), in face-id order —
        the rows `dfatlas export` writes (`engine.export.embeddings_table`).

        Table columns: row, face_id, video_id, frame_index, database, split, dataset, role, label, true_class,
        identity, source_ids, method, also_in, synthetic.

        Example::

            faces, X = atlas.embeddings("triplet-0123abcd45", "synth-alpha/test")
            X.shape, faces.true_class.value_counts()
        """
        from engine.export import embeddings_table
        from engine.store import arrow_to_matrix
        from engine.store.embeddings import embedding_counts

        store = self._store()
        t = embeddings_table(store, run_id, [dataset])
        if t.num_rows == 0:
            have = ", ".join(embedding_counts(store, run_id)) or "none"
            raise AtlasError(f"run {run_id} has no embeddings of {dataset!r} (it has: {have})")
        return t.drop_columns(["embedding"]).to_pandas(), arrow_to_matrix(t["embedding"])

    # --- maps ------------------------------------------------------------------------------

    def _map_parts(self, run_id: str, datasets, classifier, level: str):
        from engine.analysis import available_classifiers, default_classifier
        from engine.map_view import ClassStyle, map_points
        from engine.projection import TSNEMap
        from engine.runs import read_run
        from engine.store.runs import run_rows

        store = self._store()
        run = read_run(store, run_id)
        tsne_map = TSNEMap.latest(store, run_id)
        if tsne_map is None:
            raise AtlasError(f"run {run_id} has no map yet: `dfatlas project --run {run_id}` computes it")
        classifier = classifier or default_classifier(run, available_classifiers(store, run))
        if datasets is None:
            datasets = list(run.split_datasets("test"))
        elif datasets == "all":
            placed = tsne_map.points(store)["dataset"].unique().tolist()
            hidden = set(run.split_datasets("train")) | set(run.validation_datasets)
            datasets = sorted(d for d in placed if d not in hidden)
        elif isinstance(datasets, str):
            datasets = [datasets]
        pts = map_points(store, run_id, classifier, tuple(datasets), level, list(run.classes))
        if pts.empty:
            raise AtlasError(f"run {run_id}'s map holds no points of {', '.join(datasets)}")
        taxonomy_json = run_rows(store, [run_id])["taxonomy_json"].iloc[0]
        style = ClassStyle.for_run(run.classes, taxonomy_json if isinstance(taxonomy_json, str) else None)
        return run, classifier, pts, style

    def map_points(self, run_id: str, datasets=None, classifier: str | None = None,
                   level: str = "video") -> pd.DataFrame:
        """The map's points as the dashboard reads them (`engine.map_view.map_points`): face_id, video_id,
        dataset, database, x, y, true_class, pred, real_score, correct. `datasets`: None for the super-set's
        test splits (the dashboard's first view), 'all' for every set on the map except the super-set's
        train and validation splits, or a list."""
        return self._map_parts(run_id, datasets, classifier, level)[2]

    def map(self, run_id: str, datasets=None, classifier: str | None = None, colour: str = "pred",
            level: str = "video", max_points: int = MAP_POINTS, height: int = 560, title: str | None = None):
        """The run's t-SNE map as a plotly figure, drawn as the dashboard draws it (`engine.map_view.map_figure`:
        colour = `colour` — 'pred', 'true', 'correct' or 'database' — and marker = true class, in the run's
        class colours). Above `max_points` points a uniform sample is drawn and the title says so.

        Example::

            atlas.map("triplet-0123abcd45", datasets="all", colour="true").show()
        """
        from engine.map_view import COLOUR_MODES, map_figure

        if colour not in COLOUR_MODES:
            raise AtlasError(f"colour must be one of {', '.join(COLOUR_MODES)}, got {colour!r}")
        run, classifier, pts, style = self._map_parts(run_id, datasets, classifier, level)
        note = ""
        if len(pts) > max_points:
            keep = np.sort(np.random.default_rng(0).choice(len(pts), max_points, replace=False))
            note = f" · {max_points:,} of {len(pts):,} points drawn (uniform sample; metrics use all)"
            pts = pts.iloc[keep].reset_index(drop=True)
        from engine.approaches import display_label

        heading = title if title is not None else f"{display_label(run.approach, classifier)} ({run_id})"
        fig, _rows = map_figure(pts, style, colour, title=heading + note, height=height)
        fig.update_layout(dragmode="zoom")
        return fig

    def compare(self, run_ids, datasets=None, colour: str = "pred", level: str = "video",
                max_points: int = MAP_POINTS, height: int = 520):
        """Maps of several runs side by side in one plotly figure (each run with its default classifier),
        as the dashboard's Compare page shows two.

        Example::

            atlas.compare(["triplet-0123abcd45", "arcfacemod-89ab01cd23"]).show()
        """
        from plotly.subplots import make_subplots

        figs = [self.map(r, datasets, None, colour, level, max_points) for r in run_ids]
        out = make_subplots(rows=1, cols=len(figs), subplot_titles=[f.layout.title.text for f in figs],
                            horizontal_spacing=0.03)
        for col, fig in enumerate(figs, start=1):
            for trace in fig.data:
                if col > 1:
                    trace.showlegend = False  # one legend: the classes keep their colours in every map
                out.add_trace(trace, row=1, col=col)
            out.update_xaxes(showticklabels=False, zeroline=False, row=1, col=col)
            out.update_yaxes(showticklabels=False, zeroline=False, scaleanchor=f"x{col if col > 1 else ''}",
                             row=1, col=col)
        out.update_layout(height=height, template="plotly_white", plot_bgcolor="white",
                          legend=dict(itemsizing="constant", groupclick="togglegroup"),
                          margin=dict(l=10, r=10, t=60, b=10))
        return out

    # --- files -------------------------------------------------------------------------------

    def export(self, run_id: str, out: str | Path, format: str = "parquet", tables=None,
               level: str = "video") -> dict[str, Path]:
        """Write a run's embeddings, predictions, map and metrics as Parquet or CSV — `dfatlas export`
        (`engine.export.export_run`); returns {table: path}.

        Example::

            files = atlas.export("triplet-0123abcd45", "exports/")
            pd.read_parquet(files["embeddings"])
        """
        from engine.export import TABLES, export_run

        return export_run(self._store(), run_id, out, format, tuple(tables or TABLES), level)

    # --- writing (writable=True) ----------------------------------------------------------------

    def analyze(self, run_id: str, input, name: str | None = None, labels=None, replace: bool = False,
                classifier: str | None = None, config=None, device: str = "auto", workers: int | None = None,
                wait: bool = False):
        """Analyse an unknown set with a run, holding the workspace lock as `dfatlas analyze` does; returns
        the report (`engine.analysis.AnalysisReport`): its DataFrames `class_shares` (videos and faces per verdict,
        the open-set row last) and `videos` (one verdict per video, its open-set score), `open_set` (how the
        verdict was set) and `metrics` (AUC / FPR / FNR / HTER at θ) when the set is labelled.

        `input` is a folder of videos, a video or a CSV manifest for a trained run (`engine.analysis.analyze`),
        or — for a run of imported embeddings, which has no model to embed videos with — a file of the set's
        embeddings (`engine.embedding_import.import_unknown_set`, as `dfatlas import-embeddings --unknown`).

        Example::

            atlas = dfatlas.open("dfatlas-workspace", writable=True)
            report = atlas.analyze("triplet-0123abcd45", "~/suspicious/", name="case-42")
            report.class_shares
        """
        from engine.analysis import analyze
        from engine.analysis.paths import sanitize_name
        from engine.config import load_config
        from engine.embedding_import import import_unknown_set
        from engine.runs import read_run

        self._need_writable("analyze")
        name = sanitize_name(name) if name else None
        run = read_run(self._store(), run_id)
        with self.workspace.lock(f"analyze {run_id}", wait=wait):
            if not run.kind.trains:
                return import_unknown_set(self.workspace, run_id, Path(input).expanduser(), name=name,
                                          replace=replace, classifier=classifier)
            cfg = load_config(config) if config else None
            return analyze(self.workspace, cfg, run_id, Path(input).expanduser(), name=name, labels_csv=labels,
                           replace=replace, workers=workers, device=device, classifier=classifier)

    def import_embeddings(self, path, config=None, database: str = "external", superset=None, cross_db=None,
                          name: str | None = None, replace: bool = False, project: bool = True, wait: bool = False):
        """Register a file of another detector's embeddings as a run — `dfatlas import-embeddings`
        (`engine.embedding_import.import_run`); returns its summary (run_id, classes, classifiers, map).

        Example::

            atlas = dfatlas.open("ws", writable=True)
            run_id = atlas.import_embeddings("features.parquet", superset=["FF++"]).run_id
        """
        from engine.config import load_config
        from engine.embedding_import import import_run

        self._need_writable("import_embeddings")
        cfg = load_config(config) if config else None
        with self.workspace.lock("import-embeddings", wait=wait):
            return import_run(self.workspace, path, cfg, database=database, superset=superset, cross_db=cross_db,
                              name=name, replace=replace, project=project)


def open(workspace: str | Path | None = None, writable: bool = False) -> Atlas:  # noqa: A001  (dfatlas.open)
    """Open a workspace (`--workspace` semantics: the path, else $DFATLAS_WORKSPACE, else ./dfatlas-workspace).

    Read-only by default: every call reads the store and nothing is written. `writable=True` allows
    `Atlas.analyze` and `Atlas.import_embeddings`, which take the workspace lock as the CLI does.

    Example::

        atlas = dfatlas.open("dfatlas-workspace")
    """
    from engine.workspace import resolve_workspace

    ws = resolve_workspace(workspace)
    if not ws.store_path.exists():
        raise AtlasError(f"no store in {ws.root}: run `dfatlas demo --workspace {ws.root}` (or the pipeline) first")
    return Atlas(ws.ensure() if writable else ws, writable)
