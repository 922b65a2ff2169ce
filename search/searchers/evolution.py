"""EvolutionSearcher: regularized (aging) evolution."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from search.searchers.base import Proposal, Searcher
from supernet.errors import SharenasError
from supernet.spaces.base import Space


class EvolutionSearcher(Searcher):
    """Regularized evolution with aging (Real et al., "Regularized Evolution for Image Classifier
    Architecture Search", AAAI 2019).

    Until ``population`` results have been told, asks are uniform random. Then each ask runs a
    tournament: ``sample_size`` members drawn from the population, the best by the first objective
    (respecting its direction) is mutated with ``space.mutate``. Each tell appends the result and
    removes the oldest member beyond ``population`` (aging, not the worst). Infeasible results
    (a constraint > 0) never join the population. Outstanding asks are fine: the population only
    holds told results.
    """

    def __init__(
        self,
        space: Space,
        seed: int = 0,
        n_trials: int | None = 50,
        objectives: Sequence[str] | None = None,
        directions: Sequence[str] | None = None,
        population: int = 20,
        sample_size: int = 5,
    ) -> None:
        super().__init__(space, seed, n_trials, objectives, directions)
        if population < 1 or not 1 <= sample_size <= population:
            raise SharenasError(
                f"evolution needs population >= 1 and 1 <= sample_size <= population; "
                f"got population={population!r}, sample_size={sample_size!r}"
            )
        self.population_size = population
        self.sample_size = sample_size
        self.population: deque[tuple[str, float]] = deque()  # (arch string, first objective)

    def ask(self) -> Proposal | None:
        if not self._budget_left():
            return None
        if len(self.population) < self.population_size:
            return self._propose(self.space.sample(self.rng))
        contestants = self.rng.sample(list(self.population), self.sample_size)
        sign = self._sign()
        parent, _ = max(contestants, key=lambda member: sign * member[1])
        return self._propose(self.space.mutate(self.space.parse(parent), self.rng))

    def tell(
        self,
        proposal: Proposal,
        values: Sequence[float],
        constraints: Sequence[float] | None = None,
        record: Mapping[str, Any] | None = None,
    ) -> None:
        score = self._check_values(values)[0]
        if constraints is not None and any(c > 0 for c in constraints):
            return  # infeasible archs never become parents
        self.population.append((str(proposal.arch), score))
        while len(self.population) > self.population_size:
            self.population.popleft()

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "population": [list(m) for m in self.population]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.population = deque((str(a), float(s)) for a, s in state["population"])
