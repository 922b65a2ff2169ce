"""ExhaustiveSearcher: every arch of a small space, each once."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import optuna

from search.searchers.base import Searcher, SearcherConf, register_searcher
from supernet.errors import SharenasError
from supernet.spaces.base import Space


class _BruteForce(optuna.samplers.BruteForceSampler):
    """Optuna's ``BruteForceSampler`` for the ask-and-tell loop: its ``after_trial`` calls
    ``study.stop()``, which only ``study.optimize`` allows; the study stops by its own count of
    distinct archs instead."""

    def after_trial(self, study: optuna.Study, trial: Any, state: Any, values: Any) -> None:
        return None


@dataclass
class ExhaustiveSearcherConf(SearcherConf):
    _target_: str = "search.searchers.ExhaustiveSearcher"
    n_trials: int | None = None
    max_size: int = 20000


@register_searcher
class ExhaustiveSearcher(Searcher):
    """Grid search over the whole space, as used to rank every NAS-Bench-201 cell with a supernet
    (Dong & Yang, ICLR 2020).

    Optuna's ``BruteForceSampler``: every arch once, in an order drawn with ``seed``.
    ``n_trials=None`` (the default) means the whole space; an integer stops after that many archs.
    Refuses spaces larger than ``max_size`` at construction.
    """

    exhausts_space = True
    name = "exhaustive"
    schema = ExhaustiveSearcherConf

    def __init__(
        self,
        space: Space,
        *args: Any,
        n_trials: int | None = None,
        max_size: int = 20000,
        **kw: Any,
    ) -> None:
        super().__init__(space, *args, n_trials=n_trials, **kw)
        size = space.size()
        if size > max_size:
            raise SharenasError(
                f"exhaustive search refuses space {space.name!r} with {size} archs "
                f"(limit {max_size}); use searcher=optuna or raise searcher.max_size"
            )
        self.max_size = max_size

    def make_sampler(self) -> optuna.samplers.BaseSampler:
        with warnings.catch_warnings():  # experimental in Optuna 5, used as documented
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return _BruteForce(seed=self.seed)
