"""The macro skeleton every model of sharenas shares: stem -> blocks -> head.

``Macro`` holds the sizes; ``MacroNet`` the three parts; ``StandaloneNet`` is the plain network
(no arch argument) that ``extract(arch)`` returns and that ground truth trains.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


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


class MacroNet(nn.Module):
    """The macro skeleton; ``blocks`` is a list of cells and reduction blocks in order."""

    def __init__(self, macro: Macro, blocks: list[nn.Module], stem: nn.Module, head: nn.Module):
        super().__init__()
        self.macro = macro
        self.stem = stem
        self.blocks = nn.ModuleList(blocks)
        self.head = head


class StandaloneNet(MacroNet):
    """A fixed network (no arch argument): what ``extract`` returns and what ground truth trains."""

    arch: str = ""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def count_params(module: nn.Module) -> int:
    """Number of parameters of ``module``."""
    return sum(p.numel() for p in module.parameters())


__all__ = ["Macro", "MacroNet", "StandaloneNet", "count_params"]
