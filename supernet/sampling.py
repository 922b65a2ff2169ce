"""Path samplers: which sub-paths one training step trains. Each owns a seeded ``random.Random``.

- ``uniform``: one uniformly random path per step (SPOS, Guo et al. 2020).
- ``sandwich``: largest + smallest + ``n_random`` random paths per step, optionally with in-place
  distillation from the largest (BigNAS, Yu et al. 2020; AttentiveNAS).
- ``fair``: every choice of every decision trained exactly once per step (FairNAS).
- ``cost_binned``: pick a cost bin uniformly, then a path in it, so cheap and expensive paths are
  trained alike (costs from a callable, e.g. parameter count).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from supernet.arch import Arch
from supernet.errors import SharenasError
from supernet.spaces.base import Space


class PathSampler:
    """Base class: ``paths()`` returns the archs of one training step."""

    name = "base"
    distill = False  # whether non-first paths learn from the first path's soft outputs

    def __init__(self, space: Space, seed: int = 0) -> None:
        self.space = space
        self.rng = random.Random(seed)

    def paths(self) -> list[Arch]:
        raise NotImplementedError

    def state_dict(self) -> dict:
        version, internal, gauss = self.rng.getstate()
        return {"rng": [version, list(internal), gauss]}

    def load_state_dict(self, state: dict) -> None:
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))


class UniformSampler(PathSampler):
    """One uniformly random path per step."""

    name = "uniform"

    def paths(self) -> list[Arch]:
        return [self.space.sample(self.rng)]


class SandwichSampler(PathSampler):
    """Largest + smallest + ``n_random`` random paths per step (the sandwich rule)."""

    name = "sandwich"

    def __init__(
        self, space: Space, seed: int = 0, n_random: int = 2, distill: bool = False
    ) -> None:
        super().__init__(space, seed)
        if n_random < 0:
            raise SharenasError(f"sampler.n_random must be >= 0, got {n_random}")
        self.n_random = n_random
        self.distill = distill

    def paths(self) -> list[Arch]:
        return [self.space.largest(), self.space.smallest()] + [
            self.space.sample(self.rng) for _ in range(self.n_random)
        ]


class CostBinnedSampler(PathSampler):
    """Uniform over ``bins`` equal-population cost bins of a pool of ``pool_size`` archs."""

    name = "cost_binned"

    def __init__(
        self,
        space: Space,
        seed: int = 0,
        bins: int = 5,
        pool_size: int = 2000,
        cost_fn: Callable[[Arch], float] | None = None,
    ) -> None:
        super().__init__(space, seed)
        if bins < 1:
            raise SharenasError(f"sampler.bins must be >= 1, got {bins}")
        if cost_fn is None:
            raise SharenasError("cost_binned needs a cost_fn (the trainer passes parameter count)")
        pool_rng = random.Random(seed + 7919)
        pool = sorted({space.sample(pool_rng) for _ in range(pool_size)}, key=str)
        pool.sort(key=cost_fn)
        size = len(pool)
        self.bins = [pool[b * size // bins : (b + 1) * size // bins] for b in range(bins)]
        self.bins = [b for b in self.bins if b]

    def paths(self) -> list[Arch]:
        return [self.rng.choice(self.rng.choice(self.bins))]


class FairSampler(PathSampler):
    """Strict fairness (FairNAS, Chu et al., ICCV 2021): each step trains K paths built from a
    random permutation of every decision's choices, so every choice of every decision is trained
    exactly once per optimizer step (K = the largest number of choices of a decision)."""

    name = "fair"

    def paths(self) -> list[Arch]:
        choices = self.space.choices()
        k = max(len(c) for c in choices.values())
        columns = {}
        for decision, options in choices.items():
            perm = list(options) * (k // len(options) + 1)
            head = perm[:k]
            self.rng.shuffle(head)
            columns[decision] = head
        return [self.space.make({d: columns[d][i] for d in choices}) for i in range(k)]


SAMPLERS = {
    "uniform": UniformSampler,
    "sandwich": SandwichSampler,
    "cost_binned": CostBinnedSampler,
    "fair": FairSampler,
}
