"""The analyst's dashboard (Streamlit AppTest): the video-score aggregation changes the tables (θ recomputed),
the video drill-down opens without a map (picker) and from the plotly map, and the Analyse page's upload
bookkeeping (same-name refusal before anything is saved, names, display names)."""

from __future__ import annotations

import io

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from testkit.dashboard_store import ORIGINAL_NAMES, build_fixture_store, run_ids
from tests.helpers.apptest import assert_clean, open_app, texts

pytest.importorskip("streamlit")
from streamlit.proto.WidgetStates_pb2 import WidgetState  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402



@pytest.fixture(scope="module")
def fixture_ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("analyst") / "ws"
    build_fixture_store(root, n_points=400)
    return root


def make_app(ws: Path, monkeypatch, query: dict | None = None) -> AppTest:
    return open_app(ws, monkeypatch, query, timeout=120)


clean = assert_clean


def sidebar_box(at: AppTest, label: str):
    return next(w for w in at.sidebar.selectbox if w.label == label)


def expected(ws: Path, aggregation: str, top_k: int = 3):
    from engine.evaluation import default_rows, metrics_table
    from engine.store import Store

    mt = metrics_table(Store(ws / "atlas.duckdb", read_only=True), classifiers="all", aggregation=aggregation,
                       top_k=top_k)
    return default_rows(mt)


def table_one(at: AppTest):
    return next(d.value for d in at.dataframe if d.key == "table1") if any(d.key == "table1" for d in at.dataframe) \
        else next(d.value for d in at.dataframe if "HTER (%)" in d.value.columns)


def test_aggregation_choice_changes_the_tables(fixture_ws, monkeypatch):
    at = make_app(fixture_ws, monkeypatch)
    at.switch_page("dashboard/pages/tables.py").run()
    clean(at)
    box = sidebar_box(at, "Video score")
    assert box.value == "mean" and set(box.options) >= {"mean (the paper's)", "max-fake (lowest frame)"}
    before = table_one(at)
    mean = expected(fixture_ws, "mean")
    mean_same = mean[mean.role == "same-db"]
    assert before["HTER (%)"].tolist() == pytest.approx((100 * mean_same.hter).round(2).tolist())
    box.set_value("max-fake").run()
    clean(at)
    after = table_one(at)
    worst = expected(fixture_ws, "max-fake")
    worst_same = worst[worst.role == "same-db"]
    assert after["HTER (%)"].tolist() == pytest.approx((100 * worst_same.hter).round(2).tolist())
    assert not np.allclose(before["HTER (%)"].to_numpy(float), after["HTER (%)"].to_numpy(float))
    assert (worst_same.threshold.to_numpy() != mean_same.threshold.to_numpy()).any()  # θ recomputed
    assert "lowest frame real-score (max-fake)" in texts(at)
    assert at.query_params["agg"] in ("max-fake", ["max-fake"])
    # top-k: a k control appears; its value reaches the table
    sidebar_box(at, "Video score").set_value("top-k").run()
    k = next(w for w in at.sidebar.number_input if w.key == "top_k")
    k.set_value(2).run()
    clean(at)
    top2 = expected(fixture_ws, "top-k", 2)
    assert table_one(at)["HTER (%)"].tolist() == pytest.approx(
        (100 * top2[top2.role == "same-db"].hter).round(2).tolist())
    assert "mean of its 2 most fake frames" in texts(at)
    # the export records the choice
    from dashboard.tables import export

    same = top2[top2.role == "same-db"]
    assert "video score" in export(same, "same-db", "markdown").splitlines()[0]  # the paper's layout says it
    tidy = pd.read_csv(io.BytesIO(export(same, "same-db", "csv")))  # and the tidy table carries it as a key
    assert set(tidy["aggregation"]) == {"top-2"}


def test_explore_metrics_follow_the_aggregation(fixture_ws, monkeypatch):
    ids = run_ids()
    at = make_app(fixture_ws, monkeypatch, {"run": ids["triplet"], "agg": "median"})
    clean(at)
    assert sidebar_box(at, "Video score").value == "median"
    table = next(d.value for d in at.dataframe if "HTER (%)" in d.value.columns)
    exp = expected(fixture_ws, "median").pipe(lambda m: m[m.run_id == ids["triplet"]]).set_index("dataset")
    for _, row in table.iterrows():
        assert row["HTER (%)"] == pytest.approx(round(100 * exp.loc[row["Test DB"]].hter, 2))
    assert "video score: median" in texts(at)


def test_drilldown_opens_from_the_picker_without_a_map(fixture_ws, monkeypatch):
    ids = run_ids()
    at = make_app(fixture_ws, monkeypatch, {"run": ids["triplet"]})
    at.text_input(key="explore_drill_find").set_value("mystery/item/000002").run()
    clean(at)
    pick = at.selectbox(key="explore_drill_pick")
    assert pick.options == ["mystery/item/000002.avi"]
    pick.set_value("unknown/mystery/item/000002.avi").run()
    clean(at)
    text = texts(at)
    assert "Verdict:" in text and "Its faces, frame by frame" in text and "Nearest training faces" in text
    assert "Its place on the map" in text  # the plotly map cannot highlight it: the panel draws its own
    assert "opened from: video picker" in text
    # the original name is shown, escaped (a hostile name renders as text)
    assert ORIGINAL_NAMES[2].replace("<", "\\<") in text or "alert" in text
    assert len(at.get("imgs")) + len(at.get("image")) >= 2  # its faces and its nearest training faces
    at.button(key="explore_drill_close").click().run()
    assert "Verdict:" not in texts(at)


def test_drilldown_opens_from_one_video_selected_on_the_plotly_map(fixture_ws, monkeypatch):
    ids = run_ids()
    at = make_app(fixture_ws, monkeypatch, {"run": ids["triplet"]})
    chart = next(c for c in at.get("plotly_chart") if c.proto.id.endswith("-map"))
    trace = 0  # the first traces draw points; legend-only entries come after them
    states = at._tree.get_widget_states()
    states.widgets.append(WidgetState(id=chart.proto.id, string_value=json.dumps(
        {"selection": {"points": [{"curve_number": trace, "point_index": 0}], "point_indices": [0], "box": [],
                       "lasso": []}})))
    at = at._run(widget_state=states)
    clean(at)
    text = texts(at)
    assert "Verdict:" in text and "opened from: map selection" in text


# --- the Analyse page: uploads, names, bookkeeping ------------------------------------------------------

MP4 = b"\0\0\0\x18ftypmp42" + b"\0" * 64


@pytest.fixture
def analyse_ws(workspace, tmp_path):
    from tests.integration.test_analyze import _add_unknown_set
    from tests.integration.test_analyze_page import _store_with_dashboard

    allowed = tmp_path / "allowed"
    (allowed / "folder-name").mkdir(parents=True)
    store = _store_with_dashboard(workspace.root, [str(allowed)])
    _add_unknown_set(store, name="case")
    return workspace, store


def _analyse_app():
    from tests.integration.test_analyze_page import _app

    return _app(timeout=120)


def test_same_name_is_refused_before_the_upload_is_saved(analyse_ws, monkeypatch):
    from engine import jobs
    from engine.analysis.custody import upload_names

    ws, store = analyse_ws
    started = []
    monkeypatch.setattr(jobs, "start_background", lambda w, job_id, argv: started.append(argv))
    at = _analyse_app().run()
    assert at.text_input(key="an_name").value == "allowed"  # the folder's name, in folder mode
    at.radio(key="an_mode").set_value("Upload videos").run()
    assert at.text_input(key="an_name").value == "upload"  # not the last folder's name
    at.file_uploader(key="an_upload").set_value([("Case File.mp4", MP4, "video/mp4")]).run()
    assert at.text_input(key="an_name").value == "case-file"  # the upload's own name
    at.file_uploader(key="an_upload").set_value([("видео-улика.mp4", MP4, "video/mp4")]).run()
    assert at.text_input(key="an_name").value == "upload"  # no Latin letter: a neutral name
    at.text_input(key="an_name").set_value("case").run()
    at.button(key="an_go").click().run()
    assert not at.exception
    err = " ".join(e.value for e in at.error)
    assert "A set named case already exists" in err and "Tick “Replace a set of the same name”" in err
    assert "--replace" not in err and "--name" not in err
    assert started == [] and not (ws.uploads_dir.exists() and any(ws.uploads_dir.iterdir()))
    # ticking the page's checkbox: saved, started, the original name kept beside the safe one
    at.checkbox(key="an_replace").check().run()
    at.button(key="an_go").click().run()
    assert not at.exception and len(started) == 1 and "--replace" in started[0]
    folder = Path(started[0][started[0].index("--input") + 1])
    assert upload_names(folder, ws.uploads_dir) == {"video.mp4": "видео-улика.mp4"}


def test_a_failed_job_leaves_no_upload_folder(analyse_ws):
    import os

    import pyarrow as pa

    ws, store = analyse_ws
    folder = ws.uploads_dir / "x-20260101-000000"
    folder.mkdir(parents=True)
    (folder / "a.mp4").write_bytes(MP4)
    store.insert("jobs", pa.table({"job_id": ["j-bad"], "kind": ["analyze"], "status": ["failed"], "progress": [0.1],
                                   "message": ["no face was found"], "pid": [os.getpid()]}))
    at = _analyse_app()
    at.session_state["analyse_job"] = {"job_id": "j-bad", "run_id": "r", "name": "x", "upload": str(folder)}
    at.run()
    assert not at.exception and "The analysis failed" in " ".join(e.value for e in at.error)
    assert not folder.exists()


def test_results_show_display_names_words_and_the_case_report_button(analyse_ws):
    ws, store = analyse_ws
    at = _analyse_app().run()
    assert not at.exception, at.exception
    from tests.integration.test_analyze_page import _texts

    text = _texts(at)
    assert "{'" not in text and "face extraction:" in text
    frames = [d.value for d in at.dataframe]
    shares = next(f for f in frames if "video %" in f.columns)
    assert shares["class"].tolist()[-1] == "resembles no known class" and "Swap" in shares["class"].tolist()
    per_video = next(f for f in frames if "verdict" in f.columns)
    assert set(per_video["predicted class"]) <= {"Swap", "GAN", "Real"} and "share Swap" in per_video.columns
    assert not any(c.startswith("share_") for c in per_video.columns)
    assert {"file", "on disk"} <= set(per_video.columns)
    buttons = [b for b in at.get("download_button")]
    assert any("case report" in b.proto.label for b in buttons)
    assert "Verdict:" in text and "of the nearest identities of any class are of the predicted class" in text  # drill-down
