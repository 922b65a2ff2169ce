"""The NB201 supernet as one static graph: the arch is data, not Python control flow.

``StaticSupernet(supernet)(x, codes)`` runs the path whose op index per edge is the integer tensor
``codes`` (``encode(arch)``; edges in ``EDGES`` order, ops in ``NB201_OPS`` order). Every edge runs
all its candidate ops and a one-hot weight picks one: ``sum_k onehot[k] * op_k(x)``, in which the
picked term is multiplied by exactly 1 and the others by exactly 0, so the output and the
gradients of the path's weights are those of ``supernet(x, arch)`` (tested on CPU against the
eager path and the extracted net). The graph is the same for every arch, so CUDA graphs and
``torch.compile`` capture it once (``bench/gpu.py``). It holds no weights of its own: it shares
the supernet's modules.

Where it differs from the eager path, by design:
- every candidate op computes (the all-candidates cost: about 2.5x the FLOPs of an average
  path), traded for one graph and no host synchronisation per step;
- the BN running statistics of the candidates a path does not pick are put back after each
  training forward (``torch.where`` on the one-hot), so they move as in eager training;
- candidates off the path get zero gradients, not ``None``: an optimizer with momentum or weight
  decay moves them, unlike in eager training, unless its step is masked.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from supernet.models import Supernet
from supernet.ops import fast
from supernet.ops.cells import SuperCell
from supernet.spaces.nb201 import EDGES, NB201_OPS, NUM_NODES, edge_name

EDGE_NAMES = [edge_name(j, i) for j, i in EDGES]


def encode(arch: Mapping[str, str], device: torch.device | str | None = None) -> torch.Tensor:
    """The op index of each edge of ``arch`` (``EDGES`` order), an int64 tensor."""
    return torch.tensor([NB201_OPS.index(arch[e]) for e in EDGE_NAMES], device=device)


class StaticSupernet(nn.Module):
    """One graph for every path of an NB201 ``Supernet`` (shares its weights)."""

    def __init__(self, supernet: Supernet) -> None:
        super().__init__()
        self.net = supernet
        self._edge_index = {name: k for k, name in enumerate(EDGE_NAMES)}
        self._bns = self._candidate_bns()
        self.register_buffer("op_ids", torch.arange(len(NB201_OPS)), persistent=False)

    def forward(self, x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        # [edges, ops]; a comparison, not F.one_hot, whose checks could synchronise with the host
        onehot = (codes.unsqueeze(1) == self.op_ids).to(x.dtype)
        saved = self._save_bn() if self.training else None
        x = self.net.stem(x)
        for block in self.net.blocks:
            x = self._cell(block, x, onehot) if isinstance(block, SuperCell) else block(x)
        out = self.net.head(x)
        if saved is not None:
            self._restore_bn(saved, onehot)
        return out

    def _cell(self, cell: SuperCell, x: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for j in range(1, NUM_NODES):
            terms = []
            for i in range(j):
                name = edge_name(j, i)
                ops = cell.edges[name].ops
                weights = onehot[self._edge_index[name]]
                outs = torch.stack([ops[op](nodes[i]) for op in NB201_OPS])
                # the eager path's layout (a reduction returns NCHW): the same kernels after it
                terms.append(fast.cpu_channels_last((outs * weights.view(-1, 1, 1, 1, 1)).sum(0)))
            nodes.append(sum(terms))
        return nodes[-1]

    def _candidate_bns(self) -> list[tuple[int, int, nn.BatchNorm2d]]:
        """(edge index, op index, BN) of every candidate op's BN in the cells."""
        found = []
        for block in self.net.blocks:
            if isinstance(block, SuperCell):
                for name, edge in block.edges.items():
                    for op_index, op in enumerate(NB201_OPS):
                        for m in edge.ops[op].modules():
                            if isinstance(m, nn.BatchNorm2d):
                                found.append((self._edge_index[name], op_index, m))
        return found

    def _save_bn(self) -> list:
        """Give every candidate BN scratch copies of its running statistics for this forward
        (autograd keeps the tensors batch_norm was given, so those must not change before the
        backward pass; the scratch copies do not change after it)."""
        saved = []
        for e, k, bn in self._bns:
            saved.append(
                (e, k, bn, bn.running_mean, bn.running_var, bn.num_batches_tracked.clone())
            )
            bn.running_mean, bn.running_var = bn.running_mean.clone(), bn.running_var.clone()
        return saved

    @staticmethod
    def _restore_bn(saved: list, onehot: torch.Tensor) -> None:
        """Keep the new statistics of the BNs whose op the path picks, the old ones elsewhere."""
        with torch.no_grad():
            for e, k, bn, mean, var, count in saved:
                picked = onehot[e, k] > 0
                mean.copy_(torch.where(picked, bn.running_mean, mean))
                var.copy_(torch.where(picked, bn.running_var, var))
                bn.num_batches_tracked.copy_(torch.where(picked, bn.num_batches_tracked, count))
                bn.running_mean, bn.running_var = mean, var
