"""`dfatlas faces` and `dfatlas models` end to end (catalog recorded on the fly)."""

from __future__ import annotations

import pytest

from testkit.media import face_video

pytestmark = pytest.mark.timeout(300)


def _config(tmp_path, root):
    cfg = tmp_path / "exp.toml"
    cfg.write_text(f"""
[experiment]
name = "faces-cli"

[sources]
cross_db = ["astro"]

[sources.astro]
adapter = "generic"
root = "{root.as_posix()}"

[faces]
frames_per_video = 4
crop_size = 64
tiling = "off"
""")
    return cfg


def test_faces_command_records_catalog_and_prints_summary(tmp_path, workspace, blazeface_models, capfd):
    from engine.cli import main

    root = tmp_path / "astro"
    face_video(root / "real" / "a.avi", n_frames=8)
    face_video(root / "fake" / "swap" / "b.avi", n_frames=8)
    face_video(root / "fake" / "swap" / "c.avi", n_frames=8, noface=True)
    (root / "fake" / "swap" / "broken.avi").write_bytes(b"")
    cfg = _config(tmp_path, root)
    assert main(["faces", "--config", str(cfg), "--workers", "2"]) == 0
    out, err = capfd.readouterr()
    assert "4 videos, 0 already done, 4 processed" in out
    # MediaPipe's native logging (from the worker processes' fd 2) stays out of the terminal
    assert "XNNPACK" not in err and "LiteRT" not in err and "Traceback" not in err
    assert "short_range (cache" in out or "short_range (env" in out or "short_range (explicit" in out
    lines = [ln.split() for ln in out.splitlines()]
    header = next(ln for ln in lines if ln[:2] == ["class", "ok"])
    assert header[:6] == ["class", "ok", "no_face", "unreadable", "too_short", "error"]
    real = next(ln for ln in lines if ln and ln[0] == "real")
    unseen = next(ln for ln in lines if ln and ln[0] == "unseen-fake")
    assert real[1:6] == ["1", "0", "0", "0", "0"]
    assert unseen[1:6] == ["1", "1", "1", "0", "0"]  # no-face and broken videos stay counted
    # again: everything is skipped
    assert main(["faces", "--config", str(cfg), "--workers", "2"]) == 0
    assert "4 videos, 4 already done, 0 processed" in capfd.readouterr().out


def test_faces_command_unknown_db_is_one_line_error(tmp_path, workspace, capsys):
    from engine.cli import main

    root = tmp_path / "astro"
    root.mkdir()
    cfg = _config(tmp_path, root)
    assert main(["faces", "--config", str(cfg), "--db", "nope"]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "Traceback" not in err


def test_models_show_and_fetch(blazeface_models, capsys):
    from engine.cli import main

    assert main(["models", "fetch", "--no-download"]) == 0
    out = capsys.readouterr().out
    assert "short_range" in out and "full_range" in out
    assert main(["models", "show"]) == 0
    out = capsys.readouterr().out
    assert "missing" not in out
