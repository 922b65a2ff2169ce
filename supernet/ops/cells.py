"""NB201 cells: the per-choice supernet cell and the fixed cell an extracted network holds."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from supernet.ops.nb201_ops import make_op
from supernet.ops.parts import copy_part
from supernet.spaces.nb201 import EDGES, NB201_OPS, NUM_NODES, edge_name


class MixedEdge(nn.Module):
    """Per-choice weight sharing: every candidate op has its own weights, shared by all paths
    that pick it (SPOS, Guo et al. 2020). ``active(choice)`` is the one slicing function used by
    both ``forward`` and extraction, so the two cannot drift apart."""

    def __init__(self, channels: int, ops: list[str] = NB201_OPS, affine: bool = True) -> None:
        super().__init__()
        self.ops = nn.ModuleDict({name: make_op(name, channels, affine) for name in ops})

    def active(self, choice: str) -> nn.Module:
        return self.ops[choice]

    def forward(self, x: torch.Tensor, choice: str) -> torch.Tensor:
        return self.active(choice)(x)


class SuperCell(nn.Module):
    """A 4-node NB201 cell whose 6 edges are ``MixedEdge``s; node j = sum_i edge_{j,i}(node i)."""

    def __init__(self, channels: int, affine: bool = True) -> None:
        super().__init__()
        self.edges = nn.ModuleDict(
            {edge_name(j, i): MixedEdge(channels, affine=affine) for j, i in EDGES}
        )

    def forward(self, x: torch.Tensor, arch: Mapping[str, str]) -> torch.Tensor:
        """Without autograd, ``none`` edges are skipped instead of multiplied by zero: the same
        sums (adding a zero changes no bit), without their work. With autograd they stay, so the
        ops of a path's dead ends keep getting zero gradients (and weight decay) as they always
        did in training."""
        skip = "none" if not torch.is_grad_enabled() else None
        nodes = [x]
        for j in range(1, NUM_NODES):
            terms = [
                self.edges[edge_name(j, i)](nodes[i], arch[edge_name(j, i)])
                for i in range(j)
                if arch[edge_name(j, i)] != skip
            ]
            nodes.append(sum(terms) if terms else torch.zeros_like(x))
        return nodes[-1]

    def extract(self, arch: Mapping[str, str], parts: dict | None = None) -> FixedCell:
        """A standalone cell holding copies of the chosen ops (``none`` edges are dropped).
        ``parts``: a memo (edge, op) -> copy, so that cells extracted with it share their op
        copies instead of copying the weights again (the evaluator's scratch nets)."""
        kept = {}
        for name, edge in self.edges.items():
            if arch[name] != "none":
                kept[name] = copy_part(parts, (name, arch[name]), edge.active(arch[name]))
        return FixedCell(kept)


class FixedCell(nn.Module):
    """A cell with one op per kept edge; nodes without inputs are zeros (as ``none`` gives)."""

    def __init__(self, ops: dict[str, nn.Module]) -> None:
        super().__init__()
        self.ops = nn.ModuleDict(ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for j in range(1, NUM_NODES):
            terms = [
                self.ops[edge_name(j, i)](nodes[i]) for i in range(j) if edge_name(j, i) in self.ops
            ]
            nodes.append(sum(terms) if terms else torch.zeros_like(x))
        return nodes[-1]
