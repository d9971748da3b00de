"""Analysis of unknown sets: open-set logic, the report, and the pipeline's all-or-nothing writes.

The pipeline test replaces face extraction, the model (behind the real
`engine.embed.embed_crops`, which reads the crops it wrote), the classifiers and
the map with small stand-ins (so it runs in a second); the store rows it writes
and cleans up are the real ones. The end-to-end path with real faces
and a trained model is covered in tests/test_analyze_e2e.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from tests.helpers.analyze_fixture import CLASSES, DIM, FACES, RUN_ID, build_store, cluster, direction, write_faces
from engine import analysis as an
from engine.analysis import stages as an_run
from engine.runs import read_run


# --- the report from stored rows ------------------------------------------------------

def _add_unknown_set(store, name="case", labelled=False, seed=5):
    rng = np.random.default_rng(seed)
    key = FACES.settings_key()
    # 6 swap-like videos, 3 gan-like, 3 novel (direction 4); 3 frames each
    kinds = ["swap"] * 6 + ["gan"] * 3 + ["novel"] * 3
    centers = {"swap": direction(1), "gan": direction(2), "novel": direction(4)}
    emb = np.concatenate([cluster(centers[k], 3, rng, noise=0.05) for k in kinds])
    pred = np.repeat([1 if k == "swap" else 2 for k in kinds], 3)
    pred[0] = 2  # one disagreeing frame in the first video
    classes = [("swap" if k == "swap" else "unseen-fake") if labelled else None for k in kinds]
    write_faces(store, f"unknown/{name}", "unknown", name, classes, emb, 3, key,
                real_scores=np.full(len(pred), 0.1), pred_class=pred, prefix="u")
    store.insert("datasets", pa.table({"dataset": [f"unknown/{name}"], "database": ["unknown"], "split": [name],
                                       "role": ["unknown"], "labelled": [labelled], "source": ["/in"]}))
    return kinds


def test_build_report_verdicts_with_an_open_set_row(tmp_path):
    store = build_store(tmp_path)
    kinds = _add_unknown_set(store)
    rep = an.build_report(store, RUN_ID, "unknown/case")
    assert rep.classifier == "knn" and rep.n_videos == 12 and rep.n_faces == 36
    shares = rep.class_shares.set_index("class")
    # the predicted-class table counts verdicts: the 3 novel videos (classified gan) are in the open-set row
    assert shares.loc["swap", "videos"] == 6 and shares.loc["gan", "videos"] == 3
    assert shares.loc[an.OPEN_SET_LABEL, "videos"] == 3 and rep.class_shares["class"].iloc[-1] == an.OPEN_SET_LABEL
    assert np.isclose(shares["video_share"].sum(), 1) and shares["faces"].sum() == 36
    assert shares.loc[an.OPEN_SET_LABEL, "faces"] >= 8 and shares.loc["swap", "faces"] == 17
    v = rep.videos.set_index("relpath")
    novel = [f"case/u{i:03d}.avi" for i, k in enumerate(kinds) if k == "novel"]
    known = [f"case/u{i:03d}.avi" for i, k in enumerate(kinds) if k != "novel"]
    assert (v.loc[novel, "verdict"] == an.OPEN_SET_LABEL).all() and (v.loc[novel, "open_ratio"] > 1).all()
    assert (v.loc[known, "verdict"] != an.OPEN_SET_LABEL).all()
    assert (v.loc[novel, "pred_class"] == "gan").all()  # the classifier's class is kept beside the verdict
    assert v.loc["case/u000.avi", "pred_class"] == "swap"
    assert np.isclose(v.loc["case/u000.avi", "agreement"], 2 / 3)
    assert np.isclose(v.loc["case/u000.avi", "share_gan"], 1 / 3)
    assert np.isclose(rep.open_set["video_rate"], 3 / 12)
    assert 0.2 <= rep.open_set["face_rate"] <= 0.3
    assert rep.open_set["score"] == "knn+mahalanobis" and rep.open_set["false_alarm"] == 0.05
    assert rep.metrics is None  # unlabelled
    text = "\n".join(rep.summary_lines())
    assert "25.0 % of the 12 videos with faces (3) resemble no known class" in text
    assert "knn classifier" in text and "cosine distance" in text and "known test" not in text  # no test split
    assert "Swap" in text  # display names, not class ids
    json.dumps(rep.to_dict(), default=str)


def test_one_answer_per_video(tmp_path):
    """The report's verdict, the video's nearest classes and its evidence come from one definition."""
    store = build_store(tmp_path)
    _add_unknown_set(store)
    rep = an.build_report(store, RUN_ID, "unknown/case")
    for row in rep.videos.itertuples():
        ev = an.video_evidence(store, RUN_ID, row.video_id, k=4)
        assert ev.verdict == row.verdict and ev.pred_class == row.pred_class and ev.classifier == rep.classifier
        assert np.isclose(ev.open_score, row.open_score) and ev.open_set == row.open_set
        assert max(ev.class_shares, key=ev.class_shares.get) == row.pred_class  # nearest classes: top = class
        assert ev.faces["identity"].is_unique and ev.faces["distance"].is_monotonic_increasing
        if ev.open_set:
            assert len(ev.faces) == 4
        else:
            assert len(ev.faces) == 4 and (ev.faces["true_class"] == ev.verdict).all()
            assert ev.agreement >= 0.5
        assert len(ev.frames) == 3 and set(ev.frames["pred_class"]) <= {"swap", "gan"}


def test_evidence_collapses_one_identity(tmp_path):
    """Near-duplicate faces of one identity give one evidence face, the nearest."""
    from tests.helpers.analyze_fixture import CLASSES

    store = build_store(tmp_path)
    store.execute("UPDATE videos SET identity = 'person-' || (CAST(regexp_extract(relpath, '([0-9]+)[.]avi$', 1) "
                  "AS INTEGER) % 2) WHERE database = 'synth'")
    _add_unknown_set(store)
    ev = an.nearest_known_faces(store, RUN_ID, "unknown/case/u006.avi", k=5)
    assert len(ev) == 2 and ev["identity"].is_unique  # two identities in the reference
    assert set(CLASSES) >= set(ev["true_class"])


def test_build_report_metrics_with_labels(tmp_path):
    store = build_store(tmp_path)
    _add_unknown_set(store, labelled=True)
    rep = an.build_report(store, RUN_ID, "unknown/case")
    m = rep.metrics
    assert m is not None and m["level"] == "video" and m["n_videos"] == 12
    # every video is fake and scores 0.1, below any validation threshold: nothing accepted as real
    assert m["fpr"] == 0.0 and m["auc"] is None


def test_theta_comes_from_the_runs_theta_population(tmp_path):
    """θ of the report's metrics is engine.scores' (super-set validation, taxonomy classes only): validation
    videos of an unseen fake method that score like reals change neither θ nor the open-set radii."""
    from engine.metrics import far_threshold
    from engine.scores import threshold_of, validation_scores

    store = build_store(tmp_path)
    _add_unknown_set(store, labelled=True)
    before = an.build_report(store, RUN_ID, "unknown/case")
    rng = np.random.default_rng(9)
    key = FACES.settings_key()
    n = 6 * 3
    write_faces(store, "synth/val", "synth", "val", ["unseen-fake"] * 6, cluster(direction(3), n, rng), 3, key,
                real_scores=np.full(n, 0.99), pred_class=np.zeros(n, int), prefix="unseen")
    after = an.build_report(store, RUN_ID, "unknown/case")
    run = read_run(store, RUN_ID)
    val = validation_scores(store, run, "knn")
    assert "unseen-fake" not in set(val.true_class)
    assert after.metrics["threshold"] == before.metrics["threshold"] == threshold_of(val)
    assert after.open_set["video_threshold"] == before.open_set["video_threshold"]
    # the old population (every validation prediction) would have moved θ up to the unseen fakes' 0.99
    all_val = store.df("SELECT avg(p.real_score) AS real_score FROM predictions p JOIN faces f USING (face_id) "
                       "JOIN videos v USING (video_id) WHERE p.dataset = 'synth/val' AND p.classifier = 'knn' "
                       "AND v.is_fake GROUP BY f.video_id")
    assert far_threshold(all_val.real_score.to_numpy(), 0.10) > after.metrics["threshold"]


def test_default_classifier_is_the_runs(tmp_path):
    """ArcFaceMod reports LR (as `dfatlas evaluate` and the dashboard), TripletLoss kNN; else the first available."""
    store = build_store(tmp_path, approach="arcfacemod")
    _add_unknown_set(store)
    # the set and the validation split get LR predictions too (a copy of kNN's)
    store.execute("INSERT INTO predictions (run_id, classifier, face_id, dataset, pred_class, real_score, probs, "
                  "out_of_fold) SELECT run_id, 'lr', face_id, dataset, pred_class, real_score, probs, out_of_fold "
                  "FROM predictions WHERE classifier = 'knn'")
    assert an.build_report(store, RUN_ID, "unknown/case").classifier == "lr"
    assert an.build_report(store, RUN_ID, "unknown/case", classifier="knn").classifier == "knn"
    run = read_run(store, RUN_ID)
    assert an.default_classifier(run, ["knn", "svm"]) == "knn"
    triplet = build_store(tmp_path / "t")
    assert an.default_classifier(read_run(triplet, RUN_ID), ["knn", "lr", "svm"]) == "knn"
    with pytest.raises(an.AnalysisError, match="no stored predictions"):
        an.default_classifier(run, [])


def test_evidence_is_nearest_in_embedding_space(tmp_path):
    store = build_store(tmp_path)
    _add_unknown_set(store)
    ev = an.nearest_known_faces(store, RUN_ID, "unknown/case/u006.avi", k=5)  # a gan-like video
    assert len(ev) == 5 and (ev["true_class"] == "gan").all()
    assert ev["distance"].is_monotonic_increasing
    assert set(ev["dataset"]) <= {"synth/train", "synth/val"}
    assert ev["thumbnail"].map(lambda b: isinstance(b, (bytes, bytearray))).all()
    th = an.class_thumbnails(store, RUN_ID, "unknown/case", "knn", per_class=2)
    assert sorted(th["pred_class"].unique()) == [1, 2] and len(th) == 4


# --- the pipeline (stand-ins for faces, model, classifiers, map) ----------------------------

CENTERS = {"swap": 1, "gan": 2, "novel": 4, "real": 0}


def _kind(video_id: str) -> str:
    stem = video_id.rsplit("/", 1)[-1]
    return next((k for k in CENTERS if stem.startswith(k)), "novel")


class ColourModel:
    """Stands in for the run's checkpoint: a crop's grey level says which direction its embedding has."""

    input_size = None

    def predict(self, imgs, batch_size=256):
        idx = np.rint((imgs.reshape(len(imgs), -1).mean(1) - 20) / 40).astype(int)
        rng = np.random.default_rng(len(imgs))
        emb = np.stack([direction(int(i)) for i in idx]) + 0.1 * rng.standard_normal((len(imgs), DIM))
        return {"embedding": emb.astype(np.float32), "probs": None, "real_score": None}


@pytest.fixture
def stubbed(workspace, monkeypatch):
    """A workspace with the fixture run; extraction/model/classifiers/map replaced."""
    import cv2

    store = build_store(workspace.root)
    calls = {"project_run": 0, "transform": 0, "fail_at": None, "embed_chunks": 0}
    import engine.faces as faces_mod

    def fake_extract(ws, videos, faces, *, workers=None, executor="process", progress=True, on_progress=None, **kw):
        recs = list(videos)
        key = faces.settings_key()
        rows_fv, rows_f = [], []
        for i, r in enumerate(recs):
            stem = Path(r.path).name
            n = 0 if stem.startswith("noface") else 3
            rows_fv.append((r.video_id, key, "ok" if n else "no_face", None if n else "no face in 3 sampled frames", n))
            for k in range(n):
                rel = f"faces/{key}/{r.video_id}/{k:06d}.png"
                (ws.root / rel).parent.mkdir(parents=True, exist_ok=True)
                grey = 20 + 40 * CENTERS[_kind(r.video_id)]
                cv2.imwrite(str(ws.root / rel), np.full((8, 8, 3), grey, np.uint8))
                rows_f.append((f"{r.video_id}#{k}@{key}", r.video_id, key, k, rel))
            if on_progress:
                on_progress(i + 1, len(recs))
        with ws.store().transaction() as con:
            ws.store().insert("face_videos", pa.table({
                "video_id": [x[0] for x in rows_fv], "settings_key": [x[1] for x in rows_fv],
                "status": [x[2] for x in rows_fv], "reason": pa.array([x[3] for x in rows_fv], pa.string()),
                "n_faces": [x[4] for x in rows_fv]}), con=con)
            if rows_f:
                ws.store().insert("faces", pa.table({
                    "face_id": [x[0] for x in rows_f], "video_id": [x[1] for x in rows_f],
                    "settings_key": [x[2] for x in rows_f], "frame_index": [x[3] for x in rows_f],
                    "crop_path": [x[4] for x in rows_f]}), con=con)

    def fake_apply(store_, run_id, emb, names=None, cfg=None, progress=None):
        pred = np.asarray(emb)[:, :3].argmax(1)  # the known classes' directions
        if progress:
            progress(1, 1)
        return {"knn": {"pred_class": pred, "real_score": (pred == 0).astype(float), "probs": None}}

    def fake_project_run(store_, run_id, cfg, progress=None):
        calls["project_run"] += 1
        store_.insert("projections", pa.table({"projection_id": ["proj-new"], "run_id": [run_id],
                                               "reference": ["synth/val"], "params_json": ["{}"], "seed": [0]}))
        return "proj-new"

    def fake_transform(store_, pid, emb, n_jobs=0, progress=None, video_ids=None):
        calls["transform"] += 1
        if calls["fail_at"] == "transform":
            raise RuntimeError("transform exploded")
        return np.zeros((len(emb), 2))

    monkeypatch.setattr(faces_mod, "extract_faces", fake_extract)
    monkeypatch.setattr(an_run, "load_model", lambda ws, run, device="cpu": ColourModel())
    monkeypatch.setattr(an_run, "apply_to_embeddings", fake_apply)
    monkeypatch.setattr(an_run, "transform_into", fake_transform)
    monkeypatch.setattr(an_run, "project_run", fake_project_run)
    return workspace, store, calls


def _videos(folder: Path, names: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        (folder / n).write_bytes(b"not really a video")
    return folder


def _config(tmp_path):
    from engine.config import load_config

    p = tmp_path / "exp.toml"
    p.write_text('[experiment]\nsynthetic = true\n[taxonomy]\n'
                 '[[taxonomy.class]]\nid = "real"\ncolor = "#0072B2"\nsources = ["*:real"]\n'
                 '[[taxonomy.class]]\nid = "swap"\ncolor = "#CC6677"\nsources = ["*:swap"]\n'
                 '[[taxonomy.class]]\nid = "gan"\ncolor = "#117733"\nsources = ["*:gan"]\n')
    return load_config(p)


def _counts(store, dataset):
    return {t: store.scalar(f"SELECT count(*) FROM {t} WHERE dataset = ?", [dataset])
            for t in ("videos", "datasets", "embeddings", "predictions", "projection_points")} | {
        "faces": store.scalar("SELECT count(*) FROM faces WHERE face_id LIKE ?", [dataset + "/%"]),
        "face_videos": store.scalar("SELECT count(*) FROM face_videos WHERE video_id LIKE ?", [dataset + "/%"]),
    }


def test_analyze_stores_the_set_and_reports(stubbed, tmp_path):
    ws, store, calls = stubbed
    src = _videos(tmp_path / "Suspicious Set", ["swap1.avi", "swap2.mp4", "gan1.avi", "novel1.avi", "noface1.avi"])
    (src / "notes.txt").write_text("ignored")
    seen = []
    rep = an.analyze(ws, _config(tmp_path), RUN_ID, src, progress=lambda s, d, t: seen.append(s))
    assert rep.dataset == "unknown/suspicious-set"
    c = _counts(store, rep.dataset)
    assert c == {"videos": 5, "datasets": 1, "embeddings": 12, "predictions": 12, "projection_points": 12,
                 "faces": 12, "face_videos": 5}
    assert calls["project_run"] == 0  # the run had a projection: reused
    assert store.scalar("SELECT count(*) FROM projection_points WHERE projection_id = 'proj1'") == 12
    v = rep.videos.set_index("relpath")
    assert v.loc["suspicious-set/noface1.avi", "verdict"] == an.NO_FACE_LABEL
    assert v.loc["suspicious-set/novel1.avi", "verdict"] == an.OPEN_SET_LABEL
    assert v.loc["suspicious-set/swap2.mp4", "verdict"] == "swap"
    assert rep.class_shares.set_index("class").loc[an.OPEN_SET_LABEL, "videos"] == 1
    assert [s for s in an.STAGES if s in seen] == list(an.STAGES)
    vid = store.scalar("SELECT video_id FROM videos WHERE relpath = 'suspicious-set/gan1.avi'")
    assert vid == "unknown/suspicious-set/gan1.avi"
    # the same set again under the same run: refused; --replace redoes it
    with pytest.raises(an.AnalysisError, match="already analysed"):
        an.analyze(ws, _config(tmp_path), RUN_ID, src)
    # another input under the same name: refused
    other = _videos(tmp_path / "other", ["gan9.avi"])
    with pytest.raises(an.AnalysisError, match="already exists"):
        an.analyze(ws, _config(tmp_path), RUN_ID, other, name="Suspicious Set")
    rep2 = an.analyze(ws, _config(tmp_path), RUN_ID, other, name="suspicious-set", replace=True)
    assert _counts(store, rep2.dataset)["videos"] == 1 and rep2.n_faces == 3
    assert not (ws.root / "faces" / FACES.settings_key() / "unknown" / "suspicious-set" / "swap1.avi").exists()


def test_analyze_failure_leaves_nothing(stubbed, tmp_path):
    ws, store, calls = stubbed
    src = _videos(tmp_path / "case", ["swap1.avi", "gan1.avi"])
    calls["fail_at"] = "transform"
    with pytest.raises(RuntimeError, match="transform exploded"):
        an.analyze(ws, _config(tmp_path), RUN_ID, src)
    assert all(v == 0 for v in _counts(store, "unknown/case").values())
    assert not any((ws.root / "faces").rglob("*.png"))
    calls["fail_at"] = None
    rep = an.analyze(ws, _config(tmp_path), RUN_ID, src)  # a retry works
    assert rep.n_faces == 6


def test_analyze_computes_a_missing_projection_first(stubbed, tmp_path, monkeypatch):
    ws, store, calls = stubbed
    store.execute("DELETE FROM projections")
    src = _videos(tmp_path / "case", ["swap1.avi"])
    rep = an.analyze(ws, _config(tmp_path), RUN_ID, src)
    assert calls["project_run"] == 1 and rep.projection_id == "proj-new"


@pytest.mark.parametrize("make, match", [
    (lambda p: p.mkdir(), "is empty"),
    (lambda p: _videos(p, []) and (p / "a.txt").write_text("x"), "no video files"),
    (lambda p: _videos(p, ["noface1.avi", "noface2.avi"]), "no face was found in any of the 2 videos"),
    (lambda p: p.with_suffix(".txt").write_text("x") and None, "no such file"),
])
def test_bad_inputs_are_refused_cleanly(stubbed, tmp_path, make, match):
    ws, store, _ = stubbed
    src = tmp_path / "in"
    make(src)
    with pytest.raises(an.AnalysisError, match=match):
        an.analyze(ws, _config(tmp_path), RUN_ID, src)
    assert all(v == 0 for v in _counts(store, "unknown/in").values())


def test_single_video_and_manifest_inputs(stubbed, tmp_path):
    ws, store, _ = stubbed
    src = _videos(tmp_path / "in", ["swap1.avi", "gan1.avi", "real1.avi"])
    rep = an.analyze(ws, _config(tmp_path), RUN_ID, src / "swap1.avi")
    assert rep.dataset == "unknown/swap1" and rep.n_videos == 1
    (tmp_path / "in" / "m.csv").write_text("path,label\nswap1.avi,fake\ngan1.avi,fake\nreal1.avi,real\n")
    rep = an.analyze(ws, _config(tmp_path), RUN_ID, src / "m.csv", name="manifest")
    assert rep.labelled and rep.metrics is not None and rep.metrics["n_videos"] == 3
    rep = an.analyze(ws, _config(tmp_path), RUN_ID, src, name="folder-labels", labels_csv=src / "m.csv")
    assert rep.labelled and set(rep.videos["true_class"].dropna()) == {"unseen-fake", "real"}
    assert rep.problems == []  # the labels file inside the input folder is used, not "not used"
    with pytest.raises(an.AnalysisError, match="not a video"):
        (tmp_path / "x.txt").write_text("x")
        an.analyze(ws, _config(tmp_path), RUN_ID, tmp_path / "x.txt")


def test_sanitize_name():
    assert an.sanitize_name("  My Case #42/ä ") == "my-case-42"
    with pytest.raises(an.AnalysisError):
        an.sanitize_name("///")


def test_cli_job_mode_updates_the_jobs_row(stubbed, tmp_path, capsys):
    from engine.cli import main
    from engine.jobs import read_job

    ws, store, _ = stubbed
    src = _videos(tmp_path / "case", ["swap1.avi", "gan1.avi"])
    cfg = tmp_path / "exp.toml"
    _config(tmp_path)
    rc = main(["analyze", "--config", str(cfg), "--run", RUN_ID, "--input", str(src), "--job-id", "job-1"])
    assert rc == 0
    job = read_job(store, "job-1")
    assert job["status"] == "finished" and job["progress"] == 1.0
    assert json.loads(job["message"])["dataset"] == "unknown/case"
    out = capsys.readouterr().out
    assert "verdicts (classifier knn; open-set: the sum of cosine distance to the 10th nearest training face" in out
    assert an.OPEN_SET_LABEL in out and "per video" in out
    rc = main(["analyze", "--config", str(cfg), "--run", RUN_ID, "--input", str(src), "--job-id", "job-2"])
    assert rc == 2
    job = read_job(store, "job-2")
    assert job["status"] == "failed" and "already analysed" in job["message"]


def test_open_set_rates_on_known_and_novel_sets(tmp_path):
    store = build_store(tmp_path, n_val_videos=30)
    _add_unknown_set(store)
    rates = an.open_set_rates(store, RUN_ID, ["synth/train", "unknown/case", "nothing/here"]).set_index("dataset")
    assert list(rates.index) == ["synth/train", "unknown/case"]
    assert rates.loc["synth/train", "face_open_rate"] < 0.15  # same distribution as validation: ~5 %
    assert rates.loc["unknown/case", "video_open_rate"] == pytest.approx(3 / 12)


def test_background_job_in_a_real_process_reports_failure(workspace, tmp_path):
    """The dashboard's path: a detached `dfatlas analyze --job-id` subprocess keeps the jobs row current."""
    import time

    from engine import jobs

    store = build_store(workspace.root)
    empty = tmp_path / "empty"
    empty.mkdir()
    job_id = jobs.new_job_id("analyze")
    proc = jobs.start_background(workspace, job_id, ["analyze", "--run", RUN_ID, "--input", str(empty)])
    proc.wait(timeout=120)
    job = jobs.read_job(store, job_id)
    assert job is not None and job["status"] == "failed", (job, jobs.read_log_tail(workspace, job_id))
    assert "is empty" in job["message"] and job["finished_at"] is not None
    assert "is empty" in jobs.read_log_tail(workspace, job_id)
    assert store.scalar("SELECT count(*) FROM videos WHERE dataset = 'unknown/empty'") == 0
    # a row whose process died without finishing reads as failed
    store.insert("jobs", pa.table({"job_id": ["ghost"], "kind": ["analyze"], "status": ["running"],
                                   "message": ["faces: 3/9"], "pid": [proc.pid]}))
    ghost = jobs.read_job(store, "ghost")
    assert ghost["status"] == "failed" and "ended without finishing" in ghost["message"]


def test_frame_folders_are_videos_and_unused_files_are_kept_with_the_set(stubbed, tmp_path):
    """Frames as input: a folder of images is one video; every file not used is reported with the reason,
    stored with the set (the dashboard reads the report back), and removed with it."""
    ws, store, _ = stubbed
    src = _videos(tmp_path / "case", ["swap1.avi"])
    _videos(src / "gan1", ["0002.png", "0010.png"])
    (src / "anim.gif").write_bytes(b"GIF89a")
    (src / "notes.txt").write_text("x")
    rep = an.analyze(ws, _config(tmp_path), RUN_ID, src)
    assert set(rep.videos["relpath"]) == {"case/swap1.avi", "case/gan1"}
    assert store.scalar("SELECT frames FROM videos WHERE relpath = 'case/gan1'") == [
        str(src / "gan1" / "0002.png"), str(src / "gan1" / "0010.png")]
    assert len(rep.problems) == 2
    assert any("anim.gif" in p and "GIF" in p for p in rep.problems)
    assert any(p.startswith("not_media:") and "notes.txt" in p for p in rep.problems)
    assert an.build_report(store, RUN_ID, rep.dataset).problems == rep.problems  # as the dashboard reads it
    assert an.delete_set(ws, rep.dataset)
    assert store.scalar("SELECT count(*) FROM catalog_problems WHERE dataset = ?", [rep.dataset]) == 0
