"""Exponential moving average (EMA) of the supernet's weights, carried across sharing splits.

``trainer.ema_decay=0.998`` keeps ``torch.optim.swa_utils.AveragedModel`` (EMA form) next to the
trained weights and updates it after every optimizer step. The checkpoint stores it under
``"ema"``, and ``load_trained`` (so the evaluator and every searcher) scores archs with it. BN
statistics are not averaged: every arch is BN-recalibrated before it is scored anyway.

A split grows the strategy, so the average is rebuilt around the grown module: each parameter keeps
its average, and each child parameter starts from its parent's, as its weights and optimizer state
do.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from supernet.errors import CheckpointError, check_fraction


def check_decay(decay: object) -> float:
    """``trainer.ema_decay`` as a float in (0, 1), or a one-line error naming the value."""
    return check_fraction("trainer.ema_decay", decay, "e.g. 0.998, or null for no EMA")


def init_share(decay: float, steps: int) -> float:
    """The weight the first step's parameters keep in the average after ``steps`` updates."""
    return decay ** max(steps - 1, 0)


@torch.no_grad()
def _copy_params(module: nn.Module, params: dict) -> None:
    """``module``'s parameters from ``params`` (name -> tensor), refusing a mismatch by name."""
    names = [name for name, _ in module.named_parameters()]
    if set(names) != set(params):
        missing, extra = sorted(set(names) - set(params)), sorted(set(params) - set(names))
        raise CheckpointError(
            f"the checkpoint's EMA does not match its supernet (missing {missing[:3]}, "
            f"unexpected {extra[:3]})"
        )
    for name, p in module.named_parameters():
        p.copy_(params[name])


class WeightEMA:
    """The EMA of ``strategy``'s parameters; ``module`` is a full strategy holding the averages.

    ``AveragedModel`` averages a flat ``nn.ParameterList`` of the strategy's parameters, not the
    strategy itself: it walks its module's parameters at every update, and a split strategy is a
    tree of hundreds of modules (the walk took 23 ms per step on the default search's five nb201
    sub-supernets, as long as the step's forward pass). ``module`` is a copy of the strategy whose
    parameters share storage with the averages, so it always holds them."""

    def __init__(self, strategy: nn.Module, decay: float) -> None:
        self.decay = check_decay(decay)
        self._build(strategy)

    def _build(self, strategy: nn.Module) -> None:
        device = next(strategy.parameters()).device
        self._sources = nn.ParameterList(strategy.parameters())  # the live weights, in order
        self.avg = AveragedModel(
            self._sources,
            device,
            multi_avg_fn=get_ema_multi_avg_fn(self.decay),
            use_buffers=False,
        )
        self._strategy = strategy
        self._module = copy.deepcopy(strategy)
        with torch.no_grad():
            for shaped, average in zip(
                self._module.parameters(), self.avg.module.parameters(), strict=True
            ):
                shaped.data = average.data  # one storage: the averages, shaped as the strategy

    @property
    @torch.no_grad()
    def module(self) -> nn.Module:
        """The strategy with averaged weights and the trained strategy's BN statistics (copied
        now: they are not averaged, as ``AveragedModel(use_buffers=False)`` keeps them)."""
        for mine, live in zip(self._module.buffers(), self._strategy.buffers(), strict=True):
            mine.copy_(live)
        return self._module

    @torch.no_grad()
    def update(self, strategy: nn.Module) -> None:
        """Fold the current weights in (the first call copies them). ``strategy`` is the one the
        average was built around, or grown with ``after_split``."""
        if strategy is not self._strategy:
            raise ValueError("WeightEMA.update: not the strategy this average was built around")
        self.avg.update_parameters(self._sources)

    @torch.no_grad()
    def after_split(
        self, strategy: nn.Module, pairs: Iterable[tuple[nn.Parameter, nn.Parameter]]
    ) -> None:
        """Rebuild around the grown ``strategy``; ``pairs`` are its (child, parent) parameters."""
        old = {id(p): a for p, a in zip(self._sources, self.avg.module.parameters(), strict=True)}
        parent = {id(child): id(src) for child, src in pairs}
        n_averaged = int(self.avg.n_averaged)
        self._build(strategy)
        for p, avg in zip(strategy.parameters(), self.avg.module.parameters(), strict=True):
            avg.copy_(old[id(p)] if id(p) in old else old[parent[id(p)]])
        self.avg.n_averaged.fill_(n_averaged)

    def state_dict(self) -> dict:
        """Plain tensors and numbers (loadable with ``weights_only=True``), keyed by the
        strategy's parameter names at save time."""
        return {
            "decay": self.decay,
            "n_averaged": int(self.avg.n_averaged),
            "params": {k: p.detach().clone() for k, p in self.module.named_parameters()},
        }

    def load_state_dict(self, state: dict) -> None:
        _copy_params(self.module, state["params"])
        self.avg.n_averaged.fill_(int(state["n_averaged"]))


def apply_ema(strategy: nn.Module, state: dict) -> None:
    """Overwrite ``strategy``'s parameters with a checkpoint's EMA (``WeightEMA.state_dict``)."""
    _copy_params(strategy, state["params"])
