"""The analyst's case: chain of custody (SHA-256, original names), the case report, the video drill-down and
the report's bookkeeping, on the stubbed analysis pipeline of tests/integration/test_analyze.py (real store
rows, stand-in faces and model)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine import analysis as an
from engine.analysis.custody import UPLOAD_NAMES, custody_table, upload_names, write_upload_names
from tests.helpers.analyze_fixture import RUN_ID
from tests.integration.test_analyze import _config, stubbed  # noqa: F401  (the fixture)

HOSTILE = "<script>alert('x')</script> & \"quote\".avi"


def _upload_folder(ws, names: dict[str, bytes | str]) -> Path:
    """An upload folder as `dashboard.uploads.save_uploads` leaves it: safe names, originals beside them."""
    folder = ws.uploads_dir / "case-20260101-000000"
    folder.mkdir(parents=True)
    originals = {}
    for safe, original in names.items():
        (folder / safe).write_bytes(f"bytes of {safe}".encode())
        originals[safe] = original
    write_upload_names(folder, originals)
    return folder


@pytest.fixture
def analysed(stubbed, tmp_path):  # noqa: F811
    ws, store, calls = stubbed
    folder = _upload_folder(ws, {"swap1.avi": "подделка-1.avi", "video.avi": "動画.avi", "gan1.avi": HOSTILE,
                                 "novel1.avi": "novel one.avi", "noface1.avi": "no face.avi"})
    rep = an.analyze(ws, _config(tmp_path), RUN_ID, folder, name="case")
    # the stand-in extraction stores no thumbnails; real extraction does (the report inlines them)
    store.execute("UPDATE faces SET thumbnail = ? WHERE video_id LIKE 'unknown/case/%'", [_jpeg()])
    return ws, store, rep, folder


def _jpeg() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 150, 120)).save(buf, format="JPEG")
    return buf.getvalue()


def test_every_file_is_hashed_and_keeps_its_original_name(analysed):
    ws, store, rep, folder = analysed
    files = an.analysed_files(store, rep.dataset).set_index("relpath")
    assert len(files) == 5
    for safe in ("swap1.avi", "video.avi", "gan1.avi", "novel1.avi", "noface1.avi"):
        row = files.loc[f"case/{safe}"]
        assert row["sha256"] == hashlib.sha256((folder / safe).read_bytes()).hexdigest()
        assert row["size_bytes"] == (folder / safe).stat().st_size
    assert files.loc["case/swap1.avi", "original_name"] == "подделка-1.avi"
    assert files.loc["case/video.avi", "original_name"] == "動画.avi"
    assert files.loc["case/gan1.avi", "original_name"] == HOSTILE
    # real footage analysed by a run on synthetic data (and a config saying synthetic) is not synthetic
    assert not rep.synthetic
    assert store.scalar("SELECT bool_or(synthetic) FROM videos WHERE dataset = 'unknown/case'") is False
    # removing the set removes its custody rows too
    an.delete_set(ws, rep.dataset)
    assert store.scalar("SELECT count(*) FROM video_files") == 0


def test_names_are_trusted_only_inside_the_uploads_folder(analysed, tmp_path):
    ws, store, rep, folder = analysed
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "a.avi").write_bytes(b"x")
    write_upload_names(outside, {"a.avi": "forged.avi"})
    assert upload_names(outside, ws.uploads_dir) == {}
    assert upload_names(folder, ws.uploads_dir)["gan1.avi"] == HOSTILE
    from data_catalog.records import VideoRecord

    rec = VideoRecord("unknown", "x", outside / "a.avi", "x/a.avi", None, None)
    assert custody_table([rec], outside, ws.uploads_dir).column("original_name").to_pylist() == ["a.avi"]
    (folder / UPLOAD_NAMES).write_text("{ not json")
    assert upload_names(folder, ws.uploads_dir) == {}


def test_save_uploads_keeps_original_names_beside_safe_ones(workspace):
    from dashboard.uploads import save_uploads

    head = b"\0\0\0\x18ftypmp42" + b"\0" * 64
    res = save_uploads(workspace, "case", [("видео.mp4", head), ("ビデオ.mp4", head + b"1"), ("ok name.mp4", head)],
                       max_upload_mb=1)
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+", n) for n in res.saved)
    assert sorted(upload_names(res.folder, workspace.uploads_dir).values()) == sorted(
        ["видео.mp4", "ビデオ.mp4", "ok name.mp4"])


def test_report_bookkeeping(analysed):
    ws, store, rep, _ = analysed
    lines = "\n".join(rep.summary_lines())
    assert "{'" not in lines and "': " not in lines
    assert "4 with faces, 1 no face found" in lines
    assert "real-score: the mean of its frames' real-scores" in lines and "majority" in lines
    shares = rep.class_shares
    assert shares["class"].iloc[-1] == an.OPEN_SET_LABEL
    assert shares["videos"].iloc[-1] == (rep.videos["verdict"] == an.OPEN_SET_LABEL).sum() >= 1
    # display names, no raw id beside them (the fixture taxonomy names swap "Swap", gan "GAN")
    assert rep.display("swap") == "Swap" and rep.display(an.OPEN_SET_LABEL) == an.OPEN_SET_LABEL
    assert "(swap)" not in lines


def test_aggregation_reaches_the_report(analysed):
    ws, store, rep, _ = analysed
    worst = an.build_report(store, RUN_ID, rep.dataset, aggregation="max-fake")
    assert worst.aggregation == "max-fake" and "lowest frame real-score" in "\n".join(worst.summary_lines())
    faces = store.df("SELECT f.video_id, p.real_score FROM predictions p JOIN faces f USING (face_id) "
                     "WHERE p.dataset = 'unknown/case' AND p.classifier = 'knn'")
    lowest = faces.groupby("video_id").real_score.min()
    got = worst.videos.dropna(subset=["real_score"]).set_index("video_id").real_score
    assert np.allclose(got.to_numpy(), lowest.loc[got.index].to_numpy())


def test_case_report_is_self_contained_and_complete(analysed):
    from engine.provenance import code_revision

    ws, store, rep, folder = analysed
    html = an.case_report_html(store, RUN_ID, rep.dataset)
    # self-contained: no URL, nothing fetched
    assert not re.search(r"https?://", html) and "//" not in re.sub(r"data:[^\"']+", "", html).replace("://", "")
    assert "href=" not in html and "<link" not in html.lower() and "@import" not in html and "url(" not in html
    assert "<script" not in html.lower()  # the hostile name is escaped, and the report has no script
    srcs = re.findall(r'src="([^"]*)"', html)
    assert srcs and all(s.startswith("data:image/") for s in srcs)
    # chain of custody: every file's hash and original name (escaped)
    for safe in ("swap1.avi", "video.avi", "gan1.avi", "novel1.avi", "noface1.avi"):
        assert hashlib.sha256((folder / safe).read_bytes()).hexdigest() in html
    assert "подделка-1.avi" in html and "動画.avi" in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;quote&quot;.avi" in html
    # θ and how it was chosen, the code revision, the scoring
    from engine.runs import read_run
    from engine.scores import theta_summary

    theta = theta_summary(store, read_run(store, RUN_ID), "knn")
    assert f"{theta['theta']:.6g}" in html and "far_threshold" in html and "validation" in html
    assert (code_revision() or "unknown") in html
    assert "mean of its frames&#x27; real-scores" in html
    # every video's faces: one inlined image per face of the set, in its video's strip
    n_faces = store.scalar("SELECT count(*) FROM faces f JOIN videos v USING (video_id) WHERE v.dataset = ?",
                           [rep.dataset])
    strips = re.findall(r'<div class="strip">(.*?)</div>', html)
    assert len(strips) == 5 and sum(s.count("<img ") for s in strips) == n_faces
    assert "Limits of the method" in html and "SYNTHETIC" in html  # the fixture run is on synthetic data
    assert html.count('<div class="video">') == 5


def test_cli_writes_the_case_report(stubbed, tmp_path, capsys):  # noqa: F811
    from engine.cli import main

    ws, store, calls = stubbed
    src = tmp_path / "incoming"
    src.mkdir()
    for n in ("swap1.avi", "gan1.avi"):
        (src / n).write_bytes(n.encode())
    out = tmp_path / "case.html"
    assert main(["analyze", "--workspace", str(ws.root), "--run", RUN_ID, "--input", str(src), "--report", str(out),
                 "--aggregation", "top-k", "--top-k", "2"]) == 0
    html = out.read_text(encoding="utf-8")
    assert hashlib.sha256(b"swap1.avi").hexdigest() in html and "mean of its 2 most fake frames" in html
    assert "case report written to" in capsys.readouterr().err
    # a report path whose folder does not exist is refused before any work
    assert main(["analyze", "--workspace", str(ws.root), "--run", RUN_ID, "--input", str(src), "--name", "other",
                 "--report", str(tmp_path / "missing" / "case.html")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert store.scalar("SELECT count(*) FROM videos WHERE dataset = 'unknown/other'") == 0


def test_drilldown_of_an_analysed_and_a_known_video(analysed):
    ws, store, rep, _ = analysed
    v = rep.videos.set_index("relpath")
    vid = v.loc["case/swap1.avi", "video_id"]
    d = an.video_drilldown(store, RUN_ID, vid)
    assert len(d.frames) == 3 and d.frames["thumbnail"].notna().all()
    assert d.frames["frame_index"].tolist() == [0, 1, 2] and d.frames["real_score"].notna().all()
    assert d.verdict == v.loc["case/swap1.avi", "verdict"] and d.pred_class == v.loc["case/swap1.avi", "pred_class"]
    assert d.real_score == pytest.approx(v.loc["case/swap1.avi", "real_score"])
    assert d.original_name == "подделка-1.avi" and len(d.sha256) == 64
    assert d.theta is not None and d.accepted_as_real == (d.real_score >= d.theta)
    # nearest training faces: one per identity (here: per video, the fixture has no identities)
    assert 0 < len(d.nearest) <= 12 and d.nearest["video_id"].is_unique
    assert (np.diff(d.nearest["distance"].to_numpy()) >= 0).all()
    # a known validation video opens the same way; a video without faces says so
    known = store.scalar("SELECT min(video_id) FROM videos WHERE dataset = 'synth/val'")
    k = an.video_drilldown(store, RUN_ID, known, aggregation="median")
    assert k.role == "superset" and len(k.frames) == 3 and k.aggregation == "median"
    none = an.video_drilldown(store, RUN_ID, v.loc["case/noface1.avi", "video_id"])
    assert none.verdict == an.NO_FACE_LABEL and none.frames.empty and none.nearest.empty
    with pytest.raises(an.AnalysisError, match="no video"):
        an.video_drilldown(store, RUN_ID, "unknown/case/nope.avi")
    assert an.find_videos(store, RUN_ID, "SWAP1") == [vid]
    assert an.find_videos(store, RUN_ID, "100%_") == []


def test_hashing_never_blocks_or_fails_on_special_files(tmp_path):
    """A FIFO (which a plain open would wait on for ever), a dangling link and a folder of frames."""
    import os

    from data_catalog.records import VideoRecord
    from engine.analysis.custody import file_sha256

    os.mkfifo(tmp_path / "fifo.mp4")
    os.symlink(tmp_path / "gone.mp4", tmp_path / "dangling.mp4")
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "0001.png").write_bytes(b"a")
    (tmp_path / "ok.mp4").write_bytes(b"ok")
    recs = [VideoRecord("unknown", "x", tmp_path / n, f"x/{n}", None, None)
            for n in ("fifo.mp4", "dangling.mp4", "frames", "ok.mp4")]
    t = custody_table(recs, tmp_path).to_pandas().set_index("video_id")
    assert t.loc["unknown/x/ok.mp4", "sha256"] == hashlib.sha256(b"ok").hexdigest()
    assert pd.isna(t.loc["unknown/x/fifo.mp4", "sha256"]) and "not a regular file" in t.loc["unknown/x/fifo.mp4", "note"]
    assert pd.isna(t.loc["unknown/x/dangling.mp4", "sha256"]) and "No such file" in t.loc["unknown/x/dangling.mp4", "note"]
    digest, size = file_sha256(tmp_path / "frames")
    assert size == 1 and digest == hashlib.sha256(f"0001.png  {hashlib.sha256(b'a').hexdigest()}\n".encode()).hexdigest()
