"""Config, taxonomy, workspace lock and store discipline."""

from __future__ import annotations

import multiprocessing as mp
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from data_catalog import ConfigError, Taxonomy, paper_taxonomy, to_is_real
from data_catalog.errors import AtlasError
from engine.config import load_config
from engine.store import SCHEMA_VERSION, Store, StoreError, StoreMissing, arrow_to_matrix, matrix_to_arrow
from engine.workspace import WorkspaceBusy, resolve_workspace

ROOT = Path(__file__).resolve().parents[2]


def test_paper_taxonomy_order_and_colours():
    tax = paper_taxonomy()
    assert tax.ids[0] == "real" and tax.n_classes == 10
    assert tax.color("real") == "#0072B2"
    assert len({c.color for c in tax.classes}) == 10
    assert tax.class_for("faceforensics", "FaceSwap", True) == "ff-faceswap"
    assert tax.class_for("dfd", "DeepFakeDetection", True) == "unseen-fake"
    assert tax.class_for("celebdf", "Celeb-real", False) == "real"


def test_taxonomy_rejects_unknown_class_and_bad_order(tmp_path):
    tax = paper_taxonomy()
    with pytest.raises(ConfigError, match="neither in the taxonomy"):
        tax.check_class("ff-unknown")
    assert tax.check_class("unseen-fake") == "unseen-fake"
    bad = tmp_path / "t.toml"
    bad.write_text('[[class]]\nid="fake-a"\ncolor="#112233"\n[[class]]\nid="real"\ncolor="#0072B2"\n')
    with pytest.raises(ConfigError, match="first class must be 'real'"):
        Taxonomy.load(bad)


def test_taxonomy_classes_each_get_their_own_colour(tmp_path):
    """One colour per class on every map: no two classes share one, none takes a reserved colour."""
    from data_catalog.taxonomy import FAKE_COLOR

    bad = tmp_path / "t.toml"
    bad.write_text('[[class]]\nid="real"\ncolor="#0072B2"\n[[class]]\nid="a"\ncolor="#112233"\n'
                   '[[class]]\nid="b"\ncolor="#112233"\n')
    with pytest.raises(ConfigError, match="already class 'a'"):
        Taxonomy.load(bad)
    bad.write_text(f'[[class]]\nid="real"\ncolor="#0072B2"\n[[class]]\nid="a"\ncolor="{FAKE_COLOR}"\n')
    with pytest.raises(ConfigError, match="reserved for a binary run"):
        Taxonomy.load(bad)
    from importlib import resources

    demo = resources.files("data_catalog.synthetic").joinpath("demo.toml").read_text()
    demo_tax = tmp_path / "demo_tax.toml"  # the demo's taxonomy passes the rule too
    demo_tax.write_text(demo[demo.index("[[taxonomy.class]]"):].replace("[[taxonomy.class]]", "[[class]]"))
    assert Taxonomy.load(demo_tax).n_classes == 7


def test_fallback_colours_stay_distinct_past_the_palette():
    from dashboard.figures import ClassStyle

    style = ClassStyle.for_run([f"c{i}" for i in range(30)], None)
    colours = [style.color(f"c{i}") for i in range(30)]
    assert len(set(colours)) == 30


def test_marker_shows_the_predicted_class_when_colour_shows_the_true_one():
    import pandas as pd

    from dashboard.components.scatter_map.legends import marker_legend
    from dashboard.figures import ClassStyle, marker_meaning

    style = ClassStyle.for_run(["real", "a", "b"], None)
    pts = pd.DataFrame({"true_class": ["real", "a"], "pred": ["b", "b"]})
    assert marker_meaning("pred") == "true class" and marker_meaning("true") == "predicted class"
    assert [e["id"] for e in marker_legend(pts, style, "true")] == ["b"]
    assert [e["id"] for e in marker_legend(pts, style, "pred")] == ["real", "a"]


def test_label_conversion_is_one_function():
    assert to_is_real(True) is False and to_is_real(False) is True and to_is_real(None) is None
    assert to_is_real(np.array([True, False])).tolist() == [False, True]


def test_paper_config_loads_and_run_ids_are_stable():
    cfg = load_config(ROOT / "configs" / "paper.toml")
    assert cfg.model.backbone == "legacy_xception" and cfg.train.lr == 2e-4 and cfg.train.batch_size == 16
    assert cfg.faces.frames_per_video == 15 and cfg.classifiers.knn_k == 14
    assert cfg.sources.superset[0] == "faceforensics"
    rid = cfg.run_id("triplet")
    assert rid.startswith("triplet-") and rid == load_config(ROOT / "configs" / "paper.toml").run_id("triplet")
    assert cfg.run_id("binary") != rid


def test_face_options_added_later_keep_earlier_runs_as_they_were_made():
    """A run stored before `confirm` and `pre_cropped` existed reads as made without them (confirm 'off'),
    so its settings key is the one its crops carry; today's default (landmark check) is a new key."""
    import dataclasses

    from engine.config import ADDED_LATER, FacesSection
    from engine.runs import RunRecord

    before = {f.name: getattr(FacesSection(), f.name) for f in dataclasses.fields(FacesSection)
              if f.name not in ADDED_LATER}
    run = RunRecord("attribution-old", "attribution", ("real", "x"), ("db",), (), config={"faces": before})
    old = run.section(FacesSection, "faces")
    assert old.confirm == "off" and old.pre_cropped == "use"
    assert set(old.crop_settings()) == set(before) - {"workers", "blazeface_model"}  # hashed as before
    assert FacesSection().confirm == "landmarks" and FacesSection().settings_key() != old.settings_key()
    stored_now = RunRecord("a", "attribution", ("real",), ("db",), (), config={"faces": dataclasses.asdict(FacesSection())})
    assert stored_now.section(FacesSection, "faces") == FacesSection()


@pytest.mark.parametrize("text,key", [
    ("[train]\nepochs = 'many'\n", "[train] epochs"),
    ("[model]\nbackbon = 'x'\n", "[model] backbon"),
    ("[faces]\ndetector = 'huge'\n", "[faces] detector"),
    ("[nonsense]\n", "[nonsense]"),
    ("[sources]\nsuperset = ['nope']\n", "[sources] superset"),
    ("[sources.x]\nadapter = 'nope'\nroot = '.'\n", "[sources.x] adapter"),
    ("[classifiers]\nenabled = ['forest']\n", "[classifiers] enabled"),
])
def test_config_errors_name_file_and_key(tmp_path, text, key):
    f = tmp_path / "exp.toml"
    f.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(f)
    assert str(f) in str(err.value) and key in str(err.value)


def test_config_relative_paths_and_invalid_toml(tmp_path):
    f = tmp_path / "sub" / "exp.toml"
    f.parent.mkdir()
    f.write_text('[sources.mine]\nadapter = "generic"\nroot = "../data"\n')
    cfg = load_config(f)
    assert cfg.source("mine").root.resolve() == (tmp_path / "data").resolve()
    f.write_text("[train\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(f)


def test_workspace_resolution_order(tmp_path, monkeypatch):
    monkeypatch.setenv("DFATLAS_WORKSPACE", str(tmp_path / "env"))
    assert resolve_workspace(tmp_path / "arg").root == tmp_path / "arg"
    assert resolve_workspace(None).root == tmp_path / "env"
    monkeypatch.delenv("DFATLAS_WORKSPACE")
    monkeypatch.chdir(tmp_path)
    assert resolve_workspace(None).root == tmp_path / "dfatlas-workspace"


def _hold_lock(root, ready, release):
    from engine.workspace import resolve_workspace

    with resolve_workspace(root).lock("holder"):
        ready.set()
        release.wait(20)


def test_workspace_lock_blocks_a_second_job(tmp_path):
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold_lock, args=(str(tmp_path / "ws"), ready, release))
    proc.start()
    try:
        assert ready.wait(30)
        with pytest.raises(WorkspaceBusy, match="in use by another dfatlas job .*'holder'"):
            with resolve_workspace(tmp_path / "ws").lock("second"):
                pass
    finally:
        release.set()
        proc.join(30)
    with resolve_workspace(tmp_path / "ws").lock("third"):  # released, also after a crash
        pass


def test_store_migrates_and_refuses_newer_schema(tmp_path):
    store = Store(tmp_path / "a.duckdb")
    assert "videos" in store.tables()
    assert store.scalar("SELECT max(version) FROM schema_version") == SCHEMA_VERSION
    store.execute("INSERT INTO schema_version (version) VALUES (?)", [SCHEMA_VERSION + 5])
    with pytest.raises(StoreError, match="newer dfatlas"):
        Store(tmp_path / "a.duckdb").tables()
    with pytest.raises(StoreMissing, match="no store"):
        Store(tmp_path / "none.duckdb", read_only=True).tables()


def test_store_embeddings_round_trip_and_transactions(tmp_path):
    store = Store(tmp_path / "a.duckdb")
    m = np.random.default_rng(0).normal(size=(100, 8)).astype(np.float32)
    ids = [f"f{i:03d}" for i in range(100)]
    store.insert("embeddings", pa.table({"run_id": ["r"] * 100, "face_id": ids, "dataset": ["d/test"] * 100,
                                         "embedding": matrix_to_arrow(m)}))
    back = store.arrow("SELECT embedding FROM embeddings ORDER BY face_id")
    np.testing.assert_array_equal(arrow_to_matrix(back["embedding"]), m)
    with pytest.raises(RuntimeError):
        with store.transaction() as con:
            store.insert("embeddings", pa.table({"run_id": ["r2"], "face_id": ["x"], "dataset": ["d"],
                                                 "embedding": matrix_to_arrow(m[:1])}), con=con)
            raise RuntimeError("crash mid-write")
    assert store.scalar("SELECT count(*) FROM embeddings WHERE run_id = 'r2'") == 0


def test_store_writer_retries_while_a_reader_holds_the_file(tmp_path):
    path = tmp_path / "a.duckdb"
    Store(path).tables()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import duckdb,time,sys; c=duckdb.connect(sys.argv[1]); c.execute('select 1');"
        "print('held', flush=True); time.sleep(2); c.close()"), str(path)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    t0 = time.monotonic()
    Store(path, announce_after=0.5).execute("INSERT INTO jobs (job_id, kind, status) VALUES ('j', 'test', 'queued')")
    assert time.monotonic() - t0 > 0.5  # it waited for the other process
    holder.wait(10)
    assert Store(path, read_only=True).scalar("SELECT count(*) FROM jobs") == 1


def test_cli_reports_user_errors_without_traceback(tmp_path):
    bad = tmp_path / "exp.toml"
    bad.write_text("[train]\nepochs = -1\n")
    proc = subprocess.run([sys.executable, "-m", "engine.cli", "catalog", "show", "--config", str(bad)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "[train] epochs" in proc.stderr


def test_store_queries_can_join_a_list_of_ids(tmp_path):
    store = Store(tmp_path / "a.duckdb")
    store.execute("INSERT INTO jobs (job_id, kind, status) VALUES ('a', 'k', 'queued'), ('b', 'k', 'queued'), "
                  "('c', 'k', 'queued')")
    wanted = pa.table({"job_id": ["a", "c", "zz"]})
    sql = "SELECT job_id FROM jobs WHERE job_id IN (SELECT job_id FROM _wanted) ORDER BY 1"
    assert store.df(sql, tables={"_wanted": wanted}).job_id.tolist() == ["a", "c"]
    ro = Store(tmp_path / "a.duckdb", read_only=True)  # first call on a fresh read-only handle
    assert ro.arrow(sql, tables={"_wanted": wanted}).column("job_id").to_pylist() == ["a", "c"]
