"""The browser map's server side under AppTest (which renders no custom component): the pages run with
the component, its payload is one Arrow buffer sent once per frame, and a selection value coming back
from the browser (polygon, confusion cell, search, hidden legend entries) gives the selection panel."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from dashboard.components.scatter_map import payload as map_payload
from dashboard.components.scatter_map import selection as map_selection
from testkit.dashboard_store import build_fixture_store, run_ids
from tests.helpers.apptest import open_app

from streamlit.proto.WidgetStates_pb2 import WidgetState  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402



@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("mapc") / "ws"
    build_fixture_store(root, n_points=400)
    return root


def make_app(ws: Path, monkeypatch, query: dict | None = None) -> AppTest:
    return open_app(ws, monkeypatch, query, plotly_map=False)


def component(at: AppTest, key: str = "map"):
    return next(e for e in at.get("component_instance") if e.proto.id.endswith(key))


def send_value(at: AppTest, value: dict, key: str = "map") -> AppTest:
    states = at._tree.get_widget_states()
    states.widgets.append(WidgetState(id=component(at, key).proto.id, json_value=json.dumps(value)))
    return at._run(widget_state=states)


def payload_args(at: AppTest, key: str = "map"):
    el = component(at, key).proto
    args = json.loads(el.json_args)
    sent = [a for a in el.special_args if a.key == "payload"]
    return args, (sent[0].bytes if sent else None)


def test_pages_run_with_the_component_and_the_payload_is_sent_once(ws, monkeypatch):
    at = make_app(ws, monkeypatch)
    assert not at.exception, [e.value for e in at.exception]
    args, data = payload_args(at)
    assert data and args["payload_hash"]
    table = pa.ipc.open_stream(data).read_all()
    meta = json.loads(table.schema.metadata[b"dfatlas"])
    assert {"x", "y", "video", "true", "dataset"} <= set(table.column_names)
    assert meta["classifiers"] and all(f"pred:{c}" in table.column_names for c in meta["classifiers"])
    # The frame reports it holds the points: the next rerun sends none, only the hash.
    at = send_value(at, {"have": args["payload_hash"], "req": 0})
    args2, data2 = payload_args(at)
    assert data2 is None and args2["payload_hash"] == args["payload_hash"]
    # A reloaded frame asks again (req counts up): the bytes are sent once more.
    at = send_value(at, {"have": None, "req": "f:1"})
    args3, data3 = payload_args(at)
    assert data3 and args3["answered"] == "f:1"  # the frame learns which request these bytes answer
    # A later rerun carries no bytes but still says "f:1" was answered: a frame whose render with the bytes
    # was overtaken (it still holds nothing) asks again ("f:2") and gets them once more.
    at = send_value(at, {"have": None, "req": "f:1", "drawn": 0})
    args4, data4 = payload_args(at)
    assert data4 is None and args4["answered"] == "f:1"
    at = send_value(at, {"have": None, "req": "f:2"})
    assert payload_args(at)[1]
    for page in ("dashboard/pages/compare.py", "dashboard/pages/explore.py"):
        at.switch_page(page).run()
        assert not at.exception, [e.value for e in at.exception]
    assert len([e for e in at.get("component_instance")]) >= 1


def test_a_lasso_from_the_browser_fills_the_selection_panel_and_the_url(ws, monkeypatch):
    at = make_app(ws, monkeypatch)
    h = payload_args(at)[0]["payload_hash"]
    big = [[-100, -100], [100, -100], [100, 100], [-100, 100]]
    at = send_value(at, {"have": h, "req": 0, "selection": {"kind": "lasso", "polygon": big, "hash": h},
                         "zoom": [0.5, -0.25, 2], "hidden_colour": [], "hidden_marker": ["real"]})
    assert not at.exception, [e.value for e in at.exception]
    head = [s.value for s in at.subheader if s.value.startswith("Selection")]
    assert head, "no selection panel"
    qp = {k: (v if isinstance(v, str) else list(v)) for k, v in at.query_params.items()}
    assert json.loads(qp["sel"] if isinstance(qp["sel"], str) else qp["sel"][0])["kind"] == "lasso", qp
    assert qp["zoom"] in ("0.5,-0.25,2", ["0.5,-0.25,2"]) and qp["hm"] in ("real", ["real"]), qp
    breakdown = next(d.value for d in at.dataframe if d.value.index.name == "true \\ predicted")
    assert "Real" not in breakdown.index  # hidden marker entries are not selected
    # A selection made on another payload (the store changed) is ignored.
    at = send_value(at, {"have": h, "req": 0, "selection": {"kind": "lasso", "polygon": big, "hash": "old"}})
    assert not [s for s in at.subheader if s.value.startswith("Selection")]


def test_url_restores_the_map_state(ws, monkeypatch):
    at = make_app(ws, monkeypatch)
    h = payload_args(at)[0]["payload_hash"]
    sel = json.dumps({"kind": "search", "query": "syn-gan", "hash": h})
    at = make_app(ws, monkeypatch, {"sel": sel, "zoom": "1,2,3", "hc": "real"})
    args, _ = payload_args(at)
    assert args["view_state"]["selection"]["query"] == "syn-gan"
    assert args["view_state"]["zoom"] == [1.0, 2.0, 3.0] and args["view_state"]["hidden_colour"] == ["real"]
    assert [s.value for s in at.subheader if s.value.startswith("Selection")]
    bad = make_app(ws, monkeypatch, {"sel": "{not json", "zoom": "a,b"})
    assert not bad.exception


def test_selection_rules():
    pts = pd.DataFrame({"video_id": ["a", "a", "b", "c"], "x": [0.0, 2.0, 5.0, 9.0], "y": [0.0, 0.0, 5.0, 9.0],
                        "true_class": ["real", "real", "syn", "syn"], "pred": ["real", "syn", "syn", "real"],
                        "correct": ["correct", "incorrect", "correct", "incorrect"], "database": "d"})
    box = [[-1, -1], [3, -1], [3, 1], [-1, 1]]
    assert map_selection.selected_rows(pts, {"kind": "box", "polygon": box}, "frame", "pred").tolist() == [0, 1]
    # video level: a video is the mean of its faces (1, 0), inside a smaller box, and brings its faces
    small = [[0.5, -1], [1.5, -1], [1.5, 1], [0.5, 1]]
    assert map_selection.selected_rows(pts, {"kind": "box", "polygon": small}, "video", "pred").tolist() == [0, 1]
    assert map_selection.selected_rows(pts, {"kind": "box", "polygon": small}, "frame", "pred").size == 0
    cell = {"kind": "cell", "true": "syn", "pred": "real"}
    assert map_selection.selected_rows(pts, cell, "frame", "pred").tolist() == [3]
    assert map_selection.selected_rows(pts, {"kind": "search", "query": "B"}, "frame", "pred").tolist() == [2]
    assert map_selection.selected_rows(pts, {"kind": "search", "query": "zzz"}, "frame", "pred").size == 0
    assert map_selection.selected_rows(pts, {"kind": "box", "polygon": box}, "frame", "pred",
                                       hidden_colour=["syn"]).tolist() == [0]
    assert map_selection.valid({"kind": "lasso", "hash": "x"}, "y") is None
    assert map_selection.valid({"kind": "nope"}, None) is None


def _run_table(n: int = 60) -> pa.Table:
    """A `run_map_points` table: 12 videos of 5 faces, two datasets, two classifiers (the second with gaps)."""
    video = [f"d/v{i // 5:02d}" for i in range(n)]
    pred0 = [0 if i < n // 2 else 1 for i in range(n)]
    pred0[2] = -1  # one face predicted 'fake' (no attribution)
    pred1 = [None if i % 7 == 0 else (1 if i % 5 < 3 else 0) for i in range(n)]
    return pa.table({
        "face_id": [f"{v}#{i % 5}@k" for i, v in enumerate(video)], "video_id": video,
        "dataset": ["d/test" if i < 40 else "u/new" for i in range(n)],
        "database": ["d" if i < 40 else "u" for i in range(n)],
        "x": np.arange(n, dtype=np.float64), "y": np.zeros(n),
        "true_class": ["real" if i < n // 2 else ("syn" if i < 40 else None) for i in range(n)],
        "pred_idx_0": pa.array(pred0, pa.int32()), "real_score_0": np.linspace(0, 1, n),
        "probs_0": pa.nulls(n, pa.list_(pa.float32())),
        "pred_idx_1": pa.array(pred1, pa.int32()), "real_score_1": np.linspace(1, 0, n),
        "probs_1": pa.nulls(n, pa.list_(pa.float32())),
    })


def test_run_points_hold_every_classifier_at_both_levels():
    from engine.map_view import from_table
    from engine.metrics import video_level

    table = _run_table()
    pts = from_table(table, ["real", "syn"], ("knn", "lr"))
    frame = pts.frame("knn", ("d/test", "u/new"), "frame").sort_values("face_id").reset_index(drop=True)
    src = table.to_pandas().sort_values("face_id").reset_index(drop=True)
    assert frame["face_id"].tolist() == src["face_id"].tolist()
    assert frame["pred"].tolist() == [{0: "real", 1: "syn", -1: "fake"}[int(v)] for v in src["pred_idx_0"]]
    assert set(frame.loc[src["true_class"].isna().to_numpy(), "true_class"]) == {"unlabelled"}
    assert np.allclose(frame["real_score"], src["real_score_0"])
    # video level: every face carries its video's majority class and mean score (engine.metrics.video_level)
    video = pts.frame("lr", ("d/test", "u/new"), "video").sort_values("face_id").reset_index(drop=True)
    has = src["pred_idx_1"].notna()
    want = video_level(src.loc[has, "video_id"].to_numpy(), src.loc[has, "real_score_1"].to_numpy(),
                       src.loc[has, "pred_idx_1"].to_numpy(np.int64)).set_index("video_id")
    got = video.drop_duplicates("video_id").set_index("video_id")
    assert got["pred"].astype(str).to_dict() == {v: ["real", "syn"][int(c)] for v, c in want["pred_class"].items()}
    assert np.allclose(got.loc[want.index, "real_score"], want["real_score"])
    assert (video["correct"].astype(str) == np.where(video["true_class"].astype(str) == "unlabelled", "unknown",
            np.where(video["true_class"].astype(str) == video["pred"].astype(str), "correct", "incorrect"))).all()
    # a classifier without predictions on this map, a subset of datasets
    none = pts.frame("svm", ("u/new",), "frame")
    assert len(none) == 20 and set(none["pred"].astype(str)) == {"no prediction"}


def test_payload_is_shuffled_once_and_hashed_by_content():
    from engine.map_view import from_table

    table = _run_table()
    a = map_payload.encode(from_table(table, ["real", "syn"], ("knn", "lr")), ("d/test", "u/new"))
    b = map_payload.encode(from_table(table.take(np.arange(60)[::-1]), ["real", "syn"], ("knn", "lr")),
                           ("d/test", "u/new"))
    assert a.hash == b.hash and a.data == b.data and a.n_points == 60  # the store's row order does not matter
    t = pa.ipc.open_stream(a.data).read_all()
    meta = json.loads(t.schema.metadata[b"dfatlas"])
    true = np.array(meta["labels"])[t.column("true").to_numpy()]
    assert 0 < (true[:30] == "real").sum() < 30  # classes interleaved in the draw order, not class by class
    assert sorted(t.column("x").to_numpy().tolist()) == list(range(60))
    assert meta["classifiers"] == ["knn", "lr"] and meta["datasets"] == ["d/test", "u/new"]
    only = map_payload.encode(from_table(table, ["real", "syn"], ("knn", "lr")), ("u/new",))
    t2 = pa.ipc.open_stream(only.data).read_all()
    assert t2.num_rows == 20 and len(t2.column("video").chunk(0).dictionary) == 4  # the videos of the shown points only


def _map_without_predictions(root: Path) -> None:
    """A store whose run has a map but no predictions (a run stopped between project and classify)."""
    from testkit.store_builder import StoreBuilder

    b = StoreBuilder.at(root)
    rel = [f"test/{i:03d}.mp4" for i in range(6)]
    b.video_columns(database="d", split="test", relpath=rel, true_class=["real", "fake-1"] * 3, synthetic=True)
    b.datasets(dataset=["d/test"], database=["d"], split=["test"], role=["superset"], synthetic=True)
    b.settings("k", {"frames_per_video": 2})
    ids = b.faces("k", np.repeat([f"d/{r}" for r in rel], 2), np.tile([0, 1], 6), [f"f/{i}.png" for i in range(12)])
    b.run({"run_id": "triplet-nopred", "approach": "triplet", "backbone": "resnet10t", "config_json": "{}",
           "config_hash": "x", "classes": ["real", "fake-1"], "settings_key": "k", "embedding_dim": 4, "seed": 0,
           "status": "finished", "synthetic": True})
    b.map("tsne-nopred", "triplet-nopred", ["d/test"], {}, 0, 1.0, ids, "d/test", np.random.default_rng(0).normal(size=(12, 2)))


@pytest.mark.parametrize("store", ["no map", "map but no predictions"])
def test_a_run_without_a_map_or_without_predictions_is_a_clear_state(store, tmp_path, monkeypatch):
    ws = tmp_path / "ws"
    if store == "no map":
        build_fixture_store(ws, n_points=150, with_projections=False)
        want = "dfatlas project"
    else:
        _map_without_predictions(ws)
        want = "No predictions for run"
    at = make_app(ws, monkeypatch)
    assert not at.exception, [e.value for e in at.exception]
    assert any(want in i.value for i in at.info), [i.value for i in at.info]
    assert not at.get("component_instance")
    at.switch_page("dashboard/pages/compare.py").run()
    assert not at.exception, [e.value for e in at.exception]


def test_an_empty_selection_and_a_search_without_matches_say_so(ws, monkeypatch):
    at = make_app(ws, monkeypatch)
    h = payload_args(at)[0]["payload_hash"]
    far = [[1e6, 1e6], [1e6 + 1, 1e6], [1e6 + 1, 1e6 + 1]]
    for sel in ({"kind": "lasso", "polygon": far}, {"kind": "search", "query": "no-such-video-anywhere"},
                {"kind": "cell", "true": "real", "pred": "no-such-class"}, {"kind": "videos", "videos": []}):
        at = send_value(at, {"have": h, "req": 0, "selection": dict(sel, hash=h)})
        assert not at.exception, [e.value for e in at.exception]
        assert not [s for s in at.subheader if s.value.startswith("Selection")]
        assert any("matches no shown point" in i.value for i in at.info), sel


def test_a_click_is_returned_once_for_the_drill_down(ws, monkeypatch):
    at = make_app(ws, monkeypatch)
    h = payload_args(at)[0]["payload_hash"]
    video = "synth-a/test/real/000000.avi"
    at = send_value(at, {"have": h, "req": 0, "click": {"video": video, "dataset": "synth-a/test", "level": "video",
                                                         "seq": 1},
                         "selection": {"kind": "videos", "videos": [video], "hash": h}})
    assert not at.exception, [e.value for e in at.exception]
    assert [s.value for s in at.subheader if s.value.startswith("Selection")] == \
        ["Selection: 3 faces from 1 videos"]
    from dashboard.components.scatter_map import clicked

    state = {"map": at.session_state["map"]}
    first, again = clicked("map", state), clicked("map", state)
    assert first == {"video": video, "dataset": "synth-a/test", "level": "video", "seq": 1} and again is None
