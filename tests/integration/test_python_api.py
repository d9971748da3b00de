"""The `dfatlas` Python API, `dfatlas runs` / `export` / `import-embeddings`, and the notebook.

Every test builds its own small store (`testkit.dashboard_store`, `tests.helpers.atlas_fixtures`) through the
engine's writers; the API must give the documented types and the same numbers as the command line.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import dfatlas
from data_catalog.errors import AtlasError
from engine.cli import main
from testkit.dashboard_store import build_fixture_store, run_ids

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fixture_ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("api") / "ws"
    build_fixture_store(root, n_points=240)
    return root


def _cli_json(capsys, argv: list[str]):
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_runs_and_metrics_are_the_commands_numbers(fixture_ws, capsys):
    atlas = dfatlas.open(fixture_ws)
    runs = atlas.runs()
    assert isinstance(runs, pd.DataFrame)
    assert sorted(runs["run_id"]) == sorted(run_ids().values())  # one creation time: by run id
    listed = _cli_json(capsys, ["runs", "--workspace", str(fixture_ws), "--json"])
    assert listed["workspace"] == str(fixture_ws)
    first = next(r for r in listed["runs"] if r["run_id"] == run_ids()["triplet"])
    assert set(first) == {"run_id", "approach", "label", "backbone", "status", "best_epoch", "epochs_done",
                          "embedding_dim", "classifiers", "default_classifier", "maps", "faces", "synthetic", "imported"}
    assert first["classifiers"] == ["knn", "lr", "svm"] and first["best_epoch"] == 3 and first["maps"] == 1
    assert [r["run_id"] for r in listed["runs"]] == runs["run_id"].tolist()

    for clf, argv in ((None, []), ("all", ["--classifier", "all"])):
        mine = atlas.metrics(classifier=clf)
        theirs = pd.DataFrame(_cli_json(capsys, ["evaluate", "--workspace", str(fixture_ws), "--json", *argv])["rows"])
        assert list(mine.columns) == list(theirs.columns)
        assert mine[["run_id", "classifier", "dataset"]].equals(theirs[["run_id", "classifier", "dataset"]])
        for col in ("auc", "fpr", "fnr", "hter", "threshold"):
            np.testing.assert_allclose(mine[col].to_numpy(float), theirs[col].to_numpy(float), rtol=0, atol=1e-12)
    capsys.readouterr()
    assert main(["evaluate", "--workspace", str(fixture_ws), "--format", "csv"]) == 0
    csv = "\n".join(line for line in capsys.readouterr().out.splitlines() if not line.startswith("#"))
    keys = ["run_id", "classifier", "dataset"]
    both = pd.read_csv(io.StringIO(csv)).merge(atlas.metrics(), on=keys, suffixes=("_csv", ""))
    assert len(both) >= int((atlas.metrics()[["n_real", "n_fake"]].sum(axis=1) > 0).sum()) > 0  # every labelled set
    np.testing.assert_allclose(both["hter_csv"].to_numpy(float), both["hter"].to_numpy(float), atol=1e-12,
                               equal_nan=True)
    table1 = atlas.table("same-db")
    assert list(table1.columns[:6]) == ["Approach", "Test DB", "AUC", "FNR (%)", "FPR (%)", "HTER (%)"]
    assert "TripletLoss-NN" in set(table1["Approach"])


def test_embeddings_map_and_export(fixture_ws, tmp_path):
    import plotly.graph_objects as go

    atlas = dfatlas.open(fixture_ws)
    run = run_ids()["triplet"]
    faces, X = atlas.embeddings(run, "synth-a/test")
    assert isinstance(faces, pd.DataFrame) and isinstance(X, np.ndarray)
    assert X.dtype == np.float32 and X.shape == (len(faces), 8)
    assert (faces["dataset"] == "synth-a/test").all() and faces["face_id"].is_monotonic_increasing
    assert {"row", "video_id", "label", "true_class", "identity", "split"} <= set(faces.columns)
    with pytest.raises(AtlasError, match="no embeddings of 'nope/test'"):
        atlas.embeddings(run, "nope/test")

    fig = atlas.map(run, colour="pred")
    assert isinstance(fig, go.Figure)
    drawn = sum(len(t.x) for t in fig.data if t.x is not None and t.x[0] is not None)
    assert drawn == len(atlas.map_points(run))
    real = [t for t in fig.data if t.name == "Real"]
    assert real and real[0].marker.color == "#0072B2"  # the dashboard's class colours (engine.map_view)
    sampled = atlas.map(run, datasets="all", max_points=50)
    assert "50 of" in sampled.layout.title.text
    assert sum(len(t.x) for t in sampled.data if t.x is not None and t.x[0] is not None) == 50
    assert isinstance(atlas.compare([run, run_ids()["arcfacemod"]]), go.Figure)

    files = atlas.export(run, tmp_path / "out")
    assert set(files) == {"embeddings", "predictions", "map", "metrics"}
    emb = pd.read_parquet(files["embeddings"])
    assert emb["row"].tolist() == list(range(len(emb))) and len(emb["embedding"].iloc[0]) == 8
    pred = pd.read_parquet(files["predictions"])
    assert set(pred["classifier"]) == {"knn", "lr", "svm"} and pred["row"].between(0, len(emb) - 1).all()
    metrics = pd.read_parquet(files["metrics"])
    np.testing.assert_allclose(metrics["hter"].to_numpy(float),
                               atlas.metrics(classifier="all", runs=[run])["hter"].to_numpy(float), atol=1e-12)
    assert main(["export", "--workspace", str(fixture_ws), "--run", run, "--out", str(tmp_path / "csv"),
                 "--format", "csv", "--tables", "embeddings", "predictions"]) == 0
    wide = pd.read_csv(tmp_path / "csv" / f"{run}.embeddings.csv")
    assert [f"e{i}" for i in range(8)] == [c for c in wide.columns if c.startswith("e") and c[1:].isdigit()]
    assert {"p_real", "p_syn-swap"} <= set(pd.read_csv(tmp_path / "csv" / f"{run}.predictions.csv").columns)

    with pytest.raises(AtlasError, match="writable=True"):
        atlas.analyze(run, tmp_path, name="x")
    with pytest.raises(AtlasError, match="no store"):
        dfatlas.open(tmp_path / "empty")


def test_export_import_round_trip_gives_the_same_metrics(workspace, tmp_path, capsys):
    """A metric head's kNN / LR / SVM refitted on the imported validation rows: the same AUC and HTER."""
    from engine.classify import classify_run
    from engine.config import ClassifiersSection
    from engine.evaluation import metrics_table
    from engine.workspace import resolve_workspace
    from tests.helpers.atlas_fixtures import build_store

    run = build_store(workspace, approaches=("triplet",), per_class=4, frames=2)["triplet"]
    classify_run(workspace.store(), run, ClassifiersSection(knn_k=5, cv_folds=3))
    assert main(["export", "--workspace", str(workspace.root), "--run", run, "--out", str(tmp_path / "x"),
                 "--tables", "embeddings"]) == 0
    other = resolve_workspace(tmp_path / "fresh")
    summary = _cli_json(capsys, ["import-embeddings", str(tmp_path / "x" / f"{run}.embeddings.parquet"),
                                 "--workspace", str(other.root), "--no-map", "--json"])
    external = summary["run_id"]
    assert external.startswith("external-") and summary["granularity"] == "face"
    assert [c["params"] for c in summary["classifiers"]] == [{"k": 5}, {"C": 0.001}, {"C": 0.01, "kernel": "rbf"}]
    before = metrics_table(workspace.store(read_only=True), [run], "all").set_index(["classifier", "dataset"])
    after = metrics_table(other.store(read_only=True), [external], "all").set_index(["classifier", "dataset"])
    assert sorted(after.index.get_level_values(0).unique()) == ["knn", "lr", "svm"]
    for col in ("auc", "hter", "fpr", "fnr", "threshold"):
        np.testing.assert_allclose(after.loc[before.index, col].to_numpy(float), before[col].to_numpy(float),
                                   rtol=0, atol=1e-6, equal_nan=True)
    listed = _cli_json(capsys, ["runs", "--workspace", str(other.root), "--json"])["runs"]
    assert listed[0]["approach"] == "external" and listed[0]["imported"] == "per-face"
    # the same import again is a cache hit; analysing videos with it is refused in one line
    assert _cli_json(capsys, ["import-embeddings", str(tmp_path / "x" / f"{run}.embeddings.parquet"),
                              "--workspace", str(other.root), "--no-map", "--json"])["status"] == "already imported"
    assert main(["analyze", "--workspace", str(other.root), "--run", external, "--input", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no model to embed new videos" in err[0] and "import-embeddings" in err[0]


def test_bad_embedding_files_are_one_line_errors(workspace, tmp_path, capsys):
    import pyarrow as pa

    def write(name, **cols):
        path = tmp_path / name
        pq.write_table(pa.table(cols), path)
        return str(path)

    emb = [[0.1, 0.2]] * 2
    cases = [
        (write("a.parquet", video_id=["a", "b"], label=["real", "fake"]), "missing column(s) embedding"),
        (write("b.parquet", video_id=["a", "b"], label=["real", "maybe"], split=["val"] * 2, embedding=emb),
         "label must be 'real' or 'fake'"),
        (write("c.parquet", video_id=["a", "b"], label=["real", "fake"], split=["val"] * 2,
               embedding=[[0.1, 0.2], [0.3]]), "every embedding needs the same width"),
        (write("d.parquet", video_id=["a", "a"], label=["real", "real"], split=["val"] * 2, embedding=emb),
         "has several rows"),
        (write("e.parquet", video_id=["a", "b"], label=["real", "fake"], split=["test"] * 2, embedding=emb),
         "no training super-set"),
        (str(tmp_path / "f.csv"), "expected a Parquet (.parquet) or NumPy (.npz) file"),
    ]
    (tmp_path / "f.csv").write_text("video_id\n")
    np.savez(tmp_path / "g.npz", embedding=np.zeros((2, 2)), video_id=np.array(["a", "b"], dtype=object))
    cases.append((str(tmp_path / "g.npz"), "object arrays"))
    for path, shown in cases:
        assert main(["import-embeddings", path, "--workspace", str(workspace.root)]) == 2, path
        err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("»")]
        assert len(err) == 1 and shown in err[0] and "Traceback" not in err[0], (path, err)


def test_npz_reads_as_the_parquet_does(fixture_ws, tmp_path, capsys):
    """The .npz form of a file (unicode text arrays, a 2-D embedding) is the same rows as its Parquet form."""
    from engine.embedding_file import read_embedding_file

    path = dfatlas.open(fixture_ws).export(run_ids()["arcfacemod"], tmp_path, tables=["embeddings"])["embeddings"]
    parquet = read_embedding_file(path)
    df = pd.read_parquet(path)
    np.savez(tmp_path / "same.npz", embedding=np.stack(df["embedding"].to_numpy()),
             frame_index=df["frame_index"].to_numpy(),
             **{c: df[c].fillna("").to_numpy(dtype=str) for c in ("video_id", "label", "split", "database",
                                                                  "true_class", "identity")})
    npz = read_embedding_file(tmp_path / "same.npz")
    assert npz.granularity == parquet.granularity == "face"
    np.testing.assert_array_equal(npz.embedding, parquet.embedding)
    cols = ["video_id", "label", "split", "database", "true_class", "identity", "frame_index"]
    assert npz.rows[cols].astype(str).equals(parquet.rows[cols].astype(str))
    # --config restricts `runs` and `evaluate` to a config's runs: none of demo.toml's are in this store
    for cmd in ("runs", "evaluate"):
        assert main([cmd, "--workspace", str(fixture_ws), "--config", str(ROOT / "configs" / "demo.toml")]) == 2
        assert "no runs of demo.toml in this store" in capsys.readouterr().err


@pytest.mark.slow  # a Jupyter kernel (~5 s), kNN/LR/SVM fitted for an imported run twice (import, analysis): ~25 s
def test_notebook_runs_on_a_small_workspace(tmp_path):
    from testkit.notebooks import errors, run_notebook

    root = tmp_path / "ws"
    build_fixture_store(root, n_points=240)
    writable = dfatlas.open(root, writable=True)
    files = writable.export(run_ids()["triplet"], tmp_path / "x", tables=["embeddings"])
    external = writable.import_embeddings(files["embeddings"], name="fixture detector", project=False).run_id
    from engine.config import ProjectionSection
    from engine.projection import project_run

    # a short t-SNE (the default 500 iterations on every core take a minute on a loaded 2-core machine)
    project_run(writable.workspace.store(), external, ProjectionSection(n_iter=60, early_exaggeration_iter=20,
                                                                         perplexity=10, n_jobs=1))
    t = pq.read_table(files["embeddings"])
    t = t.filter(pc.equal(t["database"], "synth-x")).select(["video_id", "frame_index", "label", "embedding"])
    pq.write_table(t, tmp_path / "suspects.parquet")

    nb = run_notebook(ROOT / "docs" / "notebooks" / "atlas.ipynb", root, tmp_path / "suspects.parquet", timeout=300)
    assert errors(nb) == []
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "Table 1: same-database" in text and f"analysed by run {external}" in text
    report_sets = dfatlas.open(root).embeddings(external, "unknown/notebook-set")[0]
    assert len(report_sets) == t.num_rows
