"""EvolutionSearcher: regularized (aging) evolution as an Optuna sampler."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState

from search.searchers.base import Searcher, SearcherConf, register_searcher
from supernet.errors import SharenasError
from supernet.spaces.base import Space

#: Trial user attr the study sets on a trial that re-proposed an evaluated arch.
REPEAT_ATTR = "repeat_of"


class RegularizedEvolutionSampler(optuna.samplers.BaseSampler):
    """Regularized evolution with aging (Real et al., "Regularized Evolution for Image Classifier
    Architecture Search", AAAI 2019) on Optuna's sampler interface.

    The population is the ``population`` most recent (by trial number) complete, feasible trials
    of the study, repeats left out. Until it is full, archs are drawn uniformly; then each trial
    runs a tournament: ``sample_size`` members drawn at random, the best by the first objective
    (in the study's direction) is mutated with ``space.mutate``. Aging, not the worst, removes a
    member. All draws come from one ``random.Random(seed)``.
    """

    def __init__(self, space: Space, population: int, sample_size: int, seed: int = 0) -> None:
        self.space, self.population, self.sample_size = space, population, sample_size
        self._rng = random.Random(seed)
        self._search_space = {d: CategoricalDistribution(c) for d, c in space.choices().items()}

    def reseed_rng(self) -> None:
        self._rng.seed()

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return dict(self._search_space)

    def members(self, study: optuna.Study) -> list[FrozenTrial]:
        """The current population, oldest first."""
        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        fit = [
            t
            for t in done
            if REPEAT_ATTR not in t.user_attrs and all(c <= 0 for c in t.constraints.values())
        ]
        return sorted(fit, key=lambda t: t.number)[-self.population :]

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        members = self.members(study)
        if len(members) < self.population:
            return dict(self.space.sample(self._rng))
        contestants = self._rng.sample(members, self.sample_size)
        sign = 1.0 if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else -1.0
        parent = max(contestants, key=lambda t: sign * t.values[0])
        return dict(self.space.mutate(self.space.make(parent.params), self._rng))

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        choices = param_distribution.choices  # only reached for a decision outside the space
        return choices[self._rng.randrange(len(choices))]


@dataclass
class EvolutionSearcherConf(SearcherConf):
    _target_: str = "search.searchers.EvolutionSearcher"
    population: int = 20
    sample_size: int = 5


@register_searcher
class EvolutionSearcher(Searcher):
    """Regularized evolution (``RegularizedEvolutionSampler``): ``population`` told results kept,
    tournaments of ``sample_size``. Infeasible results (a constraint > 0) never become parents."""

    name = "evolution"
    schema = EvolutionSearcherConf

    def __init__(
        self,
        space: Space,
        seed: int = 0,
        n_trials: int | None = 50,
        objectives: Sequence[str] | None = None,
        directions: Sequence[str] | None = None,
        population: int = 20,
        sample_size: int = 5,
        **kw: Any,
    ) -> None:
        super().__init__(space, seed, n_trials, objectives, directions, **kw)
        if population < 1 or not 1 <= sample_size <= population:
            raise SharenasError(
                f"evolution needs population >= 1 and 1 <= sample_size <= population; "
                f"got population={population!r}, sample_size={sample_size!r}"
            )
        self.population_size, self.sample_size = population, sample_size

    def make_sampler(self) -> optuna.samplers.BaseSampler:
        return RegularizedEvolutionSampler(
            self.space, self.population_size, self.sample_size, self.seed
        )
