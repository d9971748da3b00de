"""`dfatlas catalog scan|show|adapters`: output shape, exit codes, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.catalog_trees import make_celebdf, make_dfd, make_dfr, make_ff, touch
from engine.cli import main

ROOT = Path(__file__).resolve().parents[2]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_scan_json_is_one_object_with_exact_counts(tmp_path, capsys):
    ff = make_ff(tmp_path / "ff", missing={"manipulated_sequences/FaceSwap/c23/videos/000_001.mp4"})
    code, out, err = run(capsys, "catalog", "scan", "--db", "faceforensics", "--root", str(ff), "--json")
    assert code == 0
    data = json.loads(out)  # exactly one JSON document on stdout
    assert set(data) == {"database", "counts", "problems"} and data["database"] == "faceforensics"
    assert data["counts"]["train"]["ff-faceswap"] == 5 and data["counts"]["val"]["real"] == 2
    assert data["problems"] == [{"kind": "missing_video",
                                 "path": str(ff / "manipulated_sequences/FaceSwap/c23/videos/000_001.mp4"),
                                 "message": "FaceSwap fake 000_001 of train pair [000, 001] is not on disk"}]


def test_scan_text_lists_counts_and_every_problem(tmp_path, capsys):
    root = make_celebdf(tmp_path / "celeb")
    code, out, _ = run(capsys, "catalog", "scan", "--db", "celebdf", "--root", str(root))
    assert code == 0
    assert "test   celebdf  2" in out and "test   real     4" in out
    assert "problems (3):" in out
    for kind in ("missing_video", "label_mismatch", "unmatched_file"):
        assert f"  {kind}  " in out


def test_scan_options_and_symlinked_root(tmp_path, capsys):
    ff = make_ff(tmp_path / "ff", methods=())
    dfr = make_dfr(tmp_path / "dfr")
    link = tmp_path / "dfr-link"
    link.symlink_to(dfr, target_is_directory=True)
    code, out, _ = run(capsys, "catalog", "scan", "--db", "deeperforensics", "--root", str(link),
                       "--option", f"ff_root={ff}", "--option", "variants=end_to_end", "--json")
    assert code == 0
    # default protocol: each fake in the FF++ split of its target (000, 002, 004 train; 008 test)
    assert json.loads(out)["counts"] == {"test": {"dfr-end-to-end": 1, "real": 1}, "train": {"dfr-end-to-end": 3, "real": 3}}
    code, _, err = run(capsys, "catalog", "scan", "--db", "celebdf", "--root", str(dfr), "--option", "val_fraction=lots")
    assert code == 2 and "--option val_fraction: expected a number" in err
    code, _, err = run(capsys, "catalog", "scan", "--db", "celebdf", "--root", str(dfr), "--option", "nope=1")
    assert code == 2 and "unknown option" in err


@pytest.mark.parametrize("case", ["root_missing", "split_not_json", "csv_unknown_label", "csv_escapes", "empty_folder",
                                  "hififace_no_splits", "root_is_file"])
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, case):
    args = ["catalog", "scan"]
    if case == "root_missing":
        args += ["--db", "faceforensics", "--root", str(tmp_path / "nope")]
        expect = [str(tmp_path / "nope"), "does not exist"]
    elif case == "split_not_json":
        ff = make_ff(tmp_path / "ff", methods=())
        (ff / "splits" / "val.json").write_text("[[\"006\", \"007\"")
        args += ["--db", "faceforensics", "--root", str(ff)]
        expect = [str(ff / "splits" / "val.json"), "not valid JSON"]
    elif case in ("csv_unknown_label", "csv_escapes"):
        root = tmp_path / "set"
        touch(root / "a.mp4")
        csv = root / "labels.csv"
        csv.write_text("path,label\na.mp4,maybe\n" if case == "csv_unknown_label" else "path,label\n../../etc/x.mp4,real\n")
        args += ["--db", "generic", "--root", str(root), "--option", f"manifest={csv}"]
        expect = [str(csv), "unknown label 'maybe'" if case == "csv_unknown_label" else "escapes the database root"]
    elif case == "empty_folder":
        (tmp_path / "empty").mkdir()
        args += ["--db", "celebdf", "--root", str(tmp_path / "empty")]
        expect = [str(tmp_path / "empty"), "no videos found"]
    elif case == "root_is_file":
        touch(tmp_path / "file.mp4")
        args += ["--db", "google_dfd", "--root", str(tmp_path / "file.mp4")]
        expect = [str(tmp_path / "file.mp4"), "not a folder"]
    else:
        touch(tmp_path / "hifi" / "000_001.mp4")
        args += ["--db", "hififace", "--root", str(tmp_path / "hifi")]
        expect = ["ff_root", "splits_dir"]
    code, out, err = run(capsys, *args)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    for word in expect:
        assert word in err


def _config(tmp_path: Path) -> Path:
    ff = make_ff(tmp_path / "ff", methods=("Deepfakes",))
    make_dfd(ff)
    dfr = make_dfr(tmp_path / "dfr")
    f = tmp_path / "exp.toml"
    f.write_text(f'[sources]\nsuperset = ["faceforensics", "deeperforensics"]\ncross_db = ["dfd"]\n'
                 f'[sources.faceforensics]\nroot = "{ff}"\nmethods = "Deepfakes"\n'
                 f'[sources.deeperforensics]\nroot = "{dfr}"\nff_root = "{ff}"\nsplit_protocol = "deeperforensics"\n'
                 f'[sources.dfd]\nadapter = "google_dfd"\nroot = "{ff}"\n'
                 f'[sources.spare]\nadapter = "generic"\nroot = "{tmp_path / "nowhere"}"\n')
    return f


def test_show_json_records_in_store(tmp_path, capsys, workspace):
    cfg = _config(tmp_path)
    code, out, _ = run(capsys, "catalog", "show", "--config", str(cfg), "--workspace", str(workspace.root), "--json")
    assert code == 0
    data = json.loads(out)
    assert [d["database"] for d in data["databases"]] == ["faceforensics", "deeperforensics", "dfd"]
    assert len(data["split_conflicts"]) == 2 and len(data["duplicates"]) == 2
    assert data["not_scanned"] == ["spare"]
    assert data["recorded"] == data["videos"] == workspace.store().scalar("SELECT count(*) FROM videos")
    conflict = next(c for c in data["split_conflicts"] if c["path"].endswith("/002.mp4"))
    assert conflict["split"] == "test" and {c["split"] for c in conflict["claims"]} == {"train", "test"}


def test_show_text_lists_duplicates_and_conflicts(tmp_path, capsys, workspace):
    cfg = _config(tmp_path)
    code, out, _ = run(capsys, "catalog", "show", "--config", str(cfg), "--no-record")
    assert code == 0
    assert "split conflicts (resolved towards test): 2" in out
    assert "duplicates (same video, same split): 2" in out
    assert "kept deeperforensics/@ff_root/original_sequences/youtube/c23/videos/002.mp4 in test" in out
    assert not workspace.store_path.exists()


def test_show_waits_for_or_refuses_a_busy_workspace(tmp_path, capsys, workspace):
    cfg = _config(tmp_path)
    with workspace.lock("another job"):
        holder = subprocess.run([sys.executable, "-m", "engine.cli", "catalog", "show", "--config", str(cfg),
                                 "--workspace", str(workspace.root)], capture_output=True, text=True, cwd=ROOT)
    assert holder.returncode == 2 and "in use by another dfatlas job" in holder.stderr
    assert "Traceback" not in holder.stderr


def test_adapters_lists_every_adapter(capsys):
    code, out, _ = run(capsys, "catalog", "adapters")
    assert code == 0
    for name in ("faceforensics", "google_dfd", "celebdf", "deeperforensics", "hififace", "deepfaketimit", "generic"):
        assert name in out
