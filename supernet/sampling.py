"""Path samplers: which sub-paths one training step trains. Each owns a seeded ``random.Random``.

- ``uniform``: one uniformly random path per step (SPOS, Guo et al. 2020).
- ``sandwich``: largest + smallest + ``n_random`` random paths per step, optionally with in-place
  distillation from the largest (BigNAS, Yu et al. 2020; AttentiveNAS).
- ``fair``: every choice of every decision trained exactly once per step (FairNAS).
- ``cost_binned``: pick an equal-width cost bin uniformly, then a path in it, so cheap and
  expensive paths are trained alike (costs from a callable, e.g. parameter count).
- ``stratified``: pick a choice and how many decisions take it, both uniformly, so rare
  compositions (every edge a conv, every edge a pool) are trained as often as common mixed ones.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable

from supernet.arch import Arch
from supernet.errors import SharenasError, check_int
from supernet.leaf import PARAMS_KEY, Leaf, contains, decision_choices
from supernet.registry import Registry
from supernet.spaces.base import Space

CostFn = Callable[[Arch], float]
ENUMERATE_UP_TO = 100_000  # cost leaves of spaces up to this size list every member exactly
COST_POOL = 20_000  # larger spaces: the members among this many seeded random archs


#: Registered samplers by ``name`` (``@register_sampler``): the only way a sampler named in a
#: checkpoint is rebuilt.
SAMPLERS: Registry[type[PathSampler]] = Registry("sampler")
register_sampler = SAMPLERS.register


class PathSampler:
    """Base class: ``paths()`` returns the archs of one training step.

    Every sampler takes ``space``, ``seed`` and ``cost_fn`` (the parameter count of a path; the
    trainer passes it to every sampler, so a custom sampler given by ``_target_`` must accept it).
    Inside a leaf of a split supernet, paths are drawn among the archs the leaf owns. A cost leaf
    (``costsplit``) cannot be built decision by decision, so rules that construct paths (``fair``'s
    permutations, ``sandwich``'s largest and smallest) fall back to uniform draws inside the leaf
    for the paths that fall outside it.
    """

    name = "base"
    distill = False  # whether non-first paths learn from the first path's soft outputs

    def __init__(self, space: Space, seed: int = 0, cost_fn: CostFn | None = None) -> None:
        self.space = space
        self.rng = random.Random(seed)
        self.cost_fn = cost_fn  # parameter count; needed only inside cost leaves (costsplit)
        self._members: dict[str, list[Arch]] = {}  # cost leaf -> the archs it owns

    def paths(self, leaf: Leaf | None = None) -> list[Arch]:
        """The archs of one step; with ``leaf`` (decision -> allowed choices), only archs inside
        that part of a split supernet."""
        raise NotImplementedError

    def set_epoch(self, epoch: int) -> None:
        """Called by the trainer at the start of each epoch (0-based); most samplers ignore it."""

    def _sample(self, leaf: Leaf | None) -> Arch:
        if not leaf:
            return self.space.sample(self.rng)
        if PARAMS_KEY in leaf:
            return self.rng.choice(self._cost_members(leaf))
        return self.space.make({d: self.rng.choice(c) for d, c in self._choices(leaf).items()})

    def _cost_members(self, leaf: Leaf) -> list[Arch]:
        """The archs a cost leaf owns (cached): every one for a space of up to ``ENUMERATE_UP_TO``
        archs, else those among ``COST_POOL`` seeded random archs. Uniform draws from this list
        replace rejection sampling, which is slow for a leaf of rare sizes."""
        key = repr(sorted(leaf.items()))
        if key not in self._members:
            if self.space.size() <= ENUMERATE_UP_TO:
                candidates = list(self.space.enumerate())
            else:
                rng = random.Random(7919)
                pool = [self.space.sample(rng) for _ in range(COST_POOL)] + self.space.extremes()
                candidates = sorted(set(pool), key=str)
            members = [a for a in candidates if self._inside(a, leaf)]
            if not members:
                low, high = leaf[PARAMS_KEY]
                raise SharenasError(
                    f"{self.name}: no path of {self.space.name} has a parameter count in "
                    f"[{low:g}, {high:g}); use fewer sharing.bins"
                )
            self._members[key] = members
        return self._members[key]

    def _choices(self, leaf: Leaf | None) -> dict[str, list[str]]:
        return decision_choices(leaf, self.space.choices())

    def _inside(self, arch: Arch, leaf: Leaf | None) -> bool:
        return contains(arch, leaf, self.cost_fn)

    def state_dict(self) -> dict:
        version, internal, gauss = self.rng.getstate()
        return {"rng": [version, list(internal), gauss]}

    def load_state_dict(self, state: dict) -> None:
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))


@register_sampler
class UniformSampler(PathSampler):
    """One uniformly random path per step."""

    name = "uniform"

    def paths(self, leaf: Leaf | None = None) -> list[Arch]:
        return [self._sample(leaf)]


@register_sampler
class SandwichSampler(PathSampler):
    """Largest + smallest + ``n_random`` random paths per step (the sandwich rule)."""

    name = "sandwich"

    def __init__(
        self,
        space: Space,
        seed: int = 0,
        n_random: int = 2,
        distill: bool = False,
        cost_fn: CostFn | None = None,
    ) -> None:
        super().__init__(space, seed, cost_fn)
        self.n_random = check_int("sampler.n_random", n_random, 0)
        self.distill = distill

    def paths(self, leaf: Leaf | None = None) -> list[Arch]:
        ends = [self.space.largest(), self.space.smallest()]
        ends = [a if self._inside(a, leaf) else self._sample(leaf) for a in ends]
        return ends + [self._sample(leaf) for _ in range(self.n_random)]


@register_sampler
class CostBinnedSampler(PathSampler):
    """Uniform over ``bins`` equal-*width* cost bins spanning a pool of ``pool_size`` archs, then
    uniform inside the bin. Rare cheap and rare expensive paths are drawn as often as the common
    middle (equal-population bins would be plain uniform sampling in disguise). With
    ``paths_per_step`` = k > 1, one step trains k paths from k different bins (gradients summed
    into one optimizer step), so every step sees cheap and expensive paths together."""

    name = "cost_binned"

    def __init__(
        self,
        space: Space,
        seed: int = 0,
        bins: int = 5,
        pool_size: int = 2000,
        cost_fn: CostFn | None = None,
        paths_per_step: int = 1,
    ) -> None:
        super().__init__(space, seed, cost_fn)
        bins = check_int("sampler.bins", bins, 1)
        pool_size = check_int("sampler.pool_size", pool_size, 1)
        paths_per_step = check_int("sampler.paths_per_step", paths_per_step, 1)
        if paths_per_step > bins:
            raise SharenasError(
                f"sampler.paths_per_step must be between 1 and sampler.bins={bins} (one path per "
                f"bin), got {paths_per_step}"
            )
        self.paths_per_step = paths_per_step
        if cost_fn is None:
            raise SharenasError("cost_binned needs a cost_fn (the trainer passes parameter count)")
        pool_rng = random.Random(seed + 7919)
        pool = sorted({space.sample(pool_rng) for _ in range(pool_size)}, key=str)
        costs = {a: float(cost_fn(a)) for a in pool}
        low, high = min(costs.values()), max(costs.values())
        width = (high - low) / bins or 1.0
        grouped: list[list[Arch]] = [[] for _ in range(bins)]
        for arch in pool:
            grouped[min(int((costs[arch] - low) / width), bins - 1)].append(arch)
        self.bins = [b for b in grouped if b]
        self._leaf_bins: dict[str, list[list[Arch]]] = {}  # a leaf's non-empty bins (paths)

    def _bins_of(self, leaf: Leaf | None) -> list[list[Arch]]:
        """The non-empty bins restricted to ``leaf``'s archs, filtered once per leaf (a step
        used to test every pool arch against its leaf: 1,600 tests per step after a split)."""
        if not leaf:
            return self.bins
        key = json.dumps(leaf, sort_keys=True)
        if key not in self._leaf_bins:
            inside = [[a for a in b if self._inside(a, leaf)] for b in self.bins]
            self._leaf_bins[key] = [b for b in inside if b]
        return self._leaf_bins[key]

    def paths(self, leaf: Leaf | None = None) -> list[Arch]:
        bins = self._bins_of(leaf)
        if not bins:
            return [self._sample(leaf) for _ in range(self.paths_per_step)]
        if self.paths_per_step == 1:
            return [self.rng.choice(self.rng.choice(bins))]
        k = self.paths_per_step  # inside a leaf that spans fewer bins, some bins give two paths
        picked = self.rng.sample(bins, k) if k <= len(bins) else self.rng.choices(bins, k=k)
        return [self.rng.choice(b) for b in picked]


@register_sampler
class FairSampler(PathSampler):
    """Strict fairness (FairNAS, Chu et al., ICCV 2021): each step trains K paths built from a
    random permutation of every decision's choices, so every choice of every decision is trained
    exactly once per optimizer step (K = the largest number of choices of a decision)."""

    name = "fair"

    def paths(self, leaf: Leaf | None = None) -> list[Arch]:
        choices = self._choices(leaf)
        k = max(len(c) for c in choices.values())
        columns = {}
        for decision, options in choices.items():
            perm = list(options) * (k // len(options) + 1)
            head = perm[:k]
            self.rng.shuffle(head)
            columns[decision] = head
        archs = [self.space.make({d: columns[d][i] for d in choices}) for i in range(k)]
        return [a if self._inside(a, leaf) else self._sample(leaf) for a in archs]


@register_sampler
class ProgressiveSampler(PathSampler):
    """Largest path first, then uniform (after OFA's progressive shrinking, Cai et al., ICLR 2020):
    for ``warmup_epochs`` only the largest path trains, so the shared layers first learn the
    features of the most capable path; then every step draws a uniform random path."""

    name = "progressive"

    def __init__(
        self, space: Space, seed: int = 0, warmup_epochs: int = 5, cost_fn: CostFn | None = None
    ) -> None:
        super().__init__(space, seed, cost_fn)
        self.warmup_epochs = check_int("sampler.warmup_epochs", warmup_epochs, 0)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def paths(self, leaf: Leaf | None = None) -> list[Arch]:
        largest = self.space.largest()
        if self.epoch < self.warmup_epochs and self._inside(largest, leaf):
            return [largest]
        return [self._sample(leaf)]


@register_sampler
class StratifiedSampler(PathSampler):
    """Uniform over composition strata, then uniform inside the stratum: draw a choice ``c``
    (uniform over every choice value of the space) and a count ``k`` (uniform over 0..m, m = the
    decisions that offer ``c``), put ``c`` on ``k`` random such decisions and a uniform *other*
    choice on the rest. Every choice is still drawn equally often on every decision (for spaces
    whose decisions share one choice set, as NB201's edges), but "k edges of op c" is drawn with
    probability 1/(m+1) for each k: one op on 5 or 6 of NB201's 6 edges is ~0.2% of uniform
    draws and ~6% here. ``cost_binned`` flattens one cost; this flattens every choice's count.
    Inside a leaf, decisions the leaf fixes to ``c`` alone keep it whatever ``k`` is.

    On the ranking-fidelity benchmark it ranks *worse* than uniform (rows ``full-stratified`` and
    ``fewshot-stratified-balanced``, ``bench/logs/fidelity_run11.log``): its many all-skip,
    all-pool and all-``none`` paths shape the shared weights."""

    name = "stratified"

    def paths(self, leaf: Leaf | None = None) -> list[Arch]:
        if leaf and PARAMS_KEY in leaf:  # a cost leaf has no per-decision choices to stratify
            return [self._sample(leaf)]
        choices = self._choices(leaf)
        value = self.rng.choice(sorted({c for opts in choices.values() for c in opts}, key=str))
        holders = [d for d, opts in choices.items() if value in opts]
        chosen = set(self.rng.sample(holders, self.rng.randint(0, len(holders))))
        arch = {
            d: value if d in chosen else self.rng.choice([o for o in opts if o != value] or opts)
            for d, opts in choices.items()
        }
        return [self.space.make(arch)]
