"""The invariant of the field: ``extract(arch)(x) == supernet(x, arch)``, plus gradient routing."""

from __future__ import annotations

import copy
import random

import pytest
import torch
from torch import nn

from supernet.models import Macro, StandaloneNet, build_supernet, count_params
from supernet.ops.cells import FixedCell, SuperCell
from supernet.ops.nb201_ops import Zero
from supernet.sharing import FewShotSharing
from supernet.spaces import build_space

N_ARCHS = 50


def close(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


@pytest.fixture(scope="module")
def space():
    return build_space("nb201")


def warm_up(model, space, x, steps: int = 3, seed: int = 0) -> None:
    """Training-mode forwards on random paths, so BN running stats are not the defaults."""
    rng = random.Random(seed)
    model.train()
    with torch.no_grad():
        for _ in range(steps):
            model(x, space.sample(rng))
            model(x, space.largest())


def archs(space, n: int = N_ARCHS, seed: int = 0):
    rng = random.Random(seed)
    base = [space.largest(), space.smallest(), space.make({d: "none" for d in space.choices()})]
    return base + [space.sample(rng) for _ in range(n - len(base))]


@pytest.mark.parametrize("cells,affine", [(1, True), (2, True), (1, False)])
def test_extract_equals_supernet_forward(space, cells, affine):
    torch.manual_seed(0)
    net = build_supernet(space, Macro(channels=4, cells_per_stage=cells, bn_affine=affine))
    x = torch.randn(6, 1, 8, 8)
    warm_up(net, space, x)
    bn = next(m for m in net.modules() if isinstance(m, nn.BatchNorm2d))
    assert not torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))
    net.eval()
    with torch.no_grad():
        for arch in archs(space):
            sub = net.extract(arch)
            assert isinstance(sub, StandaloneNet) and not sub.training
            assert sub.arch == str(arch)
            close(sub(x), net(x, arch))


def test_extract_equals_forward_through_a_strategy(space):
    torch.manual_seed(0)
    strategy = FewShotSharing(space, Macro(channels=4))
    decision = "edge_1_0"
    strategy.split(0, decision, [[c] for c in space.choices()[decision]])
    assert strategy.num_supernets == 5
    with torch.no_grad():  # make the sub-supernets differ, so routing matters
        for k, sub in enumerate(strategy.supernets):
            for p in sub.parameters():
                p.add_(0.05 * k)
    x = torch.randn(6, 1, 8, 8)
    warm_up(strategy, space, x)
    strategy.eval()
    with torch.no_grad():
        for arch in archs(space):
            close(strategy.extract(arch)(x), strategy(x, arch))
            close(strategy(x, arch), strategy.supernets[strategy.route(arch)](x, arch))
        # same arch through another sub-supernet gives another output: the routing is real
        arch = space.largest()
        other = strategy.supernets[(strategy.route(arch) + 1) % 5]
        assert not torch.allclose(other(x, arch), strategy(x, arch))


def chosen_params(net, arch) -> tuple[set[int], set[int]]:
    """ids of parameters of chosen ops and of not-chosen ops, over every super cell."""
    chosen, other = set(), set()
    for cell in net.modules():
        if isinstance(cell, SuperCell):
            for name, edge in cell.edges.items():
                for op, module in edge.ops.items():
                    ids = {id(p) for p in module.parameters()}
                    (chosen if op == arch[name] else other).update(ids)
    return chosen, other


def test_backward_reaches_only_the_chosen_ops(space):
    torch.manual_seed(0)
    net = build_supernet(space, Macro(channels=4, cells_per_stage=2))
    net.train()
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))
    rng = random.Random(1)
    fixed = space.make({**space.sample(rng), "edge_1_0": "nor_conv_3x3"})
    for arch in [fixed, space.largest()] + [space.sample(rng) for _ in range(6)]:
        net.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(net(x, arch), y).backward()
        chosen, other = chosen_params(net, arch)
        for name, p in net.named_parameters():
            if id(p) in other:
                assert p.grad is None, f"{name} is not on the path {arch} but got a gradient"
            else:
                assert p.grad is not None, f"{name} is on the path {arch} but got no gradient"
                assert torch.isfinite(p.grad).all(), name
    net.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(net(x, fixed), y).backward()
    for cell in (m for m in net.modules() if isinstance(m, SuperCell)):
        ops = cell.edges["edge_1_0"].ops
        assert all(p.grad is None for p in ops["nor_conv_1x1"].parameters())
        assert all(p.grad is not None for p in ops["nor_conv_3x3"].parameters())
    stem_grad = net.stem[0].weight.grad
    assert stem_grad is not None and stem_grad.abs().sum() > 0


def test_extracted_net_holds_copies(space):
    torch.manual_seed(0)
    net = build_supernet(space, Macro(channels=4))
    x = torch.randn(6, 1, 8, 8)
    warm_up(net, space, x)
    net.eval()
    arch = space.largest()
    before = copy.deepcopy(net.state_dict())
    with torch.no_grad():
        ref = net(x, arch)
        sub = net.extract(arch)
        supernet_ptrs = {t.data_ptr() for t in net.state_dict().values()}
        assert not supernet_ptrs & {t.data_ptr() for t in sub.state_dict().values()}
        for p in sub.parameters():
            p.mul_(-2.0).add_(1.0)
        sub.train()
        sub(x)  # moves the copy's BN statistics
        close(net(x, arch), ref)
    after = net.state_dict()
    for key, value in before.items():
        assert torch.equal(after[key], value), f"{key} changed when the extracted copy changed"


def test_none_edges_are_dropped(space):
    torch.manual_seed(0)
    net = build_supernet(space, Macro(channels=4))
    lone = space.make({d: ("nor_conv_3x3" if d == "edge_3_0" else "none") for d in space.choices()})
    sub, full = net.extract(lone), net.extract(space.largest())
    cells = [m for m in sub.modules() if isinstance(m, FixedCell)]
    assert cells and all(set(c.ops) == {"edge_3_0"} for c in cells)
    assert not any(isinstance(m, Zero) for m in sub.modules())
    assert count_params(sub) < count_params(full)
    per_cell_full = sum(count_params(c) for c in full.modules() if isinstance(c, FixedCell))
    per_cell_lone = sum(count_params(c) for c in cells)
    assert per_cell_lone * 6 == per_cell_full  # 1 of 6 conv edges kept
    empty = net.extract(space.make({d: "none" for d in space.choices()}))
    assert all(len(c.ops) == 0 for c in empty.modules() if isinstance(c, FixedCell))


def test_param_count_matches_the_extracted_net():
    import random as _random

    from supernet.models import Macro, Supernet, count_params
    from supernet.spaces import build_space

    space = build_space("nb201")
    net = Supernet(space, Macro(channels=4))
    rng = _random.Random(0)
    for arch in [space.sample(rng) for _ in range(20)] + [space.largest(), space.smallest()]:
        assert net.param_count(arch) == count_params(net.extract(arch))


def test_bn_affine_false_drops_scale_and_shift_in_cells_and_reductions_only(space):
    net = build_supernet(space, Macro(channels=4, bn_affine=False))
    for name, m in net.named_modules():
        if isinstance(m, nn.BatchNorm2d):
            # stem and head keep theirs, as NB201's search supernet does
            assert m.affine == name.startswith(("stem", "head")), name
    with_affine = build_supernet(space, Macro(channels=4))
    arch = space.largest()
    assert net.param_count(arch) < with_affine.param_count(arch)
    assert net.param_count(arch) == count_params(net.extract(arch))
