"""ArcFaceMod's margins and fall-back, semi-hard mining in P x K batches."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.training import epoch_batches
from engine.losses import ArcFaceMod, TripletLoss


def _unit(angle: float) -> torch.Tensor:
    return torch.tensor([math.cos(angle), math.sin(angle)])


def _loss_with_axes(n_classes=3, scale=64.0):
    loss = ArcFaceMod(2, n_classes, real_class=0, real_margin=0.6, fake_margin=0.4, scale=scale)
    with torch.no_grad():  # class c's weight at angle c * 2pi/3 (unnormalised on purpose)
        loss.weight.copy_(torch.stack([3.0 * _unit(c * 2 * math.pi / n_classes) for c in range(n_classes)]))
    return loss


def test_arcfacemod_true_class_logit_uses_the_class_margin():
    loss = _loss_with_axes()
    thetas = [0.3, 1.0, 0.7]
    labels = torch.tensor([0, 1, 2])
    emb = torch.stack([5.0 * _unit(c * 2 * math.pi / 3 + t) for c, t in zip(range(3), thetas)])
    logits = loss.logits(emb, labels)
    plain = loss.logits(emb)
    for i, (t, m) in enumerate(zip(thetas, [0.6, 0.4, 0.4])):
        assert logits[i, i].item() == pytest.approx(64.0 * math.cos(t + m), abs=1e-3)
        assert plain[i, i].item() == pytest.approx(64.0 * math.cos(t), abs=1e-3)
        others = [j for j in range(3) if j != i]
        assert torch.allclose(logits[i, others], plain[i, others])
    assert loss(emb, labels).item() == pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-6)


def test_arcfacemod_fallback_beyond_pi():
    loss = _loss_with_axes()
    theta = 2.9  # 2.9 + 0.6 > pi for the real class; 2.9 + 0.4 > pi for fakes too
    for label, m in ((0, 0.6), (1, 0.4)):
        emb = _unit(label * 2 * math.pi / 3 + theta)[None]
        got = loss.logits(emb, torch.tensor([label]))[0, label].item()
        assert got == pytest.approx(64.0 * (math.cos(theta) - m * math.sin(m)), abs=1e-3)
    # below pi the formula, not the fall-back
    emb = _unit(2.4)[None]
    assert loss.logits(emb, torch.tensor([0]))[0, 0].item() == pytest.approx(64 * math.cos(3.0), abs=1e-3)


def test_arcfacemod_guards_and_learns():
    torch.manual_seed(0)
    loss = ArcFaceMod(8, 4)
    emb = loss.weight.detach().clone().requires_grad_(True)  # cos = 1 exactly: acos' singularity
    out = loss(emb, torch.arange(4))
    out.backward()
    assert torch.isfinite(out) and torch.isfinite(emb.grad).all()
    # optimising free embeddings lowers the loss
    emb = torch.randn(32, 8, requires_grad=True)
    labels = torch.arange(32) % 4
    opt = torch.optim.Adam([emb, *loss.parameters()], lr=0.05)
    first = None
    for _ in range(60):
        value = loss(emb, labels)
        first = first if first is not None else value.item()
        opt.zero_grad()
        value.backward()
        opt.step()
    assert value.item() < 0.5 * first


def test_arcfacemod_rejects_bad_arguments():
    with pytest.raises(ValueError):
        ArcFaceMod(8, 1)
    with pytest.raises(ValueError):
        ArcFaceMod(8, 3, real_margin=2.0)


def test_pk_batches_hold_k_of_p_classes_and_semihard_triplets_exist():
    labels = np.repeat(np.arange(5), [30, 8, 8, 6, 12])
    batches = epoch_batches(len(labels), 16, seed=0, epoch=0, balance_labels=labels, samples_per_class=4)
    assert len(batches) == len(labels) // 16
    for b in batches:
        _, counts = np.unique(labels[b], return_counts=True)
        assert len(counts) == 4 and (counts == 4).all()
    # the plan is a function of (seed, epoch)
    again = epoch_batches(len(labels), 16, seed=0, epoch=0, balance_labels=labels, samples_per_class=4)
    assert all((a == b).all() for a, b in zip(batches, again))
    other = epoch_batches(len(labels), 16, seed=0, epoch=1, balance_labels=labels, samples_per_class=4)
    assert any((a != b).any() for a, b in zip(batches, other))

    torch.manual_seed(0)
    crit = TripletLoss(margin=0.2)
    b = torch.from_numpy(labels[batches[0]])
    emb = F.normalize(torch.randn(16, 8) + 0.8 * F.one_hot(b, 8).float(), dim=1)
    a, p, n = crit.miner(emb, b)
    assert len(a) > 0
    d = torch.cdist(emb, emb)
    assert (b[a] == b[p]).all() and (b[a] != b[n]).all()
    assert (d[a, p] < d[a, n]).all() and (d[a, n] < d[a, p] + 0.2 + 1e-5).all()  # semi-hard
    emb.requires_grad_(True)
    value = crit(emb, b)
    value.backward()
    assert value.item() > 0 and crit.last_n_triplets == len(a)


def test_triplet_loss_without_triplets_is_zero_with_a_graph():
    crit = TripletLoss()
    emb = F.normalize(torch.randn(4, 8), dim=1).requires_grad_(True)
    value = crit(emb, torch.zeros(4, dtype=torch.long))  # one class: nothing to mine
    value.backward()
    assert value.item() == 0 and emb.grad is not None


def test_triplet_validation_loss_is_not_zeroed_without_grad():
    torch.manual_seed(0)
    labels = torch.arange(16) % 4
    emb = F.normalize(torch.randn(16, 8), dim=1)
    with torch.no_grad():
        value = TripletLoss(margin=0.2)(emb, labels, mine=False)
    assert value.item() > 0


def test_metric_head_selection_ranks_embeddings_by_quality():
    """The TripletLoss best epoch is chosen by a criterion that tracks the embedding (issue: pml's non-zero
    averaging gave 0.399 for one misplaced sample and 0.205 for a random embedding): best to worst,
    a perfect embedding, one misplaced sample, half the labels shuffled, a random embedding."""
    import torch.nn.functional as F

    from engine.approaches import get_approach

    torch.manual_seed(0)
    n_cls, per = 5, 16
    labels = torch.arange(n_cls).repeat_interleave(per)
    centres = F.normalize(torch.randn(n_cls, 16), dim=1)
    perfect = F.normalize(centres[labels] + 0.01 * torch.randn(len(labels), 16), dim=1)
    one = perfect.clone()
    one[0] = centres[3]
    half = perfect.clone()
    idx = torch.randperm(len(labels))[: len(labels) // 2]
    half[idx] = perfect[idx[torch.randperm(len(idx))]]
    rnd = F.normalize(torch.randn(len(labels), 16), dim=1)
    kind = get_approach("triplet")
    scores = [kind.selection_score(0.0, e.numpy(), labels.numpy()) for e in (perfect, one, half, rnd)]
    assert scores == sorted(scores) and len(set(scores)) == 4, scores
    # the validation loss itself (mean over all triplets) is 0 for the perfect embedding
    from engine.losses import TripletLoss

    with torch.no_grad():
        assert float(TripletLoss()(perfect, labels, mine=False)) == pytest.approx(0.0, abs=1e-6)
