"""engine.evaluation and `dfatlas evaluate` on a tiny store holding the four approaches."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.helpers.atlas_fixtures import build_store
from data_catalog.errors import AtlasError
from engine.classify import classify_run
from engine.config import ClassifiersSection
from engine.evaluation import confusion, detection_losses, metrics_table
from engine.metrics import evaluate, video_level
from engine.store import Store, StoreError


@pytest.fixture(scope="module")
def four_ws(tmp_path_factory):
    from engine.workspace import resolve_workspace

    ws = resolve_workspace(tmp_path_factory.mktemp("four")).ensure()
    runs = build_store(ws, per_class=6, frames=3, noise=2.5)
    for a in ("triplet", "arcfacemod"):
        classify_run(ws.store(), runs[a], ClassifiersSection(enabled=("knn", "lr"), cv_folds=3))
    return ws, runs


@pytest.fixture
def four(four_ws):
    ws, runs = four_ws
    return ws.store(read_only=True), runs


def test_default_table_has_the_papers_rows(four):
    store, runs = four
    df = metrics_table(store)
    assert set(df.label) == {"Binary", "Attribution", "TripletLoss-NN", "ArcFaceMod-LR"}
    same = df[df.role == "same-db"]
    assert sorted(same.dataset.unique()) == ["dba", "dbb"] and len(same) == 8
    cross = df[df.role == "cross-db"]
    assert sorted(cross.dataset.unique()) == ["dbx", "dby"]
    # dby has no reals: AUC undefined and said so
    dby = cross[cross.dataset == "dby"]
    assert dby.auc.isna().all() and dby.note.str.contains("no real").all()
    ok = df[df.note.isna() | (df.note == "")]
    assert ((ok.hter - (ok.fpr + ok.fnr) / 2).abs() < 1e-12).all()
    assert df[df.approach == "binary"].accuracy.isna().all()
    assert df[df.approach == "attribution"].accuracy.notna().any()


def test_table_matches_direct_computation(four):
    store, runs = four
    rid = runs["triplet"]
    df = metrics_table(store, [rid], ["knn"])
    raw = store.df("""SELECT p.real_score, p.pred_class, f.video_id, v.database, v.split, v.is_fake
                      FROM predictions p JOIN faces f USING (face_id) JOIN videos v USING (video_id)
                      WHERE p.run_id = ? AND p.classifier = 'knn'""", [rid])
    vl = video_level(raw.video_id, raw.real_score).merge(
        raw.drop_duplicates("video_id")[["video_id", "database", "split", "is_fake"]], on="video_id")
    val = vl[vl.split == "val"]
    test = vl[(vl.database == "dbb") & (vl.split == "test")]
    m = evaluate(val.real_score, ~val.is_fake.to_numpy(bool), test.real_score, ~test.is_fake.to_numpy(bool))
    row = df[(df.dataset == "dbb") & (df.role == "same-db")].iloc[0]
    assert row.threshold == m.threshold
    assert (row.auc, row.fpr, row.fnr, row.hter) == pytest.approx((m.auc, m.fpr, m.fnr, m.hter))
    assert (row.n_real, row.n_fake) == (6, 12)


def test_all_classifiers_frame_level_and_bootstrap(four):
    store, runs = four
    df = metrics_table(store, classifiers="all", level="frame", bootstrap=50)
    assert set(df[df.approach == "triplet"].classifier) == {"knn", "lr"}
    row = df[(df.dataset == "dba") & (df.run_id == runs["attribution"])].iloc[0]
    assert row.n_real == 18 and row.level == "frame"
    assert row.hter_lo <= row.hter <= row.hter_hi


def test_confusion_has_unseen_rows_per_database(four):
    store, runs = four
    cm = confusion(store, runs["attribution"], "native", ["dbx/test", "dby/test", "dba/test"])
    assert {"unseen-fake (dbx)", "unseen-fake (dby)"} <= set(cm.index)
    assert cm.values.sum() == 6 * 3 + 6 + 6 + 6
    assert detection_losses(store).empty  # no face_videos rows in this store


def test_accuracy_over_known_classes_with_unseen_fakes_apart(four):
    """Open-world papers' "known / new": dbx's unseen fakes do not count in Acc; they are counted apart."""
    store, runs = four
    rid = runs["attribution"]
    df = metrics_table(store, [rid], bootstrap=200)
    row = df[(df.dataset == "dbx") & (df.role == "cross-db")].iloc[0]
    raw = store.df("""SELECT p.real_score, p.pred_class, f.video_id, v.true_class, v.is_fake
                      FROM predictions p JOIN faces f USING (face_id) JOIN videos v USING (video_id)
                      WHERE p.run_id = ? AND p.classifier = 'native' AND v.database = 'dbx'""", [rid])
    vl = video_level(raw.video_id, raw.real_score, raw.pred_class).merge(
        raw.drop_duplicates("video_id")[["video_id", "true_class"]], on="video_id")
    classes = store.df("SELECT classes FROM runs WHERE run_id = ?", [rid]).classes[0]
    index = {c: i for i, c in enumerate(classes)}
    known = vl[vl.true_class.isin(list(index))]
    new = vl[vl.true_class == "unseen-fake"]
    assert len(new) > 0 and row.n_new == len(new) and row.n_known == len(known)
    assert row.accuracy == pytest.approx((known.true_class.map(index) == known.pred_class).mean())
    assert row.new_as_fake == pytest.approx((new.real_score < row.threshold).mean())
    assert row.accuracy_lo <= row.accuracy <= row.accuracy_hi
    same = df[(df.role == "same-db")]
    assert (same.n_new == 0).all() and same.new_as_fake.isna().all()


def test_bad_input(workspace):
    build_store(workspace, approaches=("binary",), per_class=2, frames=1)
    store = workspace.store()
    with pytest.raises(AtlasError, match="unknown run id 'nope'"):
        metrics_table(store, ["nope"])
    with pytest.raises(AtlasError, match="level"):
        metrics_table(store, level="clip")
    # a store written by a newer schema
    store.execute("INSERT INTO schema_version (version) VALUES (99)")
    with pytest.raises(StoreError, match="newer"):
        metrics_table(Store(workspace.store_path, read_only=True))


def test_cli_prints_both_tables(four_ws, capsys):
    from engine.cli import main

    workspace = four_ws[0]

    assert main(["evaluate", "--workspace", str(workspace.root), "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert "Table 1" in out and "Table 2" in out and "TripletLoss-NN" in out and "ArcFaceMod-LR" in out
    assert "SYNTHETIC" in out and "no real samples" in out
    assert main(["evaluate", "--workspace", str(workspace.root), "--runs", "nope"]) == 2
    assert "unknown run id" in capsys.readouterr().err
    assert main(["evaluate", "--workspace", str(workspace.root), "--format", "csv", "--classifier", "all"]) == 0
    out = capsys.readouterr()
    body = pd.read_csv(__import__("io").StringIO(out.out))  # tidy: parsed as it is, provenance on stderr
    assert {"run_id", "auc", "hter", "note", "level"} <= set(body.columns) and "code revision" in out.err.lower()
    assert body[["approach", "classifier", "dataset", "level"]].notna().all().all()
    assert main(["evaluate", "--workspace", str(workspace.root), "--format", "latex"]) == 0
    tex = capsys.readouterr().out
    assert tex.count("\\begin{table}") == tex.count("\\caption{") == tex.count("\\label{tab:dfatlas-") >= 2


def test_shared_videos_count_for_every_database_claiming_them(workspace):
    runs = build_store(workspace, approaches=("attribution",), per_class=4, frames=1)
    store = workspace.store()
    before = metrics_table(store).set_index("dataset")
    # dba's test reals are also dbb's test reals (stored once, like FF++ originals in HifiFace)
    store.execute("UPDATE videos SET also_in = ['dbb/test'] WHERE database = 'dba' AND split = 'test' AND NOT is_fake")
    after = metrics_table(store).set_index("dataset")
    assert after.loc["dbb", "n_real"] == before.loc["dbb", "n_real"] + 4
    assert after.loc["dba", "n_real"] == before.loc["dba", "n_real"]
    assert after.loc["dba", "threshold"] == before.loc["dba", "threshold"]  # pooled val unchanged
    from engine.scores import sample_scores

    s = sample_scores(store, runs["attribution"], "native", ["dbb/test"])
    assert (s.is_real == True).sum() == 8  # noqa: E712


def test_classifier_without_predictions_is_a_note(four):
    store, runs = four
    df = metrics_table(store, classifiers=["svm"])
    assert (df.dataset == "(all)").all()
    assert df[df.approach == "triplet"].note.str.contains("dfatlas classify").all()
    assert df[df.approach == "binary"].note.str.contains("native").all()


def test_unseen_fakes_in_the_superset_validation_split_set_no_theta(tmp_path):
    """DESIGN.md: θ comes from the super-set validation split restricted to the taxonomy's classes — the same
    validation fakes for every approach; a super-set database's unseen fakes are tested, never used for θ."""
    from engine.runs import read_run
    from engine.scores import threshold_of, validation_scores
    from engine.workspace import resolve_workspace

    ws = resolve_workspace(tmp_path).ensure()
    runs = build_store(ws, per_class=6, frames=3, noise=2.5)
    store = ws.store()
    # a third of dba's validation 'fa' videos become fakes of a method outside the taxonomy
    store.execute("UPDATE videos SET true_class = 'unseen-fake' WHERE dataset = 'dba/val' AND true_class = 'fa' "
                  "AND relpath < 'fa/val_002'")
    cfg = ClassifiersSection(enabled=("knn", "lr"), cv_folds=3)
    for a in ("triplet", "arcfacemod"):
        classify_run(store, runs[a], cfg)
        assert {s["status"] for s in classify_run(store, runs[a], cfg)} == {"cached"}  # every face predicted
    df = metrics_table(store, classifiers="all")
    populations = set()
    for approach, run_id in runs.items():
        run = read_run(store, run_id)
        for clf in set(df[df.run_id == run_id].classifier):
            val = validation_scores(store, run, clf)
            assert "unseen-fake" not in set(val.true_class)
            populations.add(tuple(sorted(val.video_id[~val.is_real.astype(bool)])))
            theta = df[(df.run_id == run_id) & (df.classifier == clf)].threshold.dropna().unique()
            assert theta == pytest.approx([threshold_of(val)])
    assert len(populations) == 1 and len(populations.pop()) == 6 * 2 * 2 - 2  # 2 of 24 val fakes left out


def test_theta_from_too_few_validation_fakes_is_flagged_in_the_table(tmp_path):
    from engine.scores import theta_note
    from engine.workspace import resolve_workspace

    assert theta_note(1, 4) == "θ from 1 validation fake only" and theta_note(5, 4) == ""
    ws = resolve_workspace(tmp_path).ensure()
    runs = build_store(ws, approaches=("attribution",), per_class=2, frames=2)
    store = ws.store()
    # leave one validation fake video in the super-set: θ rests on it alone
    store.execute("UPDATE videos SET split = 'train' WHERE split = 'val' AND is_fake AND video_id <> "
                  "(SELECT min(video_id) FROM videos WHERE split = 'val' AND is_fake)")
    df = metrics_table(store, list(runs.values()))
    same = df[df.role == "same-db"]
    assert len(same) and same.note.str.contains("θ from 1 validation fake only").all()


# --- video aggregation as a choice: θ recomputed at the same aggregation ---------------------------------

def _direct_theta(store, rid, clf, aggregation, top_k=3):
    """θ by hand: the run's validation faces -> videos by `aggregation` -> bob's far_threshold on the fakes."""
    from engine.metrics import far_threshold

    raw = store.df("""SELECT p.real_score, f.video_id, v.split, v.is_fake FROM predictions p
                      JOIN faces f USING (face_id) JOIN videos v USING (video_id)
                      WHERE p.run_id = ? AND p.classifier = ?""", [rid, clf])
    vl = video_level(raw.video_id, raw.real_score, aggregation=aggregation, top_k=top_k).merge(
        raw.drop_duplicates("video_id")[["video_id", "split", "is_fake"]], on="video_id")
    val = vl[vl.split == "val"]
    return far_threshold(val.real_score[val.is_fake.to_numpy(bool)])


def test_aggregation_recomputes_theta_and_changes_the_table(four):
    from engine.scores import select_scores

    store, runs = four
    rid = runs["triplet"]
    default = metrics_table(store)
    pd.testing.assert_frame_equal(default, metrics_table(store, aggregation="mean"))  # mean = today's numbers
    assert set(default.aggregation) == {"mean"}
    worst = metrics_table(store, aggregation="max-fake")
    top2 = metrics_table(store, aggregation="top-k", top_k=2)
    assert set(worst.aggregation) == {"max-fake"} and set(top2.aggregation) == {"top-2"}
    for df, agg, k in ((default, "mean", 3), (worst, "max-fake", 3), (top2, "top-k", 2)):
        row = df[(df.run_id == rid) & (df.dataset == "dbb") & (df.role == "same-db")].iloc[0]
        theta = _direct_theta(store, rid, "knn", agg, k)
        assert row.threshold == theta
        assert select_scores(store, rid, "knn", aggregation=agg, top_k=k).theta == theta
    # the tables move: thresholds and error rates differ once frames are aggregated otherwise
    key = ["run_id", "classifier", "dataset", "role"]
    both = default.merge(worst, on=key, suffixes=("", "_w"))
    assert (both.threshold != both.threshold_w).any()
    assert ((both.hter - both.hter_w).abs() > 1e-9).any() or ((both.auc - both.auc_w).abs() > 1e-9).any()
    # frame level: the aggregation does not apply and is not recorded
    assert set(metrics_table(store, level="frame", aggregation="max-fake").aggregation) == {""}


def test_cli_aggregation_is_recorded_in_the_export_and_provenance(four_ws, capsys, tmp_path):
    from engine.cli import main

    root = str(four_ws[0].root)
    assert main(["evaluate", "--workspace", root, "--format", "csv", "--aggregation", "top-k", "--top-k", "2"]) == 0
    out = capsys.readouterr()
    body = pd.read_csv(__import__("io").StringIO(out.out))  # tidy: provenance goes to stderr
    assert set(body.aggregation) == {"top-2"}
    assert "# scoring: video level; a video's real-score is the mean of its 2 most fake frames' real-scores" in out.err
    assert main(["evaluate", "--workspace", root, "--format", "markdown", "--aggregation", "median"]) == 0
    out = capsys.readouterr().out
    assert "video score: median" in out and "| video score |" in out and "median of its frames' real-scores" in out
    # the config's [classifiers] aggregation is the default; a bad value is refused at load, naming the key
    cfg = tmp_path / "exp.toml"
    cfg.write_text('[classifiers]\naggregation = "max-fake"\n')
    from engine.runs import read_runs

    runs = list(read_runs(four_ws[0].store(read_only=True)))  # --config alone restricts to the config's runs
    assert main(["evaluate", "--workspace", root, "--config", str(cfg), "--runs", *runs, "--format", "csv"]) == 0
    assert set(pd.read_csv(__import__("io").StringIO("\n".join(
        l for l in capsys.readouterr().out.splitlines() if not l.startswith("#")))).aggregation) == {"max-fake"}
    cfg.write_text('[classifiers]\naggregation = "worst"\n')
    assert main(["evaluate", "--workspace", root, "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "aggregation" in err and "worst" in err
    assert main(["evaluate", "--workspace", root, "--top-k", "4"]) == 2
    assert "--top-k applies to --aggregation top-k only" in capsys.readouterr().err
