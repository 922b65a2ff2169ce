"""The elastic MobileNetV3-style supernet of the ``mbv3`` space, and its extraction.

Skeleton (sized for the small images sharenas trains on): 3x3 stem (C channels, stride 1) ->
4 stages of up to 4 elastic MBConv blocks (widths 3C/2, 5C/2, 5C, 7C; the first block of the
first three stages has stride 2; ReLU in the first two stages, Hardswish after, as MobileNetV3) ->
1x1 conv to 8C -> BN -> Hardswish -> global pool -> linear. C = ``space.macro.channels``;
``cells_per_stage`` does not apply (depth is a decision). No squeeze-and-excitation.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from supernet.models.macro import Macro, MacroNet, StandaloneNet, count_params
from supernet.models.registry import register_supernet
from supernet.ops.fast import ChannelsLast
from supernet.ops.mbconv import ElasticMBConv
from supernet.ops.parts import copy_part
from supernet.spaces.base import Space
from supernet.spaces.mbv3 import MAX_DEPTH, STAGES, block_keys, depth_key

WIDTHS = (1.5, 2.5, 5.0, 7.0)  # x C, per stage
STRIDES = (2, 2, 2, 1)
ACTS: tuple[type[nn.Module], ...] = (nn.ReLU, nn.ReLU, nn.Hardswish, nn.Hardswish)


def _stem(m: Macro) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(m.in_channels, m.channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(m.channels),
        nn.Hardswish(),
        ChannelsLast(),
    )


def _head(m: Macro, c_in: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(c_in, 8 * m.channels, 1, bias=False),
        nn.BatchNorm2d(8 * m.channels),
        nn.Hardswish(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8 * m.channels, m.num_classes),
    )


@register_supernet
class MobileNetSupernet(MacroNet):
    """Every arch of ``mbv3``: stage s runs its first ``depth`` blocks at their (kernel, expand)."""

    space_name = "mbv3"

    def __init__(self, space: Space, macro: Macro) -> None:
        blocks: list[nn.Module] = []
        c_in = macro.channels
        for s in range(STAGES):
            c_out = max(1, round(WIDTHS[s] * macro.channels))
            for b in range(MAX_DEPTH):
                stride = STRIDES[s] if b == 0 else 1
                blocks.append(ElasticMBConv(c_in, c_out, stride, ACTS[s], affine=macro.bn_affine))
                c_in = c_out
        super().__init__(macro, blocks, _stem(macro), _head(macro, c_in))
        self.space = space

    def _active(self, arch: Mapping[str, str]) -> list[tuple[ElasticMBConv, int, int]]:
        """(block, kernel, expand) of the blocks ``arch`` runs, in order."""
        out = []
        for s in range(STAGES):
            for b in range(int(arch[depth_key(s + 1)])):
                kernel, expand = block_keys(s + 1, b + 1)
                block = self.blocks[s * MAX_DEPTH + b]
                out.append((block, int(arch[kernel]), int(arch[expand])))
        return out

    def forward(self, x: torch.Tensor, arch: Mapping[str, str]) -> torch.Tensor:
        x = self.stem(x)
        for block, kernel, expand in self._active(arch):
            x = block(x, kernel, expand)
        return self.head(x)

    def param_count(self, arch: Mapping[str, str]) -> int:
        """Parameters of ``extract(arch)`` without copying any weight."""
        blocks = sum(block.param_count(k, e) for block, k, e in self._active(arch))
        return count_params(self.stem) + count_params(self.head) + blocks

    def extract(self, arch: Mapping[str, str], parts: dict | None = None) -> StandaloneNet:
        """A plain network holding copies of exactly the slices ``arch`` uses. With a ``parts``
        memo (``supernet.ops.parts``), nets extracted with it share their copies."""
        where = {id(b): i for i, b in enumerate(self.blocks)}  # keys that survive pickling
        blocks = [
            copy_part(parts, (where[id(b)], k, e), make=lambda b=b, k=k, e=e: b.extract(k, e))
            for b, k, e in self._active(arch)
        ]
        stem, head = copy_part(parts, "stem", self.stem), copy_part(parts, "head", self.head)
        net = StandaloneNet(self.macro, blocks, stem, head)
        net.arch = str(arch)
        net.train(self.training)
        return net
