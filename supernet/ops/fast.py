"""How nets run: the same function, computed where the kernels are fast.

- ``ChannelsLast``, the last module of every stem: on CPU, activations from there on are
  channels-last (NHWC), where oneDNN's convolutions, pooling and BatchNorm run several times
  faster than on NCHW for the small images sharenas trains on (``bench/throughput.py``). The
  values are those of NCHW up to float rounding (a different summation order). Other devices
  are left as they are: on CUDA, NCHW was faster in ``bench/gpu.py``.
- ``depthwise_conv`` (``DepthwiseConv2d`` in extracted nets; on every device): a centred k x k
  kernel on an input smaller than the kernel has taps that only ever meet zero padding (a 7x7
  kernel on a 1x1 map has 48 of 49). They add exact zeros, so the conv runs with the taps that
  can meet data only, at the same output size. oneDNN's depthwise convolution is slowest
  exactly there: a 672-channel 5x5 depthwise conv on 1x1 maps took 68 ms for 359 images,
  against well under 1 ms for the 1x1 kernel that computes the same thing.
- ``every_tap()``: FLOPs are the arch's, not the execution's. ``search.costs`` counts FLOPs
  inside it, so a kernel counts all its taps, as published FLOP counts do. Latency is measured
  as the net runs, cropped and channels-last (latency tables are of format 2 since).

The crop reads the input's height and width, so a traced or exported extracted mbv3 net is
specialised to its input size, as ``search.export`` exports it (dynamic batch only).
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

_EVERY_TAP = contextvars.ContextVar("sharenas_every_tap", default=False)


@contextmanager
def every_tap() -> Iterator[None]:
    """Run every kernel tap inside (``depthwise_conv`` crops nothing): for counting FLOPs."""
    token = _EVERY_TAP.set(True)
    try:
        yield
    finally:
        _EVERY_TAP.reset(token)


def cpu_channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` itself, or on CPU a 4-D ``x`` in channels-last memory format (the same values)."""
    if x.device.type == "cpu" and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


torch.fx.wrap("cpu_channels_last")  # one node to torch.fx: it reads the device, not the values


class ChannelsLast(nn.Module):
    """``cpu_channels_last`` as a module (the last of every stem)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return cpu_channels_last(x)


def live_taps(kernel: int, size: int) -> int:
    """How many of a centred ``kernel``'s taps along one axis (padding ``kernel // 2``) can meet
    data on an input of ``size`` along it: output position o reads input o * stride + d for
    offsets |d| <= kernel // 2, so only |d| <= size - 1 ever lands inside."""
    return min(kernel, 2 * size - 1)


def depthwise_conv(x: torch.Tensor, weight: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """``F.conv2d(x, weight, stride=stride, padding=k // 2, groups=channels)`` for an odd
    ``k x k`` depthwise ``weight``, computed with the taps that can meet data only (the same
    output shape; the dropped taps contribute exact zeros)."""
    k = weight.shape[-1]
    kh, kw = live_taps(k, x.shape[-2]), live_taps(k, x.shape[-1])
    if (kh, kw) != (k, k) and not _EVERY_TAP.get():
        top, left = (k - kh) // 2, (k - kw) // 2
        weight = weight[..., top : top + kh, left : left + kw]
    else:
        kh = kw = k
    return F.conv2d(x, weight, None, stride, (kh // 2, kw // 2), 1, weight.shape[0])


class DepthwiseConv2d(nn.Conv2d):
    """A depthwise ``nn.Conv2d`` (odd square kernel, padding ``k // 2``, equal strides, no bias,
    zero padding) that runs through ``depthwise_conv``; its parameters and ``state_dict`` are
    those of ``nn.Conv2d``. Other settings are refused: ``forward`` would not honour them."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        k = self.kernel_size[0]
        plain = (
            self.kernel_size == (k, k)
            and k % 2 == 1
            and self.padding == (k // 2, k // 2)
            and self.stride[0] == self.stride[1]
            and self.dilation == (1, 1)
            and self.bias is None
            and self.padding_mode == "zeros"
            and self.groups == self.in_channels == self.out_channels
        )
        if not plain:
            raise ValueError(f"DepthwiseConv2d supports plain depthwise convs only, got {self}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return depthwise_conv(x, self.weight, self.stride[0])


__all__ = [
    "ChannelsLast",
    "cpu_channels_last",
    "DepthwiseConv2d",
    "depthwise_conv",
    "every_tap",
    "live_taps",
]
