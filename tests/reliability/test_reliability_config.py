"""Reliability 6: every number a user gives — in the experiment config or on the command line — is range-checked.

- every numeric option of every config section declares its allowed range once (field metadata,
  `engine.config.Range`); a new option without one fails `test_every_numeric_option_declares_a_range`;
- a value outside the range, NaN or an infinity is refused at load with one line naming the file, the
  `[section] key`, the value and the allowed range (the issue's cases: `frames_per_video = 0` used to mark
  every good video `unreadable`, `lr = nan` ended in a traceback, ...), walked generically over every field;
- the command line's numbers (`evaluate --bootstrap -3` was a traceback) are argparse errors: exit 2,
  one line naming the argument, the value and the range; flags overriding a config option share its range.
"""

from __future__ import annotations

import dataclasses
import math
import typing

import pytest

from data_catalog.errors import ConfigError
from engine.cli import build_parser, main
from engine.config import SECTIONS, Range, load_config, option_range


def numeric_fields():
    """(section name, section class, field, kind) for every numeric option, list options included."""
    out = []
    for name, cls in SECTIONS.items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            hint = hints[f.name]
            if hint in (int, float):
                out.append((name, cls, f, hint))
            elif hint is tuple and any(isinstance(v, (int, float)) and not isinstance(v, bool)
                                       for v in (f.default or ())):
                out.append((name, cls, f, tuple))
    return out


FIELDS = numeric_fields()
FIELD_IDS = [f"{s}.{f.name}" for s, _, f, _ in FIELDS]


def _write(tmp_path, section: str, key: str, value: str):
    path = tmp_path / "exp.toml"
    path.write_text(f"[{section}]\n{key} = {value}\n")
    return path


def _refused(path, section: str, key: str) -> str:
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert str(path) in msg and f"[{section}] {key}:" in msg and "allowed:" in msg, msg
    assert "\n" not in msg
    return msg


def test_every_numeric_option_declares_a_range():
    assert len(FIELDS) >= 37  # the walk found the sections' numbers
    for section, cls, f, kind in FIELDS:
        rng = f.metadata.get("range")
        assert isinstance(rng, Range), f"[{section}] {f.name}: declare its range with _range(lo, hi)"
        if kind is tuple:
            assert rng.items in (int, float), f"[{section}] {f.name}: a list option declares items="
            assert all(rng.allows(v) for v in f.default), f"[{section}] {f.name}: a default is out of range"
        else:
            assert rng.allows(f.default), f"[{section}] {f.name}: default {f.default!r} is out of its range"
            assert option_range(cls, f.name) is rng


def _outside(rng: Range, kind) -> list:
    """Values just outside `rng` (and never a declared special value)."""
    step = 1 if kind is int else 1e-6 * max(1.0, abs(rng.lo or 0), abs(rng.hi or 0))
    out = []
    if rng.lo is not None:
        out.append(rng.lo if rng.lo_open else rng.lo - step)
    if rng.hi is not None:
        out.append(rng.hi if rng.hi_open else rng.hi + step)
    out = [kind(v) if kind is int else v for v in out]
    return [v for v in out if v not in rng.special]


def _toml(v) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v == math.inf else ("-inf" if v == -math.inf else repr(v)))
    return str(v)


@pytest.mark.parametrize("section,cls,f,kind", FIELDS, ids=FIELD_IDS)
def test_each_option_refuses_values_outside_its_range(tmp_path, section, cls, f, kind):
    rng = f.metadata["range"]
    item = rng.items if kind is tuple else kind
    bad = _outside(rng, item) + ([math.nan, math.inf, -math.inf] if item is float else [2.5, "'12'", "true"])
    assert bad
    for v in bad:
        text = _toml(v)
        msg = _refused(_write(tmp_path, section, f.name, f"[{text}]" if kind is tuple else text), section, f.name)
        if item is float and isinstance(v, float) and not math.isfinite(v):
            assert "not a finite number" in msg
    # the range's own ends (when included) are accepted
    for end, open_ in ((rng.lo, rng.lo_open), (rng.hi, rng.hi_open)):
        if end is not None and not open_:
            value = item(end)
            cfg = load_config(_write(tmp_path, section, f.name, f"[{_toml(value)}]" if kind is tuple else _toml(value)))
            got = getattr(getattr(cfg, section), f.name)
            assert (got == (value,)) if kind is tuple else (got == value)


@pytest.mark.parametrize("section,key,value,shown", [
    ("faces", "frames_per_video", "0", "0 is out of range (allowed: 1 to 10000)"),
    ("faces", "crop_size", "0", "0 is out of range"),
    ("faces", "crop_size", "1", "1 is out of range"),
    ("faces", "box_scale", "nan", "nan is not a finite number"),
    ("faces", "box_scale", "0", "0.0 is out of range"),
    ("faces", "min_confidence", "1.5", "1.5 is out of range (allowed: 0 to 1)"),
    ("classifiers", "knn_k", "0", "0 is out of range"),
    ("projection", "perplexity", "nan", "nan is not a finite number (allowed: greater than 0"),
    ("projection", "max_reference_points", "1", "1 is out of range (allowed: 2 to"),
    ("dashboard", "port", "99999", "99999 is out of range (allowed: 1 to 65535)"),
    ("train", "lr", "nan", "nan is not a finite number (allowed: greater than 0 and at most 10)"),
    ("classifiers", "knn_k_grid", "[1, 0, 5]", "0 is out of range"),
    ("model", "input_size", "8", "8 is out of range (allowed: 0 or 16 to 4096)"),
])
def test_the_issues_cases_are_one_line_errors(tmp_path, capsys, section, key, value, shown):
    path = _write(tmp_path, section, key, value)
    assert shown in _refused(path, section, key)
    # through the command line: exit 2, one line, nothing run
    assert main(["catalog", "show", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"[{section}] {key}: {shown}" in err and "Traceback" not in err


def test_projection_method_is_one_of_the_methods(tmp_path, capsys):
    path = _write(tmp_path, "projection", "method", '"umap"')
    assert main(["catalog", "show", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "[projection] method: expected one of tsne, tsne-full, tsne-video, got 'umap'" in err
    assert load_config(_write(tmp_path, "projection", "method", '"tsne-video"')).projection.method == "tsne-video"
    assert load_config(_write(tmp_path, "projection", "seed", "0")).projection.method == "tsne"  # the default


def test_frames_per_video_zero_stops_before_any_video_is_marked(tmp_path, workspace, capsys):
    """The reported harm: `frames_per_video = 0` wrote a final `unreadable` status for every good video."""
    path = _write(tmp_path, "faces", "frames_per_video", "0")
    assert main(["faces", "--config", str(path), "--workspace", str(workspace.root)]) == 2
    assert "[faces] frames_per_video: 0 is out of range" in capsys.readouterr().err
    assert not workspace.store_path.exists()


def test_a_special_value_is_allowed_outside_the_range(tmp_path):
    cfg = load_config(_write(tmp_path, "model", "input_size", "0"))
    assert cfg.model.input_size == 0  # 0 = the crop size
    assert load_config(_write(tmp_path, "faces", "workers", "0")).faces.workers == 0  # 0 = one per core


def test_range_wording():
    assert Range(1, 10).describe() == "1 to 10"
    assert Range(0.0, 10.0, lo_open=True).describe() == "greater than 0 and at most 10"
    assert Range(0.0, 1.0, hi_open=True).describe() == "at least 0 and below 1"
    assert Range(16, 4096, special=(0,)).describe() == "0 or 16 to 4096"
    assert Range(1).describe() == "at least 1"
    assert Range(1, 10).problem(5) is None and Range(1, 10).problem(math.nan).startswith("nan is not a finite")


@pytest.mark.parametrize("argv,shown", [
    (["evaluate", "--bootstrap", "-3"], "argument --bootstrap: -3 is out of range (allowed: 0 to"),
    (["evaluate", "--bootstrap", "many"], "argument --bootstrap: 'many' is not an integer"),
    (["evaluate", "--target-fpr", "nan"], "argument --target-fpr: nan is not a finite number (allowed: 0 to 1)"),
    (["evaluate", "--target-fpr", "1.5"], "argument --target-fpr: 1.5 is out of range"),
    (["serve", "--port", "99999"], "argument --port: 99999 is out of range (allowed: 1 to 65535)"),
    (["serve", "--max-upload-mb", "0"], "argument --max-upload-mb: 0 is out of range"),
    (["demo", "--port", "0"], "argument --port: 0 is out of range"),
    (["demo", "--workers", "-1"], "argument --workers: -1 is out of range (allowed: 0 to 1024)"),
    (["demo-data", "--out", "x", "--workers", "0"], "argument --workers: 0 is out of range (allowed: 1 to 1024)"),
    (["faces", "--config", "x.toml", "--workers", "-2"], "argument --workers: -2 is out of range"),
    (["faces", "--config", "x.toml", "--limit", "0"], "argument --limit: 0 is out of range (allowed: at least 1)"),
    (["train", "--config", "x.toml", "--all", "--epochs", "0"], "argument --epochs: 0 is out of range (allowed: 1 to"),
    (["train", "--config", "x.toml", "--all", "--ddp", "-2"], "argument --ddp: -2 is out of range"),
    (["embed", "--config", "x.toml", "--batch-size", "0"], "argument --batch-size: 0 is out of range"),
    (["analyze", "--run", "r", "--input", "x", "--workers", "-1"], "argument --workers: -1 is out of range"),
    (["analyze", "--run", "r", "--input", "x", "--name", "///"], "argument --name: set name '///'"),
])
def test_command_line_numbers_are_one_line_usage_errors(capsys, argv, shown):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert shown in err and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith(f"dfatlas {argv[0]}: error: argument")


def test_demo_data_seed_uses_the_configs_seed_range(tmp_path, capsys):
    assert main(["demo-data", "--out", str(tmp_path / "x"), "--seed", str(2**32)]) == 2
    assert "--seed: 4294967296 is out of range (allowed: 0 to 4294967295)" in capsys.readouterr().err


def test_flags_overriding_an_option_share_its_range():
    from engine.config import DashboardSection, FacesSection, TrainSection

    parser = build_parser()
    ok = parser.parse_args(["train", "--config", "x.toml", "--all", "--epochs", "100000"])
    assert ok.epochs == 100000 == option_range(TrainSection, "epochs").hi
    assert parser.parse_args(["serve", "--port", "65535"]).port == option_range(DashboardSection, "port").hi
    assert parser.parse_args(["faces", "--config", "x", "--workers", "0"]).workers == 0
    assert option_range(FacesSection, "workers").allows(0)
