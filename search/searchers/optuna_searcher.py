"""OptunaSearcher: any Optuna sampler over the space's categorical decisions."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna

from search.searchers.base import Searcher, SearcherConf, register_searcher
from supernet.errors import SharenasError
from supernet.spaces.base import Space

# Samplers that handle categorical parameters (CMA-ES and QMC do not).
SAMPLERS: dict[str, type[optuna.samplers.BaseSampler]] = {
    "tpe": optuna.samplers.TPESampler,
    "nsga2": optuna.samplers.NSGAIISampler,
    "gp": optuna.samplers.GPSampler,
    "random": optuna.samplers.RandomSampler,
}


@dataclass
class OptunaSearcherConf(SearcherConf):
    _target_: str = "search.searchers.OptunaSearcher"
    sampler: str = "tpe"  # tpe | nsga2 | gp | random
    sampler_kwargs: dict[str, Any] = field(default_factory=dict)


@register_searcher
class OptunaSearcher(Searcher):
    """Any of Optuna's samplers (Akiba et al., "Optuna: A Next-generation Hyperparameter
    Optimization Framework", KDD 2019) over the space's decisions, one ``suggest_categorical``
    each. ``sampler`` picks TPE (Bergstra et al., NeurIPS 2011), NSGA-II (Deb et al., 2002; for
    several objectives), GP (Bayesian optimisation) or random; ``sampler_kwargs`` go to the sampler
    class (e.g. n_startup_trials). Constraints reach the samplers through ``trial.set_constraint``
    (Optuna 5 samplers read ``trial.constraints``).
    """

    name = "optuna"
    schema = OptunaSearcherConf

    def __init__(
        self,
        space: Space,
        seed: int = 0,
        n_trials: int | None = 50,
        objectives: Sequence[str] | None = None,
        directions: Sequence[str] | None = None,
        sampler: str = "tpe",
        sampler_kwargs: Mapping[str, Any] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(space, seed, n_trials, objectives, directions, **kw)
        if sampler not in SAMPLERS:
            raise SharenasError(
                f"unknown optuna sampler {sampler!r}; allowed: {', '.join(SAMPLERS)}"
            )
        self.sampler_name = sampler
        self.sampler_kwargs = dict(sampler_kwargs or {})
        self._warn_small_budget()
        self.make_sampler()  # unknown sampler_kwargs fail now, naming them

    def describe(self) -> str:
        return f"{type(self).__name__}({self.sampler_name})"

    def _warn_small_budget(self) -> None:
        """NSGA-II samples its first generation at random: with fewer trials than one generation
        the whole run is random search. Say so (one line) instead of silently wasting the run."""
        if self.sampler_name != "nsga2" or self.n_trials is None:
            return
        default = inspect.signature(SAMPLERS["nsga2"]).parameters["population_size"].default
        size = self.sampler_kwargs.get("population_size", default)
        if isinstance(size, int) and self.n_trials < size:
            print(
                f"warning: searcher.n_trials={self.n_trials} is below the NSGA-II population size "
                f"{size} (searcher.sampler_kwargs.population_size): the run is effectively random "
                f"search; lower population_size or raise n_trials",
                file=sys.stderr,
            )

    def make_sampler(self) -> optuna.samplers.BaseSampler:
        """A fresh sampler as configured."""
        cls = SAMPLERS[self.sampler_name]
        try:
            return cls(seed=self.seed, **self.sampler_kwargs)
        except TypeError as err:  # an unknown keyword: name it and point at the signature
            raise SharenasError(
                f"searcher.sampler_kwargs {self.sampler_kwargs} do not fit {cls.__name__}: {err}"
            ) from err
