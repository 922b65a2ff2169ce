"""Gradient conflict between the choices of one decision, on the weights those choices share.

The measurement of GM-NAS (Hu et al., "Generalizing Few-Shot NAS with Gradient Matching", ICLR
2022), used by ``gm`` at its scheduled epochs and by ``adaptive`` at its probe cadence: for every
allowed choice of a decision, the gradient of the supernet's *shared* weights (everything except
that decision's own candidate ops) on the same batches and the same random rest-of-path (a paired
comparison); choices whose gradients point different ways fight over the shared weights. The graph
min-cut of their cosine similarities says which choices to separate.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import torch
from torch import nn

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def owned_by(param_name: str, decision: str) -> bool:
    """Whether a parameter belongs to the candidate ops of ``decision`` (not shared across it)."""
    return f".edges.{decision}.ops." in f".{param_name}"


def choice_gradient(
    module: nn.Module,
    decision: str,
    archs: Sequence[dict],
    choice: str,
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    loss_fn: LossFn,
) -> torch.Tensor:
    """The flattened gradient of the weights shared across ``decision`` when every arch of
    ``archs`` takes ``choice`` there (arch ``n`` on batch ``n mod len(batches)``)."""
    module.zero_grad(set_to_none=True)
    device = next(module.parameters()).device
    for n, base in enumerate(archs):
        arch = {**base, decision: choice}
        x, y = batches[n % len(batches)]
        loss = loss_fn(lambda xb, a=arch: module(xb, a), x.to(device), y.to(device))
        loss.backward()
    grads = [
        p.grad.flatten() if p.grad is not None else torch.zeros(p.numel(), device=p.device)
        for name, p in module.named_parameters()
        if not owned_by(name, decision)
    ]
    module.zero_grad(set_to_none=True)
    return torch.cat(grads)


def choice_similarity(
    module: nn.Module,
    decision: str,
    allowed: Sequence[str],
    archs: Sequence[dict],
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    loss_fn: LossFn,
) -> torch.Tensor:
    """``len(allowed)`` x ``len(allowed)`` cosine similarities of the choices' shared gradients.
    BatchNorm running statistics are restored afterwards, so measuring moves no weight or buffer."""
    buffers = {name: b.clone() for name, b in module.named_buffers()}
    was_training = module.training
    module.train()
    try:
        vectors = torch.stack(
            [choice_gradient(module, decision, archs, c, batches, loss_fn) for c in allowed]
        )
    finally:
        with torch.no_grad():
            for name, b in module.named_buffers():
                b.copy_(buffers[name])
        module.train(was_training)
    vectors = nn.functional.normalize(vectors, dim=1)
    return vectors @ vectors.T


def min_normalized_cut(sim: torch.Tensor) -> tuple[list[int], list[int], float]:
    """Exact bipartition of a small similarity graph minimising the normalised cut.

    Weights are ``(1 + cos) / 2`` so they are non-negative. Returns (group A, group B, mean cosine
    similarity across the cut)."""
    k = sim.shape[0]
    if k > 12:
        raise ValueError(f"exact min-cut supports up to 12 choices, got {k}")
    w = (1 + sim) / 2
    w.fill_diagonal_(0)
    degree = w.sum(1)
    best = None
    for r in range(1, k // 2 + 1):
        for group in itertools.combinations(range(k), r):
            if r == k - r and 0 not in group:
                continue  # the same bipartition seen from the other side
            a = list(group)
            b = [i for i in range(k) if i not in group]
            cut = w[a][:, b].sum()
            ncut = cut / degree[a].sum().clamp_min(1e-12) + cut / degree[b].sum().clamp_min(1e-12)
            if best is None or ncut < best[0]:
                best = (ncut.item(), a, b, sim[a][:, b].mean().item())
    return best[1], best[2], best[3]
