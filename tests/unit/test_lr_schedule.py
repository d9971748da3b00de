"""The epoch learning rate: constant (paper) or cosine decay, a pure function of the epoch."""

import math

from engine.config import TrainSection
from engine.training import epoch_lr


def test_constant_is_the_papers_default():
    t = TrainSection()
    assert t.lr_schedule == "constant"
    assert [epoch_lr(t, e) for e in range(3)] == [t.lr] * 3


def test_cosine_decays_from_lr_and_depends_only_on_the_epoch():
    t = TrainSection(lr=1e-3, epochs=6, lr_schedule="cosine")
    lrs = [epoch_lr(t, e) for e in range(6)]
    assert lrs[0] == 1e-3 and all(a > b for a, b in zip(lrs, lrs[1:])) and lrs[-1] > 0
    assert math.isclose(lrs[3], 1e-3 * 0.5 * (1 + math.cos(math.pi * 3 / 6)))
    assert epoch_lr(t, 4) == lrs[4]  # a resumed run recomputes the same rate
