"""The training engine on tiny crops: each approach learns, checkpoints and
resume, inference interface, bad input, NaN handling."""

from __future__ import annotations

import argparse
import json
import shutil

import numpy as np
import pytest
import torch

from data_catalog.errors import AtlasError
from engine.config import load_config
from engine.models import load_for_inference
from engine.training import BEST, LAST, RUN_FILE, NonFiniteLoss, TrainUnit, apply_overrides, train

from testkit.toy_training import make_toy, toy_image


@pytest.fixture
def toy(workspace, tmp_path):
    return workspace, load_config(make_toy(workspace, tmp_path, epochs=3))


@pytest.mark.parametrize("approach", ["binary", "attribution", "triplet", "arcfacemod"])
def test_each_approach_learns_and_checkpoints(toy, approach):
    ws, cfg = toy
    res = train(cfg, approach, ws, progress=False)
    losses = [h["train_loss"] for h in res.history]
    assert res.status == "finished" and len(losses) == 3
    assert losses[-1] < losses[0], losses
    run_dir = ws.run_dir(cfg.run_id(approach))
    ckpt = torch.load(run_dir / LAST, weights_only=True)
    assert ckpt["approach"] == approach and ckpt["epoch"] == 2 and ckpt["classes"] == ["real", "fake-a", "fake-b"]
    assert isinstance(ckpt["rng"]["torch"], torch.Tensor)
    best = torch.load(run_dir / BEST, weights_only=True)
    assert best["epoch"] == res.best_epoch == int(np.argmin([h["selection"] for h in res.history]))
    row = ws.store().df("SELECT * FROM runs WHERE run_id = ?", [res.run_id]).iloc[0]
    assert row.status == "finished" and row.best_epoch == res.best_epoch and row.epochs_done == 3
    assert row.pretrained_source.startswith("random init")
    assert list(row.classes) == ["real", "fake-a", "fake-b"]
    n_epochs = ws.store().scalar("SELECT count(*) FROM epochs WHERE run_id = ?", [res.run_id])
    assert n_epochs == 3
    assert len((run_dir / "train_log.jsonl").read_text().splitlines()) == 3

    # inference interface (helper for embeddings)
    m = load_for_inference(ws, res.run_id)
    imgs = np.stack([toy_image(np.random.default_rng(i), i % 3, 40) for i in range(7)])  # resized to 32
    out = m.predict(imgs, batch_size=3)
    assert m.approach == approach and m.classes == ["real", "fake-a", "fake-b"] and m.input_size == 32
    assert out["embedding"].shape == (7, m.embedding_dim) and out["embedding"].dtype == np.float32
    if approach in ("triplet", "arcfacemod"):
        assert m.embedding_dim == 64 and out["probs"] is None and out["real_score"] is None
        assert np.allclose(np.linalg.norm(out["embedding"], axis=1), 1, atol=1e-4)
    else:
        assert out["probs"].shape == (7, 2 if approach == "binary" else 3)
        assert np.allclose(out["probs"].sum(1), 1, atol=1e-5)
        assert np.array_equal(out["real_score"], out["probs"][:, 0])
    again = m.predict(imgs)
    assert np.allclose(again["embedding"], out["embedding"], atol=1e-5)

    # the same command again is a cache hit, whose message counts the best epoch from 1 like the tables
    said = []
    assert train(cfg, approach, ws, progress=False, log=said.append).status == "cached"
    assert f"best epoch {res.best_epoch + 1} of 3, counted from 1" in said[0], said


def test_unseen_fakes_and_test_split_are_never_trained_on(toy):
    from engine.training import training_faces

    ws, cfg = toy
    tr, va = training_faces(ws, cfg)
    assert set(tr.frame.true_class) == {"real", "fake-a", "fake-b"}
    assert set(tr.frame.split) == {"train"} and set(va.frame.split) == {"val"}
    assert (tr.frame.label == tr.frame.true_class.map({"real": 0, "fake-a": 1, "fake-b": 2})).all()


def test_resume_continues_bit_for_bit(workspace, tmp_path, monkeypatch, capsys):
    import engine.training.loop as T

    cfg = load_config(make_toy(workspace, tmp_path, epochs=3))
    reference_ws = type(workspace)(tmp_path / "ref")
    shutil.copytree(workspace.root, reference_ws.root)
    ref = train(cfg, "arcfacemod", reference_ws, progress=False)

    real_epoch = T.train_epoch
    calls = []

    def interrupted(*args, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_epoch(*args, **kw)

    monkeypatch.setattr(T, "train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, "arcfacemod", workspace, progress=False)
    run_dir = workspace.run_dir(cfg.run_id("arcfacemod"))
    assert json.loads((run_dir / RUN_FILE).read_text())["status"] == "interrupted"
    assert torch.load(run_dir / LAST, weights_only=True)["epoch"] == 0
    monkeypatch.setattr(T, "train_epoch", real_epoch)
    capsys.readouterr()
    res = train(cfg, "arcfacemod", workspace, resume_only=True, progress=False)
    assert "resuming run" in capsys.readouterr().err
    assert [h["epoch"] for h in res.history] == [0, 1, 2]
    a = torch.load(run_dir / LAST, weights_only=True)
    b = torch.load(reference_ws.run_dir(ref.run_id) / LAST, weights_only=True)
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert torch.equal(a["criterion"]["weight"], b["criterion"]["weight"])
    assert [h["train_loss"] for h in res.history] == [h["train_loss"] for h in ref.history]


def test_overrides_change_the_run_id(toy):
    _, cfg = toy
    assert apply_overrides(cfg, epochs=5).run_id("binary") != cfg.run_id("binary")
    assert apply_overrides(cfg, backbone="resnet10t").run_id("binary") != cfg.run_id("binary")
    assert apply_overrides(cfg).run_id("binary") == cfg.run_id("binary")


def test_bad_input_is_refused_before_training(toy, tmp_path):
    ws, cfg = toy
    with pytest.raises(AtlasError, match="unknown backbone 'resnet_nope'"):
        train(apply_overrides(cfg, backbone="resnet_nope"), "binary", ws, progress=False)
    with pytest.raises(AtlasError, match="unknown approach"):
        train(cfg, "softmax", ws, progress=False)
    with pytest.raises(AtlasError, match="no checkpoint to resume"):
        train(cfg, "binary", ws, resume_only=True, progress=False)
    # a folder in the run's place that is not a run
    bogus = ws.run_dir(cfg.run_id("binary"))
    bogus.mkdir(parents=True)
    (bogus / "notes.txt").write_text("hello")
    with pytest.raises(AtlasError, match="not a dfatlas run"):
        train(cfg, "binary", ws, progress=False)
    shutil.rmtree(bogus)
    # a checkpoint from another approach in the run folder
    small = apply_overrides(cfg, epochs=1)
    train(small, "triplet", ws, progress=False)
    target = ws.run_dir(small.run_id("attribution"))
    target.mkdir(parents=True)
    (target / RUN_FILE).write_text(json.dumps({"run_id": small.run_id("attribution"), "approach": "attribution",
                                               "status": "interrupted"}))
    shutil.copy(ws.run_dir(small.run_id("triplet")) / LAST, target / LAST)
    with pytest.raises(AtlasError, match="checkpoint of 'triplet' run"):
        train(small, "attribution", ws, progress=False)
    # a class the taxonomy does not know
    ws.store().execute("UPDATE videos SET true_class = 'fake-zzz' WHERE true_class = 'fake-b' AND split = 'train'")
    with pytest.raises(AtlasError, match="fake-zzz"):
        train(cfg, "binary", ws, progress=False)


def test_missing_faces_is_a_clear_error(workspace, tmp_path):
    cfg = load_config(make_toy(workspace, tmp_path))
    workspace.store().execute("DELETE FROM faces")
    with pytest.raises(AtlasError, match="dfatlas faces"):
        train(cfg, "binary", workspace, progress=False)


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(toy, monkeypatch):
    ws, cfg = toy
    real_forward = TrainUnit.forward
    seen = []

    def poisoned(self, *args, **kw):
        loss, out = real_forward(self, *args, **kw)
        if self.training:
            seen.append(1)
            if len(seen) == 5 + 2:  # 5 batches per epoch: epoch 2, step 2
                loss = loss * float("nan")
        return loss, out

    monkeypatch.setattr(TrainUnit, "forward", poisoned)
    with pytest.raises(NonFiniteLoss, match=r"epoch 2, step 2.*last good checkpoint: epoch 1 "):
        train(cfg, "attribution", ws, progress=False)
    run_dir = ws.run_dir(cfg.run_id("attribution"))
    assert torch.load(run_dir / LAST, weights_only=True)["epoch"] == 0
    assert ws.store().scalar("SELECT status FROM runs WHERE run_id = ?", [cfg.run_id("attribution")]) == "failed"


def test_cli_train_all_and_errors(toy, tmp_path, capsys):
    from engine.commands import train as cmd

    ws, cfg = toy
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    cmd.register(sub)
    args = parser.parse_args(["train", "--config", str(cfg.path), "--workspace", str(ws.root), "--all",
                              "--epochs", "1"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    for a in ("binary", "attribution", "triplet", "arcfacemod"):
        assert apply_overrides(cfg, epochs=1).run_id(a) in out
    args = parser.parse_args(["train", "--config", str(cfg.path), "--workspace", str(ws.root), "--approach",
                              "binary", "--backbone", "no_such_net"])
    with pytest.raises(AtlasError, match="unknown backbone"):
        args.func(args)


def test_class_balanced_sampling_trains(workspace, tmp_path):
    cfg = load_config(make_toy(workspace, tmp_path, epochs=2, balanced=True))
    res = train(cfg, "binary", workspace, progress=False)
    assert res.status == "finished" and all(np.isfinite(h["train_loss"]) for h in res.history)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bf16_channels_last_training(workspace, tmp_path):
    cfg = load_config(make_toy(workspace, tmp_path, epochs=3, device="cuda", residual=True))
    res = train(cfg, "attribution", workspace, progress=False)
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]
    meta = json.loads((workspace.run_dir(res.run_id) / RUN_FILE).read_text())
    assert meta["bf16"] == torch.cuda.is_bf16_supported() and meta["device"].startswith("cuda")
    m = load_for_inference(workspace, res.run_id, device="cuda")
    out = m.predict(np.stack([toy_image(np.random.default_rng(i), i % 3, 32) for i in range(5)]))
    assert out["probs"].shape == (5, 3) and np.isfinite(out["embedding"]).all()


def test_pretrained_sources_offline_and_local_file(tmp_path, monkeypatch, capsys):
    import timm

    from engine.models import RANDOM_INIT_OFFLINE, create_backbone

    monkeypatch.setenv("DFATLAS_OFFLINE", "1")
    monkeypatch.setattr("engine.models._cached_pretrained_file", lambda pcfg: None)
    _, source = create_backbone("test_resnet", pretrained=True)
    assert source == RANDOM_INIT_OFFLINE and "random initialisation" in capsys.readouterr().err
    weights = tmp_path / "w.pth"
    ref = timm.create_model("test_resnet", num_classes=0)
    torch.save(ref.state_dict(), weights)
    m, source = create_backbone("test_resnet", pretrained=True, checkpoint=str(weights), in_chans=6)
    assert source == f"file:{weights}"
    first = next(k for k in ref.state_dict() if k.endswith("weight"))
    assert m.state_dict()[first].shape[1] == 6  # timm adapted the stem to the residual channels
    with pytest.raises(AtlasError, match="file not found"):
        create_backbone("test_resnet", pretrained=True, checkpoint=str(tmp_path / "missing.pth"))


def test_cache_hit_repairs_a_store_row_left_behind_by_a_kill(toy):
    """A kill between writing run.json ('finished') and the store row leaves the
    row at 'training'; the next train call is a cache hit that mends the row."""
    ws, cfg = toy
    run_id = cfg.run_id("attribution")
    train(cfg, "attribution", ws, progress=False)
    ws.store().execute("UPDATE runs SET status = 'training' WHERE run_id = ?", [run_id])
    res = train(cfg, "attribution", ws, progress=False)
    assert res.status == "cached"
    assert ws.store().scalar("SELECT status FROM runs WHERE run_id = ?", [run_id]) == "finished"


def test_module_entry_trains_one_process(toy):
    """`python -m engine.training` (what torchrun launches per rank) trains, then is a cache hit."""
    import subprocess
    import sys

    ws, cfg = toy
    cmd = [sys.executable, "-m", "engine.training", "--config", str(cfg.path), "--workspace", str(ws.root),
           "--approach", "binary", "--epochs", "1"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    run_id = apply_overrides(cfg, epochs=1).run_id("binary")
    assert f"run {run_id} finished" in done.stderr
    meta = json.loads((ws.run_dir(run_id) / RUN_FILE).read_text())
    assert meta["status"] == "finished" and meta["world_size"] == 1
    bad = subprocess.run(cmd[:-4] + ["--approach", "softmax"], capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
