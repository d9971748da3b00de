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

from streamlit.proto.WidgetStates_pb2 import WidgetState  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "streamlit_app.py")


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("mapc") / "ws"
    build_fixture_store(root, n_points=400)
    return root


def make_app(ws: Path, monkeypatch, query: dict | None = None) -> AppTest:
    monkeypatch.setenv("DFATLAS_WORKSPACE", str(ws))
    monkeypatch.delenv("DFATLAS_MAP", raising=False)
    at = AppTest.from_file(APP, default_timeout=90)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    return at.run()


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
    at = send_value(at, {"have": None, "req": 1})
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


def test_payload_is_shuffled_once_and_hashed_by_content():
    n = 50
    base = pd.DataFrame({"video_id": [f"v{i // 5}" for i in range(n)], "dataset": "d/test", "database": "d",
                         "x": np.arange(n, dtype=np.float32), "y": np.zeros(n, np.float32),
                         "true_class": ["real"] * 25 + ["syn"] * 25})
    cols = {"pred": base["true_class"].to_numpy(object), "vpred": base["true_class"].to_numpy(object),
            "ok": np.array(["correct"] * n, object), "vok": np.array(["correct"] * n, object),
            "score": np.linspace(0, 1, n)}
    a = map_payload.encode(base, {"knn": cols}, ["real", "syn"])
    b = map_payload.encode(base, {"knn": cols}, ["real", "syn"])
    assert a.hash == b.hash and a.data == b.data and a.n_points == n
    t = pa.ipc.open_stream(a.data).read_all()
    true = t.column("true").to_numpy()
    assert 0 < true[: n // 2].sum() < n // 2  # classes interleaved in the draw order, not class by class
    assert sorted(t.column("x").to_numpy().tolist()) == list(range(n))
