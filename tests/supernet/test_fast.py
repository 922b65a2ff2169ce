"""supernet.ops.fast: the CPU execution details compute what the plain modules compute."""

from __future__ import annotations

import copy
import random

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from search.costs import flops
from supernet.models import MobileNetSupernet, Supernet
from supernet.models.macro import Macro
from supernet.ops.fast import ChannelsLast, DepthwiseConv2d, depthwise_conv, every_tap, live_taps
from supernet.spaces import build_space


@pytest.mark.parametrize("size", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("kernel", [3, 5, 7])
@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_conv_matches_the_full_kernel_with_gradients(size, kernel, stride):
    torch.manual_seed(size * 100 + kernel * 10 + stride)
    x = torch.randn(6, 12, size, size, requires_grad=True)
    w = torch.randn(12, 1, kernel, kernel, requires_grad=True)
    full = F.conv2d(x, w, stride=stride, padding=kernel // 2, groups=12)
    fast = depthwise_conv(x, w, stride)
    assert fast.shape == full.shape
    torch.testing.assert_close(fast, full, rtol=1e-5, atol=1e-6)
    g = torch.randn_like(full)
    gx_full, gw_full = torch.autograd.grad(full, (x, w), g)
    gx_fast, gw_fast = torch.autograd.grad(fast, (x, w), g)
    torch.testing.assert_close(gx_fast, gx_full, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gw_fast, gw_full, rtol=1e-5, atol=1e-6)
    dead = kernel // 2 - (live_taps(kernel, size) // 2)  # taps that only ever meet padding
    if dead:
        assert gw_fast[..., :dead, :].abs().max() == 0 and gw_fast[..., -dead:].abs().max() == 0


def test_live_taps():
    assert [live_taps(7, s) for s in (1, 2, 3, 4, 8)] == [1, 3, 5, 7, 7]
    assert live_taps(3, 1) == 1 and live_taps(3, 2) == 3


def test_every_tap_counts_the_whole_kernel():
    conv = DepthwiseConv2d(8, 8, 7, padding=3, groups=8, bias=False)
    plain = nn.Conv2d(8, 8, 7, padding=3, groups=8, bias=False)
    plain.load_state_dict(conv.state_dict())  # the same parameters and state_dict keys
    nominal = flops(plain, (8, 1, 1))
    assert flops(conv, (8, 1, 1)) == nominal == 2 * 8 * 49
    x = torch.randn(3, 8, 1, 1)
    with every_tap():
        torch.testing.assert_close(conv(x), plain(x))
    torch.testing.assert_close(conv(x), plain(x))


def test_channels_last_on_cpu_keeps_values():
    x = torch.randn(2, 3, 5, 5)
    out = ChannelsLast()(x)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out, x)
    flat = torch.randn(2, 3)
    assert ChannelsLast()(flat) is flat


def _plain(net: nn.Module) -> nn.Module:
    """``net`` with every fast module replaced by what it stands for."""
    net = copy.deepcopy(net)
    for module in net.modules():
        if isinstance(module, DepthwiseConv2d):
            module.__class__ = nn.Conv2d
        for name, child in module.named_children():
            if isinstance(child, ChannelsLast):
                setattr(module, name, nn.Identity())
    return net


@pytest.mark.parametrize("space, model", [("nb201", Supernet), ("mbv3", MobileNetSupernet)])
def test_extracted_nets_match_their_plain_twins(space, model):
    torch.manual_seed(0)
    sp = build_space(space)
    supernet = model(sp, Macro(channels=8))
    rng = random.Random(0)
    x = torch.randn(16, 1, 8, 8)
    for _ in range(5):
        arch = sp.sample(rng)
        net = supernet.extract(arch)
        plain = _plain(net)
        for mode in (True, False):  # train-mode BN (batch statistics) and eval mode
            net.train(mode), plain.train(mode)
            with torch.no_grad():
                torch.testing.assert_close(net(x), plain(x), rtol=1e-4, atol=1e-5)
        assert flops(net, (1, 8, 8)) == flops(plain, (1, 8, 8))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kernel_size": 4, "padding": 2},  # even
        {"kernel_size": 3, "padding": 0},  # not k // 2
        {"kernel_size": 3, "padding": 1, "dilation": 2},
        {"kernel_size": 3, "padding": 1, "bias": True},
        {"kernel_size": 3, "padding": 1, "padding_mode": "reflect"},
    ],
)
def test_depthwise_conv_refuses_settings_it_would_not_honour(kwargs):
    with pytest.raises(ValueError, match="plain depthwise"):
        DepthwiseConv2d(8, 8, groups=8, **kwargs)
