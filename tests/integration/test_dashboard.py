"""Dashboard tests: AppTest drives every control on a small fixture store; empty and broken states;
the selection handling through a synthetic plotly selection event."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from testkit.dashboard_store import APPROACHES, build_fixture_store, run_ids
from tests.helpers.apptest import ROOT, assert_clean, open_app, texts

pytest.importorskip("streamlit")
from streamlit.proto.WidgetStates_pb2 import WidgetState  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

PAGES = ["dashboard/pages/compare.py", "dashboard/pages/curves.py", "dashboard/pages/tables.py",
         "dashboard/pages/runs.py"]


@pytest.fixture(scope="module")
def fixture_ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("dash") / "ws"
    build_fixture_store(root, n_points=400)
    return root


def make_app(ws: Path, monkeypatch, query: dict | None = None) -> AppTest:
    # These tests read the plotly map's figure (AppTest renders no custom component); the browser map
    # (dashboard.components.scatter_map) is covered by tests/integration/test_map_component.py and
    # tests/browser/test_map_component.py.
    return open_app(ws, monkeypatch, query)


def sidebar_box(at: AppTest, label: str):
    return next(w for w in at.sidebar.selectbox if w.label == label)


def sidebar_radio(at: AppTest, label: str):
    return next(w for w in at.sidebar.radio if w.label == label)


def expected_metrics(ws: Path, run_id: str, classifier: str, level: str = "video") -> pd.DataFrame:
    from engine.evaluation import metrics_table
    from engine.store import Store

    mt = metrics_table(Store(ws / "atlas.duckdb", read_only=True), classifiers="all", level=level)
    return mt.loc[(mt.run_id == run_id) & (mt.classifier == classifier)].set_index("dataset")


def check_metrics_table(at: AppTest, ws: Path, run_id: str, classifier: str, level: str) -> None:
    table = next(d.value for d in at.dataframe if "HTER (%)" in d.value.columns)
    exp = expected_metrics(ws, run_id, classifier, level)
    assert len(table) >= 1
    for _, row in table.iterrows():
        e = exp.loc[row["Test DB"]]
        assert row["HTER (%)"] == pytest.approx(round(100 * e.hter, 2))
        assert row["FPR (%)"] == pytest.approx(round(100 * e.fpr, 2))
        assert row["FNR (%)"] == pytest.approx(round(100 * e.fnr, 2))
        assert row["AUC"] == pytest.approx(round(100 * e.auc, 2))
        assert row["# real"] == e.n_real and row["# fake"] == e.n_fake


def test_explore_default_view_shows_map_metrics_and_confusion(fixture_ws, monkeypatch):
    at = make_app(fixture_ws, monkeypatch)
    assert_clean(at)
    assert sidebar_box(at, "Run / approach").value == run_ids()["attribution"]
    assert sidebar_box(at, "Classifier").value == "native"
    assert at.sidebar.multiselect[0].value == ["synth-a/test", "synth-b/test"]
    charts = at.get("plotly_chart")
    assert any(c.proto.id.endswith("-map") for c in charts)
    spec = json.loads(next(c for c in charts if c.proto.id.endswith("-map")).proto.spec)
    assert all(t["type"] == "scattergl" for t in spec["data"])
    confusion = next(d.value for d in at.dataframe if d.value.index.name == "true \\ predicted")
    assert confusion.to_numpy().sum() > 0 and "Real" in confusion.index  # counts, true rows x predicted columns
    check_metrics_table(at, fixture_ws, run_ids()["attribution"], "native", "video")
    side_by_side = next(d.value for d in at.dataframe if "Approach" in d.value.columns)
    assert set(side_by_side["Approach"]) == {"Binary", "Attribution", "TripletLoss-NN", "ArcFaceMod-LR"}
    assert sorted(set(side_by_side["Test DB"])) == ["synth-a", "synth-b"]
    assert "SYNTHETIC benchmark" in "\n".join(m.value for m in at.sidebar.markdown)
    assert "fixed at launch" in "\n".join(c.value for c in at.sidebar.caption)


def test_every_control(fixture_ws, monkeypatch):
    at = make_app(fixture_ws, monkeypatch)
    for approach, run_id in run_ids().items():
        sidebar_box(at, "Run / approach").set_value(run_id).run()
        assert_clean(at)
        for clf in APPROACHES[approach]:
            sidebar_box(at, "Classifier").set_value(clf).run()
            assert_clean(at)
            assert sidebar_box(at, "Classifier").value == clf
            assert list(np.ravel([at.query_params["clf"]])) == [clf]
            assert list(np.ravel([at.query_params["run"]])) == [run_id]
        for level in ("frame", "video"):
            sidebar_radio(at, "Level").set_value(level).run()
            assert_clean(at)
            check_metrics_table(at, fixture_ws, run_id, sidebar_box(at, "Classifier").value, level)
    for mode in ("true", "correct", "database", "pred"):
        sidebar_radio(at, "Colour by").set_value(mode).run()
        assert_clean(at)
        spec = json.loads(next(c for c in at.get("plotly_chart") if c.proto.id.endswith("-map")).proto.spec)
        colours = {t["marker"]["color"] for t in spec["data"] if t.get("showlegend") is False}
        if mode == "correct":
            assert colours <= {"#009E73", "#D55E00", "#999999"}
        if mode == "pred":
            assert "#0072B2" in colours  # real is always the same blue
    at.toggle(key="density").set_value(True).run()
    assert_clean(at)
    spec = json.loads(next(c for c in at.get("plotly_chart") if c.proto.id.endswith("-map")).proto.spec)
    assert any(t["type"] == "histogram2dcontour" for t in spec["data"])


def test_run_switch_picks_the_new_runs_default_classifier(fixture_ws, monkeypatch):
    """A classifier chosen for one run does not carry over to the next: each run opens on its approach's
    default (TripletLoss: kNN, ArcFaceMod: LR, as the paper reports them), the same one `dfatlas evaluate` uses."""
    from engine.approaches import get_approach

    at = make_app(fixture_ws, monkeypatch)
    ids = run_ids()
    sidebar_box(at, "Run / approach").set_value(ids["triplet"]).run()
    assert sidebar_box(at, "Classifier").value == "knn"
    sidebar_box(at, "Classifier").set_value("svm").run()
    sidebar_box(at, "Run / approach").set_value(ids["arcfacemod"]).run()
    assert_clean(at)
    assert sidebar_box(at, "Classifier").value == "lr" == get_approach("arcfacemod").default_classifier
    assert list(np.ravel([at.query_params["clf"]])) == ["lr"]
    check_metrics_table(at, fixture_ws, ids["arcfacemod"], "lr", "video")
    sidebar_box(at, "Run / approach").set_value(ids["attribution"]).run()
    assert sidebar_box(at, "Classifier").value == "native"


def test_cross_db_and_unknown_sets(fixture_ws, monkeypatch):
    at = make_app(fixture_ws, monkeypatch)
    sidebar_box(at, "Run / approach").set_value(run_ids()["triplet"]).run()
    at.sidebar.multiselect[0].set_value(["synth-x/test", "unknown/mystery"]).run()
    assert_clean(at)
    body = texts(at)
    assert "Unlabelled: which known classes does it look like?" in body
    assert "Looks most like:" in body
    check_metrics_table(at, fixture_ws, run_ids()["triplet"], "knn", "video")
    dist = next(d.value for d in at.dataframe if "predicted class" in d.value.columns)
    assert abs(dist["share"].sum() - 1) < 1e-9 and (dist["count"] > 0).all()


def test_view_from_query_params(fixture_ws, monkeypatch):
    at = make_app(fixture_ws, monkeypatch, {"run": run_ids()["arcfacemod"], "clf": "svm", "level": "frame",
                                           "db": "synth-x/test", "colour": "correct"})
    assert_clean(at)
    assert sidebar_box(at, "Run / approach").value == run_ids()["arcfacemod"]
    assert sidebar_box(at, "Classifier").value == "svm"
    assert sidebar_radio(at, "Level").value == "frame"
    assert sidebar_radio(at, "Colour by").value == "correct"
    assert at.sidebar.multiselect[0].value == ["synth-x/test"]
    # a stale or hostile link falls back to valid choices
    at2 = make_app(fixture_ws, monkeypatch, {"run": "nope", "clf": "x", "db": "../etc", "level": "y"})
    assert_clean(at2)
    assert sidebar_box(at2, "Run / approach").value in run_ids().values()


def test_compare_defaults_and_url(fixture_ws, monkeypatch):
    """Attribution beside the best metric head by validation AUC; then the last two viewed; a link's sides."""
    from dashboard.queries import validation_auc

    ids = run_ids()
    at = make_app(fixture_ws, monkeypatch)
    at.switch_page("dashboard/pages/compare.py").run()
    assert_clean(at)
    left, right = (w.value for w in at.selectbox if w.label in ("Left", "Right"))
    assert left == f"{ids['attribution']}|native"
    heads = [f"{ids[a]}|{c}" for a in ("triplet", "arcfacemod") for c in ("knn", "lr", "svm")]
    path = str(fixture_ws / "atlas.duckdb")
    aucs = {h: validation_auc(path, (), *h.split("|"), "video") for h in heads}
    assert right in heads and aucs[right] == max(v for v in aucs.values() if v is not None)
    # the last two (run, classifier) pairs viewed in the sidebar become the defaults of a new Compare visit
    at2 = make_app(fixture_ws, monkeypatch, {"run": ids["binary"], "clf": "native"})
    sidebar_box(at2, "Run / approach").set_value(ids["triplet"]).run()
    at2.session_state["cmp_a"] = None  # as on a first visit
    at2.switch_page("dashboard/pages/compare.py").run()
    assert [w.value for w in at2.selectbox if w.label in ("Left", "Right")] == \
        [f"{ids['binary']}|native", f"{ids['triplet']}|knn"]
    # a shared link opens with its sides
    at3 = make_app(fixture_ws, monkeypatch, {"left": f"{ids['arcfacemod']}|svm", "right": f"{ids['binary']}|native"})
    at3.switch_page("dashboard/pages/compare.py").run()
    assert [w.value for w in at3.selectbox if w.label in ("Left", "Right")] == \
        [f"{ids['arcfacemod']}|svm", f"{ids['binary']}|native"]


def test_sidebar_shows_only_the_controls_a_page_uses_and_keeps_the_others(fixture_ws, monkeypatch):
    ids = run_ids()
    at = make_app(fixture_ws, monkeypatch, {"run": ids["arcfacemod"], "clf": "svm", "colour": "correct"})
    expected = {"dashboard/pages/tables.py": ({"Level"}, set()),
                "dashboard/pages/curves.py": ({"Level"}, set()),
                "dashboard/pages/runs.py": (set(), set()),
                "dashboard/pages/compare.py": ({"Level", "Colour by"}, {"Test database(s)"}),
                "dashboard/pages/analyse.py": ({"Level"}, set())}
    for page, (radios, multis) in expected.items():
        at.switch_page(page).run()
        assert_clean(at)
        assert {w.label for w in at.sidebar.radio} == radios, page
        assert {w.label for w in at.sidebar.multiselect} == multis, page
        boxes = {w.label for w in at.sidebar.selectbox}
        assert ({"Run / approach", "Classifier"} <= boxes) == page.endswith("analyse.py"), page
        assert at.query_params["run"] == [ids["arcfacemod"]] or at.query_params["run"] == ids["arcfacemod"]
    at.switch_page("dashboard/pages/explore.py").run()
    assert_clean(at)  # back on Explore: the choices made before are still there
    assert sidebar_box(at, "Run / approach").value == ids["arcfacemod"]
    assert sidebar_box(at, "Classifier").value == "svm" and sidebar_radio(at, "Colour by").value == "correct"


def select(at: AppTest, points: list[dict]) -> AppTest:
    """Send a synthetic plotly selection event for the map (AppTest cannot draw a lasso)."""
    chart = next(c for c in at.get("plotly_chart") if c.proto.id.endswith("-map"))
    states = at._tree.get_widget_states()
    w = WidgetState(id=chart.proto.id, string_value=json.dumps(
        {"selection": {"points": points, "point_indices": [p["point_index"] for p in points], "box": [{}],
                       "lasso": []}}))
    states.widgets.append(w)
    return at._run(widget_state=states)


def test_selection_shows_faces_metrics_and_breakdown(fixture_ws, monkeypatch):
    at = make_app(fixture_ws, monkeypatch)
    spec = json.loads(next(c for c in at.get("plotly_chart") if c.proto.id.endswith("-map")).proto.spec)
    data_traces = [i for i, t in enumerate(spec["data"]) if t.get("showlegend") is False]
    pts = [{"curve_number": c, "point_index": i, "point_number": i} for c in data_traces[:3] for i in range(2)]
    pts.append({"curve_number": len(spec["data"]) - 1, "point_index": 0})  # a legend-only trace: ignored
    select(at, pts)
    assert_clean(at)
    head = [s.value for s in at.subheader if s.value.startswith("Selection")]
    assert head and head[0].startswith("Selection: 6 faces")
    sel = next(d.value for d in at.dataframe if "" in d.value.columns and "selection" in set(d.value[""]))
    assert sel["# real"].iloc[0] + sel["# fake"].iloc[0] >= 1
    breakdown = next(d.value for d in at.dataframe if d.value.index.name == "true \\ predicted")
    assert breakdown.to_numpy().sum() >= 1
    assert len(at.get("imgs")) + len(at.get("image")) >= 1


def test_selected_rows_maps_curves_back_to_rows():
    from dashboard.figures import selected_rows

    rows = [np.array([5, 7, 9]), None, np.array([1, 2])]
    event = {"selection": {"points": [{"curve_number": 0, "point_index": 2}, {"curve_number": 2, "point_index": 0},
                                      {"curve_number": 1, "point_index": 0}, {"curve_number": 9, "point_index": 0},
                                      {"curve_number": 0, "point_index": 2}]}}
    assert selected_rows(event, rows).tolist() == [1, 9]
    assert selected_rows(None, rows).size == 0


@pytest.mark.parametrize("page", PAGES)
def test_other_pages(fixture_ws, monkeypatch, page):
    at = make_app(fixture_ws, monkeypatch)
    at.switch_page(page).run()
    assert_clean(at)
    if page.endswith("compare.py"):
        assert len([c for c in at.get("plotly_chart") if "cmp_map" in c.proto.id]) == 2
        boxes = [w for w in at.selectbox if w.label in ("Left", "Right")]
        boxes[1].set_value(f"{run_ids()['arcfacemod']}|svm").run()
        assert_clean(at)
        tables = [d.value for d in at.dataframe]
        assert len([t for t in tables if "HTER (%)" in t.columns]) == 2  # one metrics table per side
        assert len([t for t in tables if t.index.name == "true \\ predicted"]) == 2  # confusion tables side by side
        diff = next(t for t in tables if {"left", "right", "true"} <= set(t.columns))
        assert len(diff) and (diff["left"] != diff["right"]).all()  # the difference view: only disagreements
        assert at.query_params["left"] == boxes[0].value and at.query_params["right"] == f"{run_ids()['arcfacemod']}|svm"
    if page.endswith("curves.py"):
        ids = [c.proto.id for c in at.get("plotly_chart")]
        assert any(i.endswith("-roc") for i in ids) and any(i.endswith("-det") for i in ids)
        roc = json.loads(next(c for c in at.get("plotly_chart") if c.proto.id.endswith("-roc")).proto.spec)
        legend = [t for t in roc["data"] if t.get("showlegend") is not False]
        assert len(legend) == 4 and all("(AUC " in t["name"] for t in legend)  # one per approach, AUC shown
        assert len({t["line"]["dash"] for t in legend}) == 4  # told apart where they coincide
        points = [t for t in roc["data"] if t.get("mode") == "markers"]
        assert len(points) == 4 and all("at θ" in t["hovertemplate"] for t in points)  # θ operating points
        det = json.loads(next(c for c in at.get("plotly_chart") if c.proto.id.endswith("-det")).proto.spec)
        lo, hi = det["layout"]["xaxis"]["range"]
        assert all(lo <= v <= hi for v in det["layout"]["xaxis"]["tickvals"])  # no axis past its ticks
        assert min(det["layout"]["xaxis"]["tickvals"]) - lo < 0.1
        at.selectbox(key="curve_db").set_value("synth-x/test").run()
        assert_clean(at)
    if page.endswith("tables.py"):
        t1 = at.dataframe[0].value
        assert set(t1["Approach"]) == {"Binary", "Attribution", "TripletLoss-NN", "ArcFaceMod-LR"}
        assert t1["HTER (%)"].between(0, 100).all()
        attributing = t1["Approach"] != "Binary"
        assert t1.loc[attributing, "Acc (%)"].between(0, 100).all() and t1.loc[~attributing, "Acc (%)"].isna().all()
        assert at.dataframe[1].value["Test DB"].tolist() == ["synth-x"] * 4
        assert len(at.dataframe) == 2  # the unlabelled unknown set has no metrics row
        at.radio(key="tables_scope").set_value("all").run()
        assert_clean(at)
        assert len(at.dataframe[0].value) == 2 * (1 + 1 + 3 + 3)
        from dashboard.tables import export
        from engine.evaluation import metrics_table
        from engine.store import Store

        mt = metrics_table(Store(fixture_ws / "atlas.duckdb", read_only=True))
        md = export(mt, "same-db", "markdown")
        assert md.startswith("| Approach | Test DB | AUC |") and "TripletLoss-NN" in md
        tex = export(mt, "cross-db", "latex")
        assert "\\begin{tabular}" in tex and "\\caption{Table 2: cross-database" in tex
        assert "\\label{tab:dfatlas-cross-db-video}" in tex
        # the tidy CSV and its Parquet twin: one row per approach x classifier x test set x level, no blank key
        both = pd.concat([mt, metrics_table(Store(fixture_ws / "atlas.duckdb", read_only=True), level="frame")])
        tidy = pd.read_csv(io.BytesIO(export(both, "same-db", "csv")))
        keys = ["approach", "classifier", "run_id", "dataset", "level"]
        assert tidy[keys].notna().all().all() and not tidy.duplicated(keys).any()
        assert set(tidy["level"]) == {"video", "frame"} and len(tidy) == 2 * 4 * 2  # 4 runs x 2 dbs x 2 levels
        assert tidy["hter"].dtype.kind == "f" and tidy["n_real"].dtype.kind == "i"
        assert tidy.loc[tidy["approach"] == "binary", "accuracy"].isna().all()  # empty, not a dash
        video = mt.loc[mt["role"] == "same-db"].set_index(["run_id", "classifier", "dataset"])
        for r in tidy.loc[tidy["level"] == "video"].itertuples():
            assert r.hter == pytest.approx(video.loc[(r.run_id, r.classifier, r.dataset), "hter"])
        parquet = pd.read_parquet(io.BytesIO(export(both, "same-db", "parquet")))
        assert list(parquet.columns) == list(tidy.columns) and len(parquet) == len(tidy)
        np.testing.assert_allclose(parquet["hter"], tidy["hter"]) and np.testing.assert_array_equal(
            parquet["n_fake"], tidy["n_fake"])
    if page.endswith("runs.py"):
        runs = at.dataframe[0].value
        assert set(runs["pretrained weights"]) == {"random init (offline)"}
        assert runs["backbone"].eq("resnet10t").all()
        assert {"seed", "crop / input px", "best epoch chosen by", "embedding"} <= set(runs.columns)
        assert runs["embedding"].str.contains("-d: ").all()
        assert runs["best epoch"].eq(3).all() and runs["seed"].notna().all()  # stored index 2: epoch 3 of 10
        chart = next(c for c in at.get("plotly_chart") if c.proto.id.endswith("-runs_loss"))
        spec = json.loads(chart.proto.spec)
        assert spec["layout"]["xaxis"]["title"]["text"].startswith("epoch")
        assert spec["layout"]["yaxis"]["title"]["text"] == "loss"
        stars = [t for t in spec["data"] if t.get("marker", {}).get("symbol") == "star"]
        assert len(stars) == 4 and all(t["x"] == [3] for t in stars)  # every finished run's best epoch, from 1


# --- empty and broken states ------------------------------------------------------------------

def test_no_store_yet(tmp_path, monkeypatch):
    at = make_app(tmp_path / "empty-ws", monkeypatch)
    assert_clean(at)
    assert any("dfatlas demo" in i.value for i in at.info)


def test_store_with_schema_but_no_runs(tmp_path, monkeypatch):
    from engine.store import Store

    Store(tmp_path / "ws" / "atlas.duckdb").tables()  # creates the schema
    at = make_app(tmp_path / "ws", monkeypatch)
    assert_clean(at)
    assert any("No trained runs" in i.value for i in at.info)


def test_no_projections_still_shows_metrics(tmp_path, monkeypatch):
    build_fixture_store(tmp_path / "ws", n_points=150, with_projections=False)
    at = make_app(tmp_path / "ws", monkeypatch)
    assert_clean(at)
    assert any("dfatlas project" in i.value for i in at.info)
    assert any("HTER (%)" in d.value.columns for d in at.dataframe)


def test_map_says_how_it_was_made_and_when_it_is_older_than_the_embeddings(tmp_path, monkeypatch):
    from engine.config import ProjectionSection
    from engine.projection import project_run
    from engine.store import Store, arrow_to_matrix
    from engine.store.embeddings import embeddings_table, write_embeddings

    build_fixture_store(tmp_path / "ws", n_points=150)
    store, rid = Store(tmp_path / "ws" / "atlas.duckdb"), run_ids()["attribution"]
    project_run(store, rid, ProjectionSection(n_iter=40, early_exaggeration_iter=20, perplexity=5, n_jobs=1,
                                              max_reference_points=60))
    at = make_app(tmp_path / "ws", monkeypatch)
    assert_clean(at)
    assert "Map: t-SNE fitted on a stratified sample of the reference faces" in texts(at)
    assert "fitted on 60 faces of" in texts(at) and not any("older than" in w.value for w in at.warning)
    # the run's embeddings are made again after the map: the page says so, with the command that refits
    t = store.arrow("SELECT face_id, dataset, embedding FROM embeddings WHERE run_id = ?", [rid])
    write_embeddings(store, embeddings_table(rid, t["face_id"].to_pylist(), t["dataset"].to_pylist(),
                                             arrow_to_matrix(t["embedding"]) + 1))
    at = make_app(tmp_path / "ws", monkeypatch)
    assert_clean(at)
    warning = next(w.value for w in at.warning if "older than" in w.value)
    assert "dfatlas project" in warning and rid in warning


def test_run_still_training(tmp_path, monkeypatch):
    build_fixture_store(tmp_path / "ws", n_points=150, run_status={"triplet": "training"})
    at = make_app(tmp_path / "ws", monkeypatch, {"run": run_ids()["triplet"]})
    assert_clean(at)
    assert any("still training" in i.value for i in at.info)


def test_locked_store_says_busy(fixture_ws, tmp_path, monkeypatch):
    import shutil

    import duckdb

    ws = tmp_path / "ws"
    shutil.copytree(fixture_ws, ws)
    monkeypatch.setenv("DFATLAS_DASHBOARD_BUSY_S", "0.5")
    import dashboard.queries as d

    monkeypatch.setattr(d, "BUSY_RETRY_S", 0.5)
    import subprocess
    import sys

    # Another process holds the store read-write (as a running job would).
    holder = subprocess.Popen([sys.executable, "-c", (
        "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ok', flush=True); time.sleep(60)"),
        str(ws / "atlas.duckdb")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ok"
        at = make_app(ws, monkeypatch)
        assert_clean(at)
        assert any("busy" in w.value for w in at.warning)
    finally:
        holder.kill()
        holder.wait()
    del duckdb


def test_newer_schema_is_a_warning(tmp_path, monkeypatch):
    import duckdb

    build_fixture_store(tmp_path / "ws", n_points=60)
    con = duckdb.connect(str(tmp_path / "ws" / "atlas.duckdb"))
    con.execute("INSERT INTO schema_version (version) VALUES (99)")
    con.close()
    at = make_app(tmp_path / "ws", monkeypatch)
    assert_clean(at)
    assert any("newer dfatlas" in w.value for w in at.warning)


def test_serve_picks_next_free_port_and_binds_localhost(capsys):
    import socket

    from engine.commands.serve import free_port, streamlit_command

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        assert free_port("127.0.0.1", taken) != taken
    cmd = streamlit_command(ROOT / "streamlit_app.py", "127.0.0.1", 8765)
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--browser.gatherUsageStats") + 1] == "false"
    cfg = (ROOT / ".streamlit" / "config.toml").read_text()
    assert 'address = "127.0.0.1"' in cfg and "gatherUsageStats = false" in cfg


# --- the guided tour ----------------------------------------------------------------------------

def test_tour_walks_its_steps_and_sets_each_view(fixture_ws, monkeypatch):
    from dashboard import tour

    at = make_app(fixture_ws, monkeypatch)
    at.switch_page("dashboard/pages/tour.py").run()
    assert_clean(at)
    ids = run_ids()
    for i, step in enumerate(tour.STEPS):
        assert at.header[0].value == step.title
        qp = at.query_params
        assert qp["step"] == str(i + 1)
        if step.approach:
            assert qp["run"] == ids[step.approach]  # the step's run is the sidebar's, so the URL carries it
            assert qp["colour"] == step.colour
        if step.highlight == "mistake":
            assert qp["hl"].startswith("cell:") and ">" in qp["hl"]
        elif step.highlight == "unseen":
            assert qp["hl"] == "search:unseen-fake" and "synth-x/test" in qp["db"]
        else:
            assert qp["hl"] == "none"
        if step.numbers:
            assert set(at.dataframe[0].value["Approach"]) >= {"Binary", "Attribution"}
        elif step.beside:
            assert len([c for c in at.get("plotly_chart") if "tour_map_" in c.proto.id]) == 2
        else:
            assert any("tour_map" in c.proto.id for c in at.get("plotly_chart"))
        nxt = at.button(key="tour_next")
        if i == len(tour.STEPS) - 1:
            assert nxt.disabled
            break
        nxt.click().run()
        assert_clean(at)
    at.button(key="tour_back").click().run()
    assert at.query_params["step"] == str(len(tour.STEPS) - 1)
    at.toggle(key="tour_big").set_value(True).run()
    assert_clean(at)
    assert at.query_params["big"] == "1"


def test_tour_opens_at_the_step_in_its_url(fixture_ws, monkeypatch):
    from dashboard import tour

    at = make_app(fixture_ws, monkeypatch, {"step": "2"})
    at.switch_page("dashboard/pages/tour.py").run()
    assert_clean(at)
    assert at.header[0].value == tour.STEPS[1].title and at.query_params["run"] == run_ids()["binary"]
    at = make_app(fixture_ws, monkeypatch, {"step": "99"})
    at.switch_page("dashboard/pages/tour.py").run()
    assert at.header[0].value == tour.STEPS[-1].title
