"""Supernet and standalone networks for cell spaces (NAS-Bench-201 macro skeleton).

Skeleton: stem conv -> N cells (C) -> ResBlock -> N cells (2C) -> ResBlock -> N cells (4C)
-> BN-ReLU -> global pool -> linear. ``Supernet.forward(x, arch)`` runs exactly the sub-path
``arch``; ``Supernet.extract(arch)`` returns a plain ``StandaloneNet`` with copied weights.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from supernet.errors import UnknownNameError
from supernet.ops.cells import FixedCell, SuperCell
from supernet.ops.nb201_ops import ResBlock
from supernet.spaces.base import Space


@dataclass(frozen=True)
class Macro:
    """Macro skeleton shared by the supernet and every standalone net built from it."""

    channels: int = 16  # C of the first stage; doubled at each reduction (NB201 uses 16)
    cells_per_stage: int = 1  # N; NB201 uses 5, small values keep CPU runs fast
    in_channels: int = 1  # image channels of the dataset
    num_classes: int = 10
    # learnable BN scale/shift in the cells and reduction blocks. NB201's and DARTS's search
    # supernets turn it off: one shared gamma/beta per op is fitted to the mix of all paths
    bn_affine: bool = True


def _stem(m: Macro) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(m.in_channels, m.channels, 3, padding=1, bias=False), nn.BatchNorm2d(m.channels)
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


class _CellNet(nn.Module):
    """The macro skeleton; ``blocks`` is a list of cells and reduction blocks in order."""

    def __init__(self, macro: Macro, blocks: list[nn.Module], stem: nn.Module, head: nn.Module):
        super().__init__()
        self.macro = macro
        self.stem = stem
        self.blocks = nn.ModuleList(blocks)
        self.head = head


class Supernet(_CellNet):
    """Per-choice weight-sharing supernet over a cell space (one-shot NB201 supernet)."""

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

    def extract(self, arch: Mapping[str, str]) -> StandaloneNet:
        """A plain network holding copies of exactly the weights ``arch`` inherits."""
        blocks = [
            b.extract(arch) if isinstance(b, SuperCell) else copy.deepcopy(b) for b in self.blocks
        ]
        net = StandaloneNet(self.macro, blocks, copy.deepcopy(self.stem), copy.deepcopy(self.head))
        net.arch = str(arch)
        net.train(self.training)
        return net


class StandaloneNet(_CellNet):
    """A fixed network (no arch argument): what ``extract`` returns and what ground truth trains."""

    arch: str = ""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def standalone_from_scratch(space: Space, macro: Macro, arch: Mapping[str, str]) -> StandaloneNet:
    """A freshly initialised standalone net for ``arch`` (for ground-truth training)."""
    return Supernet(space, macro).extract(arch)


_BUILDERS: dict[str, Callable[[Space, Macro], nn.Module]] = {"nb201": Supernet}


def register_supernet(space_name: str) -> Callable[[type], type]:
    """Register the supernet class of a space (``forward(x, arch)``, ``extract(arch)``,
    ``param_count(arch)``)."""

    def deco(cls: type) -> type:
        _BUILDERS[space_name] = cls
        return cls

    return deco


def build_supernet(space: Space, macro: Macro) -> Supernet:
    """Build the supernet for a registered space."""
    if space.name not in _BUILDERS:
        raise UnknownNameError("supernet for space", space.name, _BUILDERS)
    return _BUILDERS[space.name](space, macro)


__all__ = ["FixedCell", "Macro", "StandaloneNet", "Supernet", "build_supernet"]


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


from supernet import mobilenet  # noqa: E402,F401  (registers the mbv3 supernet)
