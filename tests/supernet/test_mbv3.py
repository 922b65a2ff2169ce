"""The elastic MobileNetV3 space and supernet: canonical archs, slicing, extraction, a real run."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn

import search
from supernet.builder import load_trained
from supernet.errors import InvalidArchError
from supernet.models import Macro, build_supernet, count_params
from supernet.sharing import STRATEGIES
from supernet.spaces import build_space
from supernet.spaces.mbv3 import block_keys, depth_key
from supernet.training import train
from tests.conftest import compose_tiny


@pytest.fixture(scope="module")
def space():
    return build_space("mbv3")


def warmed(space, affine: bool = True) -> nn.Module:
    torch.manual_seed(0)
    net = build_supernet(space, Macro(channels=4, in_channels=1, bn_affine=affine))
    x = torch.randn(6, 1, 8, 8)
    net.train()
    with torch.no_grad():  # BN running statistics away from their defaults, on many slices
        for seed in range(4):
            net(x, space.sample(random.Random(seed)))
        net(x, space.largest())
    return net.eval()


def test_size_counts_distinct_networks(space):
    assert space.size() == (9**2 + 9**3 + 9**4) ** 4


def test_blocks_a_stage_does_not_run_are_canonical(space):
    arch = dict(space.largest())
    arch[depth_key(1)] = "2"
    shallow = space.make(arch)
    kernel, expand = block_keys(1, 4)
    assert (shallow[kernel], shallow[expand]) == ("3", "3")  # the first choices
    arch[kernel] = "5"  # a block that does not run: the same network, the same arch
    assert space.make(arch) == shallow and str(space.make(arch)) == str(shallow)
    assert str(shallow).split("|")[0] == "k7e6-k7e6"


def test_string_round_trips_and_bad_strings_name_the_problem(space):
    rng = random.Random(1)
    for _ in range(50):
        arch = space.sample(rng)
        assert space.parse(str(arch)) == arch
    for text, words in [
        ("k3e3-k3e3|k3e3-k3e3", "2 stage groups; expected 4"),
        ("k3e3|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3", "stage 1 ('k3e3') has 1 blocks; allowed depths"),
        ("k4e3-k3e3|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3", "unknown choice '4'; allowed: 3, 5, 7"),
        ("k3x3-k3e3|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3", "expected 'k<kernel>e<expand>'"),
    ]:
        with pytest.raises(InvalidArchError, match=words.replace("(", r"\(").replace(")", r"\)")):
            space.parse(text)


@pytest.mark.parametrize("affine", [True, False])
def test_extract_equals_supernet_forward_and_counts_its_parameters(space, affine):
    net = warmed(space, affine)
    x = torch.randn(5, 1, 8, 8)
    rng = random.Random(2)
    archs = [space.largest(), space.smallest()] + [space.sample(rng) for _ in range(20)]
    with torch.no_grad():
        for arch in archs:
            sub = net.extract(arch)
            assert not sub.training
            torch.testing.assert_close(sub(x), net(x, arch), rtol=1e-5, atol=1e-5)
            assert net.param_count(arch) == count_params(sub)
    assert net.param_count(space.smallest()) < net.param_count(space.largest())


def test_backward_reaches_only_the_slices_the_path_uses(space):
    net = warmed(space).train()
    arch = dict(space.smallest())  # depth 2, kernel 3, expand 3 everywhere
    net.zero_grad()
    net(torch.randn(4, 1, 8, 8), space.make(arch)).sum().backward()
    first, unused = net.blocks[0], net.blocks[3]  # stage 1: block 1 runs, block 4 does not
    assert unused.expand.grad is None and unused.depthwise.grad is None
    hidden = first.c_in * 3
    assert first.expand.grad[:hidden].abs().sum() > 0
    assert first.expand.grad[hidden:].abs().sum() == 0  # expand 3 of 6: the rest untouched
    dw = first.depthwise.grad[:hidden]
    assert dw[:, :, 2:5, 2:5].abs().sum() > 0 and dw[:, :, :2].abs().sum() == 0  # centre 3x3


def test_a_split_keeps_every_output(space):
    torch.manual_seed(0)
    strategy = STRATEGIES["fewshot"](
        space, Macro(channels=4, in_channels=1), decisions=[depth_key(2)], split_epoch=1
    ).eval()
    x = torch.randn(3, 1, 8, 8)
    archs = [space.sample(random.Random(s)) for s in range(8)]
    with torch.no_grad():
        before = [strategy(x, a) for a in archs]
        strategy.split(0, depth_key(2), [["2"], ["3"], ["4"]])
        after = [strategy(x, a) for a in archs]
    assert strategy.num_supernets == 3
    for b, a in zip(before, after, strict=True):
        torch.testing.assert_close(a, b)


def test_train_then_search_end_to_end(tmp_path):
    overrides = ["space=mbv3", "trainer.steps_per_epoch=2", "sampler=sandwich"]
    train(compose_tiny("train", overrides), out_dir=tmp_path / "train")
    built, _ = load_trained(tmp_path / "train" / "supernet.pt", space="mbv3")
    assert built.space.name == "mbv3"
    cfg = compose_tiny(
        "search", ["space=mbv3", f"supernet.checkpoint={tmp_path / 'train' / 'supernet.pt'}"]
    )
    out = search.run(cfg, out_dir=tmp_path / "search")
    assert len(out["records"]) == 5
    assert all(built.space.parse(r["arch"]) for r in out["records"])
    assert (tmp_path / "search" / "best" / "model.pt2").is_file()


def test_costsplit_children_can_all_be_sampled(tmp_path):
    """The top parameter range may hold only the largest arch; samplers must still find it."""
    cfg = compose_tiny(
        "train", ["space=mbv3", "sharing=costsplit", "trainer.epochs=2", "sharing.split_epoch=1"]
    )
    metrics = train(cfg, out_dir=tmp_path)
    assert metrics["num_supernets"] >= 2
