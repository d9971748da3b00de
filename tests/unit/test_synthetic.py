"""The SYNTHETIC benchmark: generation, layout, catalog counts, determinism, CLI errors.

The smallest size is generated once per session (a few seconds); the CLI
run in the determinism test writes it a second time with two processes.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from data_catalog.databases import ADAPTERS
from data_catalog.records import REAL, UNSEEN_FAKE
from data_catalog.synthetic import (DATABASES, KNOWN_METHODS, NOVEL_METHODS, SIZES, VARIANT_METHODS, config_text, generate,
                                    plan, render_job)
from data_catalog.synthetic import manipulations as mm
from engine.cli import main
from engine.config import load_config

ROOT = Path(__file__).resolve().parents[2]
SMALL = SIZES["small"]


@pytest.fixture(scope="session")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "demo-data"
    summary = generate(out, seed=0, size="small", workers=1)
    return out, summary


def _manifest(out: Path, db: str) -> list[dict]:
    with open(out / db / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def _digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_catalog_reads_every_database_with_expected_counts(small):
    out, summary = small
    cfg = load_config(out / "demo.toml")
    assert cfg.synthetic
    assert set(cfg.sources.databases) == {db.name for db in DATABASES}
    assert cfg.sources.superset == tuple(db.name for db in DATABASES if db.kind == "train")
    assert cfg.sources.cross_db == tuple(db.name for db in DATABASES if db.kind == "cross")
    n_ids = sum(SMALL.train_ids)
    for db in DATABASES:
        src = cfg.source(db.name)
        res = ADAPTERS[src.adapter].scan(src.root, name=db.name, options=src.options, taxonomy=cfg.taxonomy)
        assert res.problems == []
        recs = res.records
        assert len(recs) == summary.databases[db.name]["videos"]
        classes = Counter(r.true_class for r in recs)
        splits = Counter(r.split for r in recs)
        if db.kind == "train":
            per_id = SMALL.reals_per_id + SMALL.fakes_per_method * len(db.methods)
            assert len(recs) == n_ids * per_id
            assert classes == {REAL: n_ids * SMALL.reals_per_id,
                               **{m: n_ids * SMALL.fakes_per_method for m in db.methods}}
            assert splits == {s: n * per_id for s, n in zip(("train", "val", "test"), SMALL.train_ids)}
            assert all(r.method == (r.true_class) for r in recs)
        else:
            assert set(classes) == {REAL, UNSEEN_FAKE}
            assert splits == {"test": len(recs)}
            fakes = [r for r in recs if r.is_fake]
            assert fakes and all(r.method in db.methods for r in fakes)
            assert classes[REAL] == SMALL.cross_ids * db.reals_per_id
            assert classes[UNSEEN_FAKE] == SMALL.cross_ids * db.fakes_per_id
        assert all(r.identity for r in recs)
        assert all(r.is_fake == (r.true_class != REAL) for r in recs)
    variants = {r["method"] for r in _manifest(out, "synth-variants") if r["label"] == "fake"}
    assert variants == set(VARIANT_METHODS)
    shift = {r["method"] for r in _manifest(out, "synth-shift") if r["label"] == "fake"}
    assert shift <= set(KNOWN_METHODS) and len(shift) >= 4
    novel = {r["method"] for r in _manifest(out, "synth-novel") if r["label"] == "fake"}
    assert novel == set(NOVEL_METHODS)


def test_taxonomy_is_real_first_with_six_fake_classes(small):
    out, _ = small
    tax = load_config(out / "demo.toml").taxonomy
    assert tax.ids[0] == REAL and tax.color(REAL) == "#0072B2"
    assert tax.ids[1:] == list(KNOWN_METHODS)
    assert len({tax.color(c) for c in tax.ids}) == len(tax.ids)
    trained = {m for db in DATABASES if db.kind == "train" for m in db.methods}
    assert trained == set(KNOWN_METHODS)


def test_splits_are_identity_disjoint_and_swaps_stay_in_their_split(small):
    out, _ = small
    seen_ids: set[str] = set()
    for db in DATABASES:
        rows = _manifest(out, db.name)
        split_of: dict[str, str] = {}
        for r in rows:
            assert split_of.setdefault(r["identity"], r["split"]) == r["split"], r
        ids = set(split_of)
        assert not ids & seen_ids  # no identity in two databases
        seen_ids |= ids
        for r in rows:
            parts = Path(r["path"]).stem.split("_")
            if r["label"] == "fake" and len(parts) == 3:  # <target>_<source>_<n>: a swap
                target, source = parts[0], parts[1]
                assert target == r["identity"] and source != target
                assert split_of[source] == r["split"]


def test_videos_are_mjpg_with_the_planned_frames_and_boxes(small):
    out, _ = small
    for db in DATABASES:
        rows = _manifest(out, db.name)
        job = next(j for j in plan(0, "small") if j.database == db.name)
        cap = cv2.VideoCapture(str(out / db.name / rows[0]["path"]))
        frames = []
        while True:
            ok, f = cap.read()
            if not ok:
                break
            frames.append(f)
        cap.release()
        assert len(frames) == SMALL.n_frames
        assert frames[0].shape == (job.frame_size, job.frame_size, 3)
        assert (out / db.name / rows[0]["path"]).read_bytes()[:4] == b"RIFF"
        with open(out / db.name / "face_boxes.csv", newline="") as f:
            boxes = list(csv.DictReader(f))
        assert len(boxes) == len(rows) * SMALL.n_frames
        for b in boxes:
            x0, y0, x1, y1 = (float(b[k]) for k in ("x0", "y0", "x1", "y1"))
            assert 0 <= x0 < x1 <= job.frame_size and 0 <= y0 < y1 <= job.frame_size
    assert SIZES["default"].n_frames >= 16 and SIZES["default"].frame_size >= 160
    assert min(j.frame_size for j in plan(0, "default") if j.database != "synth-shift") >= 160
    assert 300 <= len(plan(0, "default")) <= 1500  # generation stays well under 90 s on 2 cores


def test_shift_set_is_smaller_and_more_compressed():
    jobs = plan(0, "default")
    shift = [j for j in jobs if j.database == "synth-shift"]
    others = [j for j in jobs if j.database != "synth-shift"]
    assert max(j.frame_size for j in shift) < min(j.frame_size for j in others)
    assert max(j.quality for j in shift) < min(j.quality for j in others)


def test_demo_data_cli_is_deterministic_across_processes(small, tmp_path, capsys):
    out, _ = small
    again = tmp_path / "again"
    assert main(["demo-data", "--out", str(again), "--size", "small", "--workers", "2"]) == 0
    printed = capsys.readouterr()
    assert "SYNTHETIC" in printed.out
    assert _digests(again) == _digests(out)


def test_other_seed_gives_other_videos():
    a = plan(0, "small")
    b = plan(1, "small")
    assert [j.relpath for j in a] != [j.relpath for j in b] or [j.quality for j in a] != [j.quality for j in b]
    from data_catalog.synthetic import render_job

    fa, _ = render_job(a[0])
    fb, _ = render_job(b[0])
    assert (fa[0] != fb[0]).any()


def test_configs_demo_toml_matches_the_packaged_template():
    text = (ROOT / "configs" / "demo.toml").read_text(encoding="utf-8")
    assert text == config_text("../dfatlas-workspace/demo-data"), \
        "configs/demo.toml drifted from data_catalog/synthetic/demo.toml: edit the template and regenerate " \
        "with config_text('../dfatlas-workspace/demo-data')"
    cfg = load_config(ROOT / "configs" / "demo.toml")
    assert cfg.synthetic
    assert cfg.source("synth-alpha").root.resolve() == (ROOT / "dfatlas-workspace" / "demo-data" / "synth-alpha").resolve()


def test_demo_data_refuses_a_non_empty_folder(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    assert main(["demo-data", "--out", str(tmp_path), "--size", "small"]) == 2
    err = capsys.readouterr().err
    assert "not empty" in err and "--force" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_demo_data_unwritable_or_bad_targets(tmp_path, capsys):
    afile = tmp_path / "a-file"
    afile.write_text("x")
    assert main(["demo-data", "--out", str(afile)]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main(["demo-data", "--out", str(afile / "sub")]) == 2
    assert "cannot write" in capsys.readouterr().err
    assert main(["demo-data", "--out", str(tmp_path / "x"), "--seed", "-1"]) == 2
    assert "seed" in capsys.readouterr().err
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            assert main(["demo-data", "--out", str(ro / "out")]) == 2
            assert "cannot write" in capsys.readouterr().err
        finally:
            ro.chmod(0o700)
    with pytest.raises(SystemExit):
        main(["demo-data", "--out", str(tmp_path / "y"), "--size", "huge"])


def test_force_replaces_benchmark_folders_and_keeps_other_files(tmp_path):
    from data_catalog.synthetic.benchmark import check_out_dir

    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "synth-alpha").mkdir()
    (tmp_path / "synth-alpha" / "stale.avi").write_bytes(b"old")
    check_out_dir(tmp_path, force=True)  # no error with --force
    import data_catalog.synthetic.benchmark as bm

    small_plan = bm.plan

    def tiny(seed, size):
        return [j for j in small_plan(seed, size) if j.database == "synth-gamma"][:2]

    bm_plan, bm.plan = bm.plan, tiny
    try:
        generate(tmp_path, size="small", workers=1)
    finally:
        bm.plan = bm_plan
    assert not (tmp_path / "synth-alpha" / "stale.avi").exists()
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert len(_manifest(tmp_path, "synth-gamma")) == 2


# --- the never-seen manipulation (open-set benchmark) ------------------------------------------

def _blockiness(img: np.ndarray, region: np.ndarray, period: int = 8) -> float:
    """Mean step across the columns (rows) of one phase of a `period`-px grid over the mean step elsewhere,
    inside `region`, the strongest phase and direction: ~1 without a block grid, well above 1 with JPEG blocks."""
    g = img.astype(np.float32).mean(2)
    best = 0.0
    for axis in (0, 1):
        step = np.abs(np.diff(g, axis=axis))
        inside = (region[:, 1:] & region[:, :-1]) if axis == 1 else (region[1:] & region[:-1])
        phase = np.arange(step.shape[axis]) % period
        phase = phase[None, :] if axis == 1 else phase[:, None]
        for o in range(period):
            best = max(best, step[inside & (phase == o)].mean() / step[inside & (phase != o)].mean())
    return best


def _manipulate(method: str, frame, source, mask, box, rng):
    """Every method's function on one frame (the reenactment's mouth and eyes placed from the face box)."""
    p = mm.draw_params(method, rng)
    x0, y0, x1, y1 = box
    cx, w, h = (x0 + x1) / 2, x1 - x0, y1 - y0
    calls = {
        "poisson-swap": lambda: mm.poisson_swap(frame, source, mask, p, rng),
        "poisson-swap-wide": lambda: mm.poisson_swap(frame, source, mask, p, rng, wide=True),
        "lowres-resynth": lambda: mm.lowres_resynth(frame, source, mask, p, rng),
        "pyramid-swap": lambda: mm.pyramid_swap(frame, source, mask, p, rng),
        "flicker-blend": lambda: mm.flicker_blend(frame, source, mask, p, rng),
        "reenact-warp": lambda: mm.reenact_warp(frame, mask, p, rng, 1, 8, (cx, y0 + 0.8 * h),
                                                [(cx - 0.2 * w, y0 + 0.4 * h), (cx + 0.2 * w, y0 + 0.4 * h)], w / 2),
        "upsample-texture": lambda: mm.upsample_texture(frame, mask, p, rng),
        "upsample-texture-mouth": lambda: mm.upsample_texture(frame, mask, p, rng, mouth_only=True),
        "recompress-splice": lambda: mm.recompress_splice(frame, mask, p, rng),
    }
    return calls[method]()


def test_novel_manipulation_is_held_out_and_deterministic():
    assert set(NOVEL_METHODS).isdisjoint(KNOWN_METHODS + VARIANT_METHODS)
    trained = {m for db in DATABASES if db.kind == "train" for m in db.methods}
    assert trained.isdisjoint(NOVEL_METHODS)
    novel_dbs = [db for db in DATABASES if set(db.methods) & set(NOVEL_METHODS)]
    assert [db.kind for db in novel_dbs] == ["cross"] and set(novel_dbs[0].methods) == set(NOVEL_METHODS)
    jobs = [j for j in plan(0, "small") if j.method in NOVEL_METHODS]
    assert jobs and all(j.true_class == UNSEEN_FAKE and j.split == "test" for j in jobs)
    first, _ = render_job(jobs[0])
    again, _ = render_job(plan(0, "small")[plan(0, "small").index(jobs[0])])
    assert all((a == b).all() for a, b in zip(first, again))
    default = plan(0, "default")  # the default demo grows by one small cross set
    assert sum(j.database == novel_dbs[0].name for j in default) <= 0.05 * len(default)


def test_novel_manipulation_is_another_artefact_family():
    """The never-seen method leaves a JPEG block grid in the face (a splicing trace); no known method or
    variant does, on the same frames and masks."""
    reals = [j for j in plan(0, "small") if j.method == REAL]
    scores: dict[str, list[float]] = {}
    for i in range(3):
        frames, boxes = render_job(reals[i])
        source, _ = render_job(reals[i + 3])
        frame, box = frames[0], boxes[0]
        x0, y0, x1, y1 = box
        mask = np.zeros(frame.shape[:2], np.float32)
        cv2.ellipse(mask, (int((x0 + x1) / 2), int((y0 + y1) / 2)), (int((x1 - x0) * 0.4), int((y1 - y0) * 0.45)),
                    0, 0, 360, 1.0, -1)
        region = cv2.erode(mask, np.ones((5, 5), np.uint8)) > 0.5
        for m in KNOWN_METHODS + VARIANT_METHODS + NOVEL_METHODS:
            out = _manipulate(m, frame.copy(), source[0], mask, box, np.random.default_rng(i))
            scores.setdefault(m, []).append(_blockiness(out, region))
    mean = {m: float(np.mean(v)) for m, v in scores.items()}
    known = max(v for m, v in mean.items() if m not in NOVEL_METHODS)
    for m in NOVEL_METHODS:
        assert mean[m] > 1.4 * known, mean
