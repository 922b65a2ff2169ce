"""SharingStrategy: which weight set (sub-supernet) each arch inherits, and how that map evolves.

A strategy holds one or more sub-supernets and a partition: a list of *leaves*, each a set of
constraints ``decision -> allowed choices``. ``route(arch)`` returns the index of the first leaf the
arch satisfies. ``full`` keeps one leaf with no constraints (classic one-shot). Dynamic strategies
(``fewshot``, ``gm``) split a leaf on a decision into children that start as exact copies of the
parent, so every arch's output is unchanged at the moment of the split. The evaluator, searchers and
the trainer only ever call ``route`` / ``supernet_for`` / ``forward`` / ``extract``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from supernet.leaf import Leaf, contains
from supernet.models import Macro, StandaloneNet, Supernet, build_supernet
from supernet.registry import Registry
from supernet.spaces.base import Space

#: Registered strategies by ``name`` (``@register_strategy``): the only way a strategy named in a
#: checkpoint is rebuilt.
STRATEGIES: Registry[type[SharingStrategy]] = Registry("sharing strategy")
register_strategy = STRATEGIES.register


def _no_scalar(tag: str, value: float, step: int) -> None:
    """A ``scalar`` hook that records nothing (no TensorBoard writer)."""


def _no_text(tag: str, text: str, step: int) -> None:
    """A ``text`` hook that records nothing (no TensorBoard writer)."""


@dataclass
class SplitContext:
    """What a strategy may use to decide a split: a loss on a batch for one arch, and batches;
    ``scalar`` / ``text`` record signals and splits (TensorBoard's ``add_scalar`` / ``add_text``
    on the process that writes, no-ops elsewhere)."""

    epoch: int
    loss_fn: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
    batches: list[tuple[torch.Tensor, torch.Tensor]]
    rng_seed: int = 0
    log: Callable[[str], None] = print
    step: int = 0  # optimizer steps done so far
    scalar: Callable[[str, float, int], None] = _no_scalar
    text: Callable[[str, str, int], None] = _no_text


class SharingStrategy(nn.Module):
    """Base class. Subclasses override ``maybe_split`` to change the partition during training."""

    name = "base"
    train_all_leaves = False
    probe_every = 0  # optimizer steps between two calls of ``probe`` (0: never called)

    def __init__(self, space: Space, macro: Macro) -> None:
        super().__init__()
        self.space = space
        self.macro = macro
        self.supernets = nn.ModuleList([build_supernet(space, macro)])
        self.leaves: list[Leaf] = [{}]
        self.history: list[dict] = []  # one entry per split: epoch, leaf, decision, groups, score
        self._params: dict[tuple, int] = {}  # memo for cost leaves: arch items -> parameter count

    # -- routing --------------------------------------------------------------------------------
    def route(self, arch: Mapping[str, str]) -> int:
        """Index of the sub-supernet that owns ``arch`` (deterministic)."""
        for index, leaf in enumerate(self.leaves):
            if contains(arch, leaf, self.param_count):
                return index
        raise RuntimeError(f"no sub-supernet owns {arch}; partition is {self.leaves}")

    def param_count(self, arch: Mapping[str, str]) -> int:
        """Parameters of the standalone net of ``arch`` (memoised; the same in every leaf)."""
        key = tuple(sorted(arch.items()))
        if key not in self._params:
            self._params[key] = self.supernets[0].param_count(arch)
        return self._params[key]

    def supernet_for(self, arch: Mapping[str, str]) -> Supernet:
        return self.supernets[self.route(arch)]

    def forward(self, x: torch.Tensor, arch: Mapping[str, str]) -> torch.Tensor:
        return self.supernet_for(arch)(x, arch)

    def extract(self, arch: Mapping[str, str]) -> StandaloneNet:
        return self.supernet_for(arch).extract(arch)

    @property
    def num_supernets(self) -> int:
        return len(self.supernets)

    def parameter_bytes(self) -> int:
        return sum(p.numel() * p.element_size() for p in self.parameters())

    def step_leaves(self) -> list[Leaf | None]:
        """Which parts of the space one optimizer step trains: ``[None]`` draws paths from the
        whole space (each routed to its owner); with ``train_all_leaves`` every sub-supernet gets
        its own paths at every step, so children of a split are trained exactly as often as their
        parent was and stay comparable with each other."""
        if self.train_all_leaves and len(self.leaves) > 1:
            return list(self.leaves)
        return [None]

    # -- dynamic part ---------------------------------------------------------------------------
    def split_schedule(self) -> list[int]:
        """Epochs at which this strategy plans to split (empty for ``full``); the trainer warns
        about any that come after the last epoch."""
        return []

    def probe(self, ctx: SplitContext) -> None:
        """Called by the trainer after every ``probe_every``-th optimizer step (``ctx.step``) to
        measure a training signal; it must change no weight, buffer or global RNG state (a split
        it asks for happens in the next ``maybe_split``)."""

    def maybe_split(self, ctx: SplitContext) -> list[tuple[nn.Parameter, nn.Parameter]]:
        """Called by the trainer at the end of each epoch. Returns (new param, source param) pairs
        for every parameter of newly created sub-supernets (empty when nothing was split), so the
        trainer can hand each child its parent's optimizer state and weight average. Every source
        existed before the call, also when one call splits a child it has just made."""
        return []

    def split(
        self, leaf_index: int, decision: str, groups: list[list[str]], **info: object
    ) -> list[tuple[nn.Parameter, nn.Parameter]]:
        """Replace leaf ``leaf_index`` by one child per group of choices of ``decision``."""
        parent = self.leaves[leaf_index]
        if decision in parent:
            allowed = parent[decision]
            groups = [[c for c in g if c in allowed] for g in groups]
            groups = [g for g in groups if g]
        if len(groups) < 2:
            return []
        children = [{**parent, decision: list(g)} for g in groups]
        record = {"decision": decision, "groups": [list(g) for g in groups], **info}
        return self.replace_leaf(leaf_index, children, record)

    def replace_leaf(
        self, leaf_index: int, children: list[Leaf], record: dict
    ) -> list[tuple[nn.Parameter, nn.Parameter]]:
        """Replace leaf ``leaf_index`` by ``children`` (which must partition it). The first child
        keeps the parent's module; the others are deep copies, so every arch's output is unchanged.
        Returns (child param, parent param) pairs for the trainer's optimizer state."""
        pairs: list[tuple[nn.Parameter, nn.Parameter]] = []
        module = self.supernets[leaf_index]
        copies = [module] + [copy.deepcopy(module) for _ in children[1:]]
        for child in copies[1:]:
            pairs.extend(zip(child.parameters(), module.parameters(), strict=True))
        self.leaves[leaf_index : leaf_index + 1] = [dict(c) for c in children]
        modules = list(self.supernets)
        modules[leaf_index : leaf_index + 1] = copies
        self.supernets = nn.ModuleList(modules).train(self.training)
        self.history.append({"leaf": leaf_index, **record})
        return pairs

    # -- checkpoint state (JSON-like, loadable with weights_only=True) ---------------------------
    def sharing_state(self) -> dict:
        return {
            "name": self.name,
            "leaves": copy.deepcopy(self.leaves),
            "history": copy.deepcopy(self.history),
        }

    def load_sharing_state(self, state: Mapping) -> None:
        """Rebuild the partition (and the number of sub-supernets) before loading a state_dict."""
        leaves = [dict(leaf) for leaf in state["leaves"]]
        while len(self.supernets) < len(leaves):
            self.supernets.append(build_supernet(self.space, self.macro))
        del self.supernets[len(leaves) :]
        self.leaves = leaves
        self.history = list(state.get("history", []))
