"""Reliability: odd file names, taxonomy mistakes and manifest mistakes in the catalog.

- A file name is bytes: one that is not valid UTF-8 (an archive unpacked from Windows or an old
  zip) is catalogued under a reversible escaped id (`data_catalog.names`), never blocks its
  folder, and faces extraction opens it from the stored path — through the `faces` stage and
  through an unknown set's input (what `analyze` records).
- A newline or other control character in a name never breaks `catalog show`/`scan` output.
- Taxonomy mistakes (a class with no sources, two classes claiming one source, a source naming an
  unknown database) and manifest mistakes (a repeated row with the opposite label, a short row,
  every listed file missing) are reported as problems, not passed silently.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from data_catalog.names import path_to_text, printable, text_to_bytes, text_to_path
from tests.helpers.catalog_trees import make_celebdf, touch
from tests.reliability.reliability_util import cli

pytestmark = pytest.mark.timeout(600)

LATIN1 = b"latin1_\xe9t\xe9.mp4"        # 'latin1_été.mp4' written by a Latin-1 system: not UTF-8
BACKSLASH = b"back\\slash.mp4"           # a Windows zip unpacked on Linux keeps the backslash


def _bytes_name(folder: Path, name: bytes, frames: int = 4) -> Path:
    """A tiny face video whose file name is exactly `name` (written under a plain name first:
    OpenCV cannot be handed an undecodable name)."""
    from testkit.media import face_video

    plain = face_video(folder / "plain.mp4", n_frames=frames)
    target = Path(os.fsdecode(os.path.join(os.fsencode(folder), name)))
    os.rename(plain, target)
    return target


def _config(tmp_path: Path, root: Path, extra: str = "", options: str = "") -> Path:
    cfg = tmp_path / "exp.toml"
    cfg.write_text(f'[sources]\nsuperset = ["mine"]\n[sources.mine]\nadapter = "generic"\nroot = "{root}"\n{options}'
                   f'[faces]\nframes_per_video = 2\ncrop_size = 32\nthumbnail_size = 16\n{extra}')
    return cfg


# --- the identifier rule --------------------------------------------------------------------------

def test_stored_text_is_reversible_utf8_and_leaves_plain_names_alone():
    assert path_to_text("real/a.mp4") == "real/a.mp4" and path_to_text("café/ü.mp4") == "café/ü.mp4"
    assert path_to_text(os.fsdecode(LATIN1)) == "latin1_\\xe9t\\xe9.mp4" == path_to_text(LATIN1)
    assert path_to_text(os.fsdecode(BACKSLASH)) == "back\\\\slash.mp4"
    rng = random.Random(0)
    alphabet = b"\\x9e0a/\xe9\xc3\xa9\n\xff"
    for _ in range(5000):
        name = bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 10)))
        text = path_to_text(os.fsdecode(name))
        text.encode("utf-8")  # valid UTF-8: DuckDB and Arrow take it
        assert text_to_bytes(text) == name and os.fsencode(text_to_path(text)) == name
    assert printable("a\nb\tc\x1b\u202ed") == "a\\nb\\tc\\x1b\\u202ed" and printable("plain é") == "plain é"


# --- 1. a name that is not UTF-8 -------------------------------------------------------------------

def test_non_utf8_name_is_catalogued_and_its_faces_extracted(tmp_path, blazeface_models):
    from testkit.media import face_video

    root = tmp_path / "set"
    face_video(root / "real" / "a.mp4", n_frames=4)
    odd = _bytes_name(root / "real", LATIN1)
    _bytes_name(root / "real", BACKSLASH)
    face_video(root / "fake" / "c.mp4", n_frames=4)
    cfg, ws = _config(tmp_path, root), tmp_path / "ws"

    show = cli(["catalog", "show", "--config", str(cfg)], ws)
    assert show.returncode == 0, show.stderr
    assert "Traceback" not in show.stderr and "recorded 4 videos" in show.stdout

    from engine.store import Store
    store = Store(ws / "atlas.duckdb")
    rows = {r["video_id"]: r for r in store.df("SELECT video_id, relpath, path FROM videos").to_dict("records")}
    odd_id = "mine/real/latin1_\\xe9t\\xe9.mp4"
    assert set(rows) == {"mine/real/a.mp4", odd_id, "mine/real/back\\\\slash.mp4", "mine/fake/c.mp4"}
    assert os.fsencode(text_to_path(rows[odd_id]["path"])) == os.fsencode(odd)  # the exact bytes on disk

    faces = cli(["faces", "--config", str(cfg), "--workers", "1"], ws)
    assert faces.returncode == 0, faces.stderr
    status = store.df("SELECT video_id, status, n_faces FROM face_videos")
    assert dict(zip(status.video_id, status.status)) == {v: "ok" for v in rows}
    assert (status.n_faces > 0).all()


def test_non_utf8_name_in_an_unknown_set_is_recorded_and_extracted(tmp_path, workspace, blazeface_models):
    """What `analyze` does with its input before the model: collect, build the store rows, extract."""
    from data_catalog.taxonomy import paper_taxonomy
    from engine.analysis import collect_videos
    from engine.config import FacesSection
    from engine.faces import extract_faces
    from engine.store.catalog import videos_table
    from engine.store.faces import face_video_rows
    from testkit.media import face_video

    folder = tmp_path / "unknown"
    face_video(folder / "ok.mp4", n_frames=4)
    _bytes_name(folder, LATIN1)
    inp = collect_videos(folder, "odd", None, paper_taxonomy())
    table = videos_table(inp.records)
    assert sorted(table.column("video_id").to_pylist()) == ["unknown/odd/latin1_\\xe9t\\xe9.mp4", "unknown/odd/ok.mp4"]
    extract_faces(workspace, inp.records, FacesSection(frames_per_video=2, crop_size=32, thumbnail_size=16),
                  workers=1, progress=False, models=blazeface_models)
    done = face_video_rows(workspace.store())
    assert dict(zip(done.video_id, done.status)) == {"unknown/odd/latin1_\\xe9t\\xe9.mp4": "ok", "unknown/odd/ok.mp4": "ok"}


# --- 10. a newline (or another control character) in a name ------------------------------------------

def test_newline_in_a_name_keeps_catalog_output_one_line_per_item(tmp_path):
    root = make_celebdf(tmp_path / "cel\nebdf")
    touch(root / "Celeb-synthesis" / "bad\nname\x1b[31m.mp4")   # an unmatched file, reported by path
    scan = cli(["catalog", "scan", "--db", "celebdf", "--root", str(root)], None)
    assert scan.returncode == 0, scan.stderr
    lines = scan.stdout.splitlines()
    assert lines[0].startswith("celebdf  (adapter celebdf, root ") and "cel\\nebdf" in lines[0]
    unmatched = [ln for ln in lines if "unmatched_file" in ln]
    assert len(unmatched) == 2 and any("bad\\nname\\x1b[31m.mp4" in ln for ln in unmatched)
    assert "\x1b" not in scan.stdout
    problems = lines.index(next(ln for ln in lines if ln.startswith("problems (")))
    assert all(ln.startswith("  ") for ln in lines[problems + 1:])  # every problem on its own indented line

    cfg = tmp_path / "exp.toml"
    cfg.write_text(f'[sources]\ncross_db = ["celebdf"]\n[sources.celebdf]\nroot = {json.dumps(str(root))}\n')
    show = cli(["catalog", "show", "--config", str(cfg), "--no-record"], None)
    assert show.returncode == 0, show.stderr
    assert "bad\\nname\\x1b[31m.mp4" in show.stdout and "\x1b" not in show.stdout
    data = json.loads(cli(["catalog", "show", "--config", str(cfg), "--no-record", "--json"], None).stdout)
    paths = [p["path"] for p in data["databases"][0]["problems"]]
    assert any(p.endswith("bad\nname\x1b[31m.mp4") for p in paths)  # JSON keeps the exact (valid) text


# --- 7. taxonomy mistakes ----------------------------------------------------------------------------

TAXONOMY = """
[[taxonomy.class]]
id = "real"
color = "#0072B2"
sources = ["*:real"]
[[taxonomy.class]]
id = "deepfakes"
color = "#CC6677"
sources = ["mine:Deepfakes"]
[[taxonomy.class]]
id = "deepfakes-again"
color = "#DDCC77"
sources = ["*:Deepfakes"]
[[taxonomy.class]]
id = "swap"
color = "#117733"
sources = ["ffpp:FaceSwap"]
[[taxonomy.class]]
id = "nothing"
color = "#88CCEE"
"""


def test_taxonomy_mistakes_are_problems(tmp_path):
    root = tmp_path / "set"
    for rel in ("real/a.mp4", "fake/Deepfakes/b.mp4", "fake/FaceSwap/c.mp4"):
        touch(root / rel)
    cfg = _config(tmp_path, root, TAXONOMY)
    out = cli(["catalog", "show", "--config", str(cfg), "--no-record", "--json"], None)
    assert out.returncode == 0, out.stderr
    problems = json.loads(out.stdout)["config_problems"]
    by_kind = {p["kind"]: p["message"] for p in problems}
    assert sorted(by_kind) == ["class_without_sources", "source_claimed_twice", "unknown_database"]
    assert "'nothing'" in by_kind["class_without_sources"]
    assert "'mine:Deepfakes' of class 'deepfakes' and '*:Deepfakes' of class 'deepfakes-again'" in \
        by_kind["source_claimed_twice"]
    assert "'ffpp'" in by_kind["unknown_database"] and "unseen-fake" in by_kind["unknown_database"]
    text = cli(["catalog", "show", "--config", str(cfg), "--no-record"], None).stdout
    assert "problems (3):" in text and "  unknown_database  " in text

    # a class without sources is fine when a manifest labels videos with it
    (root / "labels.csv").write_text("path,label,class\nreal/a.mp4,real,\nfake/FaceSwap/c.mp4,fake,nothing\n")
    cfg = _config(tmp_path, root, TAXONOMY, options=f'manifest = "{root / "labels.csv"}"\n')
    kinds = [p["kind"] for p in json.loads(cli(["catalog", "show", "--config", str(cfg), "--no-record", "--json"],
                                               None).stdout)["config_problems"]]
    assert "class_without_sources" not in kinds


def test_paper_taxonomy_has_no_problems(tmp_path):
    from engine.catalog import taxonomy_problems
    from engine.config import load_config

    root = tmp_path / "set"
    touch(root / "a.mp4")
    assert taxonomy_problems(load_config(_config(tmp_path, root)), []) == []


# --- 7. manifest mistakes ----------------------------------------------------------------------------

def test_manifest_conflicts_and_short_rows_are_reported(tmp_path):
    root = tmp_path / "set"
    for rel in ("a.mp4", "b.mp4", "c.mp4"):
        touch(root / rel)
    manifest = root / "labels.csv"
    manifest.write_text("path,label\na.mp4,real\nb.mp4\n\na.mp4,fake\nc.mp4,fake\nc.mp4,fake\n")
    out = cli(["catalog", "scan", "--db", "generic", "--root", str(root), "--option", f"manifest={manifest}",
               "--json"], None)
    assert out.returncode == 0, out.stderr
    problems = {p["kind"]: p for p in json.loads(out.stdout)["problems"]}
    assert problems["label_conflict"]["path"] == "a.mp4"
    assert "line 5: listed again as 'fake (unseen-fake)', line 2 says 'real'" in problems["label_conflict"]["message"]
    assert problems["short_row"]["path"] == "b.mp4" and "recorded unlabelled" in problems["short_row"]["message"]
    assert "line 7: listed twice (first on line 6)" in problems["duplicate"]["message"]
    assert json.loads(out.stdout)["counts"] == {"test": {"real": 1, "unlabelled": 1, "unseen-fake": 1}}


def test_manifest_whose_every_file_is_missing_says_so(tmp_path):
    root = tmp_path / "set"
    root.mkdir()
    manifest = root / "labels.csv"
    manifest.write_text("path,label\ngone1.mp4,real\ngone2.mp4,fake\n")
    out = cli(["catalog", "scan", "--db", "generic", "--root", str(root), "--option", f"manifest={manifest}"], None)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert f"{manifest}: 2 listed files are missing" in out.stderr and "'gone1.mp4'" in out.stderr


def test_newline_in_a_name_keeps_command_tables_one_line_per_row():
    """Every command table (the analyse report's per-video rows among them) goes through print_table."""
    import io

    from engine.commands.common import print_table

    out = io.StringIO()
    print_table([{"video": "clip\nverdict  real\x1b[31m.mp4", "frames": 3}, {"video": "ok.mp4", "frames": 4}],
                file=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 4 and "clip\\nverdict  real\\x1b[31m.mp4" in lines[2] and "\x1b" not in out.getvalue()


def test_names_in_map_hover_labels_are_text_not_markup():
    """plotly renders <a href>, <b> and <br> in hover labels and legend names: names arrive escaped."""
    import pandas as pd

    from dashboard.figures import ClassStyle, map_figure

    odd = 'unknown/<a href="https://evil.example">x</a>/a\nb.mp4'
    pts = pd.DataFrame({"x": [0.0, 1.0], "y": [0.0, 1.0], "video_id": [odd, "plain.mp4"],
                        "real_score": [0.2, 0.9], "true_class": ["real", "real"], "pred": ["real", "real"],
                        "database": ["unknown/<b>set</b>", "unknown/<b>set</b>"], "correct": [True, True]})
    style = ClassStyle.for_run(["real"], None)
    fig, _ = map_figure(pts, style, colour_mode="database")
    texts = [t for tr in fig.data if tr.text is not None for t in tr.text]
    assert 'unknown/&lt;a href="https://evil.example"&gt;x&lt;/a&gt;/a\\nb.mp4' in texts and "plain.mp4" in texts
    labels = " ".join(str(tr.hovertemplate) + str(tr.name) for tr in fig.data)
    assert "<a " not in labels and "<b>set" not in labels and "&lt;b&gt;set" in labels
