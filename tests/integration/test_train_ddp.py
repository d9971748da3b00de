"""Two gloo processes on CPU: identical weights after every step, disjoint
shards of every epoch (class-balanced P x K included), the loss decreases."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

from engine.approaches import get_approach
from engine.config import load_config
from engine.training import balance_labels, epoch_batches, training_faces

from testkit.toy_training import ddp_worker, make_toy

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="no gloo backend")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(300)
def test_two_rank_gloo_ddp(workspace, tmp_path):
    """arcfacemod: loss weights outside the backbone, plain shuffled shards;
    triplet: per-rank semi-hard mining on class-balanced P x K shards."""
    cfg_path = make_toy(workspace, tmp_path, epochs=3, batch=8)
    out = tmp_path / "out"
    out.mkdir()
    approaches = ["arcfacemod", "triplet"]
    mp.start_processes(ddp_worker, args=(2, _free_port(), str(cfg_path), str(workspace.root), approaches, str(out)),
                       nprocs=2, join=True, start_method="spawn")
    per_rank = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    for approach in approaches:
        _check(workspace, cfg_path, approach, [rec[approach] for rec in per_rank])


def _check(workspace, cfg_path, approach, ranks):

    # identical parameters on both ranks after every optimiser step
    for rec in ranks:
        assert rec["max_param_diff"] and max(rec["max_param_diff"]) == 0.0

    # each rank's batches are its own slice of the same global epoch plan
    cfg = load_config(cfg_path)
    train_set, _ = training_faces(workspace, cfg)

    balance = balance_labels(get_approach(approach), cfg.train, train_set)
    seed = cfg.train.seed + 1000 * cfg.experiment.seed
    for epoch in range(3):
        plan = epoch_batches(len(train_set), 8, seed=seed, epoch=epoch, balance_labels=balance, samples_per_class=4)
        mine = [[b for e, _, b in rec["batches"] if e == epoch] for rec in ranks]
        assert len(mine[0]) == len(mine[1]) == len(plan) // 2
        for r in range(2):
            assert mine[r] == [list(map(int, b)) for b in plan[r::2][:len(mine[r])]]
        if balance is None:  # plain shuffling: the two shards share no sample
            assert not set(np.concatenate(mine[0])) & set(np.concatenate(mine[1]))
        else:  # P x K batches on every rank
            for b in mine[0] + mine[1]:
                _, counts = np.unique(train_set.labels[b], return_counts=True)
                assert (counts == 4).all()

    # the loss decreases, and rank 0 wrote a finished run
    hist = ranks[0]["history"]
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    row = workspace.store().df("SELECT status, epochs_done FROM runs WHERE run_id = ?", [cfg.run_id(approach)])
    assert row.status[0] == "finished" and row.epochs_done[0] == 3
