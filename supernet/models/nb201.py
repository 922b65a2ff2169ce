"""The NB201 supernet (per-choice sharing over a cell space) in the NAS-Bench-201 macro skeleton.

Skeleton: stem conv -> N cells (C) -> ResBlock -> N cells (2C) -> ResBlock -> N cells (4C)
-> BN-ReLU -> global pool -> linear. ``Supernet.forward(x, arch)`` runs exactly the sub-path
``arch``; ``Supernet.extract(arch)`` returns a plain ``StandaloneNet`` with copied weights.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from supernet.models.macro import Macro, MacroNet, StandaloneNet, count_params
from supernet.models.registry import register_supernet
from supernet.ops.cells import SuperCell
from supernet.ops.fast import ChannelsLast
from supernet.ops.nb201_ops import ResBlock
from supernet.ops.parts import copy_part, sub_memo
from supernet.spaces.base import Space


def _stem(m: Macro) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(m.in_channels, m.channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(m.channels),
        ChannelsLast(),
    )


def _head(m: Macro) -> nn.Module:
    c = m.channels * 4
    return nn.Sequential(
        nn.BatchNorm2d(c),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(c, m.num_classes),
    )


@register_supernet
class Supernet(MacroNet):
    """Per-choice weight-sharing supernet over a cell space (one-shot NB201 supernet)."""

    space_name = "nb201"

    def __init__(self, space: Space, macro: Macro) -> None:
        blocks: list[nn.Module] = []
        c = macro.channels
        for stage in range(3):
            if stage:
                blocks.append(ResBlock(c, 2 * c, macro.bn_affine))
                c *= 2
            blocks.extend(SuperCell(c, macro.bn_affine) for _ in range(macro.cells_per_stage))
        super().__init__(macro, blocks, _stem(macro), _head(macro))
        self.space = space

    def forward(self, x: torch.Tensor, arch: Mapping[str, str]) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = block(x, arch) if isinstance(block, SuperCell) else block(x)
        return self.head(x)

    def param_count(self, arch: Mapping[str, str]) -> int:
        """Parameters of the path ``arch`` (equal to ``count_params(self.extract(arch))``) without
        copying any weight."""
        total = count_params(self.stem) + count_params(self.head)
        for block in self.blocks:
            if isinstance(block, SuperCell):
                total += sum(count_params(e.active(arch[n])) for n, e in block.edges.items())
            else:
                total += count_params(block)
        return total

    def extract(self, arch: Mapping[str, str], parts: dict | None = None) -> StandaloneNet:
        """A plain network holding copies of exactly the weights ``arch`` inherits. With a
        ``parts`` memo (``supernet.ops.parts``), nets extracted with it share their copies."""
        blocks = [
            b.extract(arch, sub_memo(parts, i))
            if isinstance(b, SuperCell)
            else copy_part(parts, i, b)
            for i, b in enumerate(self.blocks)
        ]
        stem, head = copy_part(parts, "stem", self.stem), copy_part(parts, "head", self.head)
        net = StandaloneNet(self.macro, blocks, stem, head)
        net.arch = str(arch)
        net.train(self.training)
        return net


__all__ = ["Supernet"]
