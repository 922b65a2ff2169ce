"""Zero-cost proxies with inherited weights (search/zero_cost.py): their values against the
definitions, computed by hand; the net left as it was; and a search ranked by one."""

from __future__ import annotations

import pickle
import random
from pathlib import Path

import pytest
import torch
from torch import nn

import search
from search.evaluate import Evaluator
from search.zero_cost import grad_norm, proxy_batch, snip, synflow
from supernet.builder import build, load_trained
from supernet.training import train
from tests.conftest import compose_tiny


def _tiny() -> tuple[nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(48, 4)
    )
    net.eval()
    return net, (torch.randn(5, 1, 4, 4), torch.tensor([0, 1, 2, 3, 0]))


def _by_hand(net: nn.Module, batch) -> list[tuple[torch.Tensor, torch.Tensor]]:
    net.zero_grad()
    nn.functional.cross_entropy(net(batch[0]), batch[1]).backward()
    out = [(p.detach().clone(), p.grad.clone()) for p in net.parameters()]
    net.zero_grad(set_to_none=True)
    return out


def test_snip_and_grad_norm_match_their_definitions_and_leave_the_net_alone():
    net, batch = _tiny()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    pairs = _by_hand(net, batch)
    assert snip(net, batch) == pytest.approx(float(sum((w * g).abs().sum() for w, g in pairs)))
    expected = float(torch.sqrt(sum((g.double() ** 2).sum() for _, g in pairs)))
    assert grad_norm(net, batch) == pytest.approx(expected)
    assert all(p.grad is None for p in net.parameters())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_synflow_of_a_linear_chain_is_depth_times_the_path_sum_and_reads_no_data():
    # with |w| and no bias, each layer's sum of w * dR/dw equals R = 1^T |W2| |W1| 1
    torch.manual_seed(1)
    net = nn.Sequential(nn.Flatten(), nn.Linear(6, 5, bias=False), nn.Linear(5, 3, bias=False))
    w1, w2 = net[1].weight.detach().abs().double(), net[2].weight.detach().abs().double()
    path_sum = float((w2 @ w1).sum())
    one = (torch.randn(2, 1, 2, 3), torch.tensor([0, 1]))
    other = (torch.randn(7, 1, 2, 3), torch.tensor([2] * 7))
    assert synflow(net, one) == pytest.approx(2 * path_sum, rel=1e-9)
    assert synflow(net, other) == synflow(net, one)
    assert (net[1].weight < 0).any()  # the net's own weights keep their signs


def test_synflow_removes_batch_norm():
    net, batch = _tiny()
    value = synflow(net, batch)
    net[1].running_var.fill_(1e6)  # a BN statistic the proxy must not read
    assert synflow(net, batch) == value > 0


def test_proxy_batch_is_fixed_by_its_seed():
    data = torch.utils.data.TensorDataset(torch.arange(100.0).view(100, 1), torch.arange(100))
    a, b, c = proxy_batch(data, 8, seed=0), proxy_batch(data, 8, seed=0), proxy_batch(data, 8, 1)
    assert torch.equal(a[1], b[1]) and not torch.equal(a[1], c[1]) and len(a[1]) == 8


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("zero_cost")
    return Path(
        train(compose_tiny("train", ["trainer.steps_per_epoch=4"]), out_dir=out)["checkpoint"]
    )


@pytest.mark.parametrize("name", ["snip", "grad_norm", "synflow"])
def test_the_evaluator_scores_by_the_proxy_on_the_calibrated_path(checkpoint, name):
    built, _ = load_trained(checkpoint)
    arch = built.space.sample(random.Random(0))
    evaluator = Evaluator(built, count_flops=False, estimator=name, seed=3)
    record = evaluator(arch)
    batch = proxy_batch(built.splits.train, seed=3)
    by_hand = {"snip": snip, "grad_norm": grad_norm, "synflow": synflow}[name]
    assert (
        record["score"]
        == record["zero_cost"]
        == pytest.approx(by_hand(evaluator.calibrated(arch), batch))
    )
    assert record["zero_cost"] > 0 and record["val_acc"] is not None
    assert Evaluator(built, count_flops=False)(arch)["zero_cost"] is None  # off unless asked


def test_a_search_ranks_by_snip(checkpoint, tmp_path):
    overrides = [
        f"supernet.checkpoint={checkpoint}",
        "evaluator.estimator=snip",
        "results.key=score",
        "searcher=random",
        "searcher.n_trials=5",
    ]
    ranked = search.run(compose_tiny("search", overrides), out_dir=tmp_path)["leaderboard"]
    assert [r["score"] for r in ranked] == sorted((r["zero_cost"] for r in ranked), reverse=True)


@pytest.mark.parametrize("space", ["nb201", "mbv3"])
def test_the_evaluators_synflow_twins_equal_a_copy_and_leave_the_supernet_alone(tiny_cfg, space):
    """The evaluator assembles synflow twins from part copies prepared once and shared by every
    arch; each arch's value equals synflow on a fresh copy of its extracted net, in any order."""
    torch.manual_seed(0)
    built = build(tiny_cfg("search", [f"space={space}"]))
    before = {k: v.clone() for k, v in built.strategy.state_dict().items()}
    ev = Evaluator(built, count_flops=False, estimator="synflow", seed=0)
    batch = proxy_batch(built.splits.train, seed=0)
    rng = random.Random(1)
    archs = [built.space.sample(rng) for _ in range(12)]
    by_copy = [synflow(built.strategy.extract(a).eval(), batch) for a in archs]
    first = [ev.zero_cost(a) for a in archs]
    again = [ev.zero_cost(a) for a in reversed(archs)][::-1]  # parts reused, in another order
    assert first == pytest.approx(by_copy, rel=1e-12) and again == first
    assert len(set(first)) > 1  # the archs really differ
    shipped = pickle.loads(pickle.dumps(ev))  # as Ray workers get it: the memo keys still match
    made = sum(len(m) for m in shipped._twin_parts.values())
    with torch.inference_mode():  # a caller in inference mode leaves the prepared parts usable
        assert [shipped.zero_cost(a) for a in archs] == first
    assert sum(len(m) for m in shipped._twin_parts.values()) == made
    after = built.strategy.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
