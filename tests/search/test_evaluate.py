"""The evaluator's fast path gives the records of the plain one, bit for bit."""

from __future__ import annotations

import random

import pytest
import torch

from search.costs import flops
from search.evaluate import Evaluator
from supernet.builder import build
from supernet.models import count_params


def _plain_score(net, batches) -> tuple[float, float]:
    """(accuracy %, mean cross-entropy), written out here so the evaluator is checked against it."""
    correct, loss, n = 0, 0.0, 0
    for x, y in batches:
        logits = net(x)
        loss += torch.nn.functional.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
        n += len(y)
    return 100.0 * correct / n, loss / n


def reference(ev: Evaluator, arch) -> dict:
    """The record computed the obvious way: a fresh extracted copy, recalibrated, scored."""
    with torch.no_grad():
        net = ev.calibrated(arch)
        acc, loss = _plain_score(net, ev.val_batches)
        train = _plain_score(net, ev.train_batches)[1] if ev.train_batches else None
    record = {
        "arch": str(arch),
        "val_acc": acc,
        "val_loss": loss,
        "train_loss": train,
        "params": count_params(net),
        "flops": flops(net, ev.input_shape),
        "latency_ms": None,
        "angle": None,  # only with the initial supernet (tests/search/test_angle.py)
        "zero_cost": None,  # only for a zero-cost estimator (tests/search/test_zero_cost.py)
        "raced": None,  # scored in full (racing: tests/search/test_racing.py)
        "supernet": ev.built.strategy.route(arch),
    }
    return {**record, "score": ev.scorer(record)}  # the estimator's value of those measurements


@pytest.mark.parametrize(
    "overrides",
    [
        ["space=nb201", "space.macro.cells_per_stage=2"],
        ["space=mbv3", "space.macro.channels=4"],
        ["space=nb201", "evaluator.train_loss=true", "data.limit=300"],
    ],
)
def test_records_equal_the_plain_path(tiny_cfg, overrides):
    cfg = tiny_cfg("search", overrides)
    torch.manual_seed(0)
    built = build(cfg)
    strategy = built.strategy
    x = built.splits.train.tensors[0][:32]
    rng = random.Random(0)
    strategy.train()
    with torch.no_grad():  # BN statistics that are not the calibrated ones
        for _ in range(3):
            strategy(x, built.space.sample(rng))
    ev = Evaluator.from_config(built, {**cfg.evaluator, "count_flops": True}, seed=0)
    archs = [built.space.sample(rng) for _ in range(16)]
    for arch in archs + archs[:2]:  # the second visit reuses the scratch parts
        ev.memo.clear()
        assert ev(arch) == reference(ev, arch)
    before = {k: v.clone() for k, v in strategy.state_dict().items()}
    ev.memo.clear()
    ev(archs[0])
    after = strategy.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "the supernet was changed"


def test_a_pickled_evaluator_carries_each_split_once_and_scores_the_same(tiny_cfg):
    """Ray ships the evaluator pickled: batches are views, and a view pickles its whole storage."""
    import pickle

    cfg = tiny_cfg("search", ["evaluator.train_loss=true", "evaluator.calib_batches=all"])
    torch.manual_seed(0)
    built = build(cfg)
    settings = {**cfg.evaluator, "count_flops": True}
    sizes = {}
    for batch_size in (500, 7):
        small = {"batch_size": batch_size, "calib_batch_size": min(batch_size, 64)}
        ev = Evaluator.from_config(built, {**settings, **small}, seed=0)
        sizes[batch_size] = len(pickle.dumps(ev))
    assert len(ev.val_batches) > 40 and len(ev.calibrator.batches) > 100
    assert sizes[7] < 1.05 * sizes[500]  # not a copy of each split per batch
    twin = pickle.loads(pickle.dumps(ev))
    arch = built.space.sample(random.Random(3))
    assert twin(arch) == ev(arch)
    assert [b.shape for b in twin.calibrator.batches] == [b.shape for b in ev.calibrator.batches]
