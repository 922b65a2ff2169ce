"""Elastic inverted-residual block (MobileNetV2/V3 MBConv) with weight slicing, and the plain block
an extracted network holds.

One set of weights at the largest size (expand 6, kernel 7) serves every setting, as in
Once-for-All: expand ratio e uses the first ``c_in * e`` hidden channels, kernel k the centre
k x k of the depthwise kernel. BatchNorm is sliced the same way (its running statistics too), so
``extract`` copies exactly the slices ``forward`` uses, and the two agree.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from supernet.ops.fast import DepthwiseConv2d, depthwise_conv


def _bn(x: torch.Tensor, bn: nn.BatchNorm2d, channels: int) -> torch.Tensor:
    """``bn`` on the first ``channels`` channels (statistics updated in place on the slices)."""
    weight = bn.weight[:channels] if bn.affine else None
    bias = bn.bias[:channels] if bn.affine else None
    return F.batch_norm(
        x,
        bn.running_mean[:channels],
        bn.running_var[:channels],
        weight,
        bias,
        bn.training,
        bn.momentum,
        bn.eps,
    )


def _sliced_bn(bn: nn.BatchNorm2d, channels: int) -> nn.BatchNorm2d:
    out = nn.BatchNorm2d(channels, eps=bn.eps, momentum=bn.momentum, affine=bn.affine)
    with torch.no_grad():
        out.running_mean.copy_(bn.running_mean[:channels])
        out.running_var.copy_(bn.running_var[:channels])
        out.num_batches_tracked.copy_(bn.num_batches_tracked)
        if bn.affine:
            out.weight.copy_(bn.weight[:channels])
            out.bias.copy_(bn.bias[:channels])
    return out


def _conv(weight: torch.Tensor, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    c_out, c_in_per_group, k, _ = weight.shape
    kind = DepthwiseConv2d if groups > 1 else nn.Conv2d
    conv = kind(
        c_in_per_group * groups, c_out, k, stride, padding=k // 2, groups=groups, bias=False
    )
    with torch.no_grad():
        conv.weight.copy_(weight)
    return conv


class ElasticMBConv(nn.Module):
    """1x1 expand -> BN -> act -> k x k depthwise (stride) -> BN -> act -> 1x1 project -> BN
    (+ input when stride 1 and widths match), at any (kernel, expand) up to the maxima."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        stride: int,
        act: type[nn.Module],
        max_kernel: int = 7,
        max_expand: int = 6,
        affine: bool = True,
    ) -> None:
        super().__init__()
        hidden = c_in * max_expand
        self.c_in, self.c_out, self.stride, self.max_kernel = c_in, c_out, stride, max_kernel
        self.residual = stride == 1 and c_in == c_out
        self.expand = nn.Parameter(torch.empty(hidden, c_in, 1, 1))
        self.depthwise = nn.Parameter(torch.empty(hidden, 1, max_kernel, max_kernel))
        self.project = nn.Parameter(torch.empty(c_out, hidden, 1, 1))
        for w in (self.expand, self.depthwise, self.project):
            nn.init.kaiming_normal_(w, mode="fan_out")
        self.bn1 = nn.BatchNorm2d(hidden, affine=affine)
        self.bn2 = nn.BatchNorm2d(hidden, affine=affine)
        self.bn3 = nn.BatchNorm2d(c_out, affine=affine)
        self.act = act()

    def _weights(self, kernel: int, expand: int) -> tuple[torch.Tensor, ...]:
        hidden = self.c_in * expand
        lo = (self.max_kernel - kernel) // 2
        depthwise = self.depthwise[:hidden, :, lo : lo + kernel, lo : lo + kernel]
        return self.expand[:hidden], depthwise, self.project[:, :hidden]

    def forward(self, x: torch.Tensor, kernel: int, expand: int) -> torch.Tensor:
        hidden = self.c_in * expand
        w1, w2, w3 = self._weights(kernel, expand)
        h = self.act(_bn(F.conv2d(x, w1), self.bn1, hidden))
        h = depthwise_conv(h, w2, self.stride)
        h = self.act(_bn(h, self.bn2, hidden))
        h = _bn(F.conv2d(h, w3), self.bn3, self.c_out)
        return h + x if self.residual else h

    def extract(self, kernel: int, expand: int) -> MBConv:
        """A plain block holding copies of the slices this setting uses."""
        hidden = self.c_in * expand
        w1, w2, w3 = (w.detach() for w in self._weights(kernel, expand))
        body = nn.Sequential(
            _conv(w1),
            _sliced_bn(self.bn1, hidden),
            type(self.act)(),
            _conv(w2, self.stride, groups=hidden),
            _sliced_bn(self.bn2, hidden),
            type(self.act)(),
            _conv(w3),
            _sliced_bn(self.bn3, self.c_out),
        )
        return MBConv(body, self.residual)

    def param_count(self, kernel: int, expand: int) -> int:
        """Parameters of ``extract(kernel, expand)`` without building it."""
        hidden = self.c_in * expand
        bn = 2 if self.bn1.affine else 0
        return (
            hidden * self.c_in
            + bn * hidden
            + hidden * kernel * kernel
            + bn * hidden
            + self.c_out * hidden
            + bn * self.c_out
        )


class MBConv(nn.Module):
    """A fixed inverted-residual block (what ``ElasticMBConv.extract`` returns)."""

    def __init__(self, body: nn.Sequential, residual: bool) -> None:
        super().__init__()
        self.body, self.residual = body, residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return out + x if self.residual else out
