"""``costsplit``: few-shot along cost. One sub-supernet per equal-width parameter-count bin.

Few-shot NAS splits on one decision, so every child still mixes cheap and expensive paths. Here,
at ``split_epoch``, the supernet is split into ``bins`` children by the parameter count of the
path, in equal-width ranges between the smallest and the largest path. Children start as exact
copies of the parent (with its optimizer state); afterwards each only trains, and only scores,
paths of similar size, so weights are shared among comparable paths. With ``train_all_leaves``
every child trains a path at every step. On the fidelity benchmark it does not beat one-shot
``cost_binned`` (``bench/README.md``).

Leaves are cost ranges (``supernet.leaf.PARAMS_KEY``); routing uses the strategy's memoised
parameter count, so the evaluator and every searcher get the right weight set for any arch.
"""

from __future__ import annotations

import random

from torch import nn

from supernet.errors import check_int
from supernet.leaf import PARAMS_KEY, Leaf
from supernet.models import Macro
from supernet.sharing.base import SharingStrategy, SplitContext, register_strategy
from supernet.spaces.base import Space


@register_strategy
class CostSplitSharing(SharingStrategy):
    """Split once, at ``split_epoch``, into ``bins`` parameter-count ranges (empty ones merged)."""

    name = "costsplit"

    def __init__(
        self,
        space: Space,
        macro: Macro,
        split_epoch: int = 1,
        bins: int = 5,
        pool_size: int = 2000,
        train_all_leaves: bool = True,
    ) -> None:
        super().__init__(space, macro)
        self.split_epoch = check_int("sharing.split_epoch", split_epoch, 1)
        self.bins = check_int("sharing.bins", bins, 2)
        self.pool_size = check_int("sharing.pool_size", pool_size, 1)
        self.train_all_leaves = train_all_leaves

    def cost_ranges(self) -> list[Leaf]:
        """The children's leaves: equal-width ``[low, high)`` ranges over the parameter counts of
        a seeded pool of paths (plus the largest and smallest where the space defines them);
        ranges that hold no pooled path are merged into their neighbour. A range may still own
        few archs (on NB201 the top one of 5 holds the 25 paths with 5-6 conv3x3 edges)."""
        rng = random.Random(104729)  # fixed: the ranges are part of the strategy, not of a run
        pool = [self.space.sample(rng) for _ in range(self.pool_size)] + self.space.extremes()
        costs = sorted({self.param_count(a) for a in pool})
        low, high = costs[0], costs[-1] + 1
        width = (high - low) / self.bins
        edges = [low + k * width for k in range(self.bins)] + [high]
        ranges: list[list[float]] = []
        for a, b in zip(edges, edges[1:], strict=False):
            if any(a <= c < b for c in costs):
                ranges.append([float(a), float(b)])
            elif ranges:
                ranges[-1][1] = float(b)
        ranges[0][0] = 0.0
        ranges[-1][1] = float("inf")  # no path of any size is left without an owner
        return [{PARAMS_KEY: r} for r in ranges]

    def split_schedule(self) -> list[int]:
        return [self.split_epoch]

    def maybe_split(self, ctx: SplitContext) -> list[tuple[nn.Parameter, nn.Parameter]]:
        if self.history or ctx.epoch != self.split_epoch:
            return []
        children = self.cost_ranges()
        if len(children) < 2:
            ctx.log("costsplit: every pooled path has the same parameter count; no split")
            return []
        ranges = [c[PARAMS_KEY] for c in children]
        record = {"decision": PARAMS_KEY, "groups": ranges, "epoch": ctx.epoch}
        pairs = self.replace_leaf(0, children, record)
        text = ", ".join(f"[{lo:g}, {hi:g})" for lo, hi in ranges)
        ctx.log(f"costsplit: split by parameter count into {self.num_supernets} parts: {text}")
        return pairs
