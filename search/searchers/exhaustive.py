"""ExhaustiveSearcher: every arch of a small space, in the space's fixed order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from search.searchers.base import Proposal, Searcher
from supernet.errors import SharenasError
from supernet.spaces.base import Space


class ExhaustiveSearcher(Searcher):
    """Grid search over the whole space (``space.enumerate()`` order), as used to rank every
    NAS-Bench-201 cell with a supernet (Dong & Yang, ICLR 2020).

    ``n_trials=None`` (the default) means the whole space; an integer stops after that many asks.
    Refuses spaces larger than ``max_size`` at construction. Deterministic: ``seed`` is unused.
    """

    exhausts_space = True

    def __init__(
        self,
        space: Space,
        seed: int = 0,
        n_trials: int | None = None,
        objectives: Sequence[str] | None = None,
        directions: Sequence[str] | None = None,
        max_size: int = 20000,
    ) -> None:
        super().__init__(space, seed, n_trials, objectives, directions)
        size = space.size()
        if size > max_size:
            raise SharenasError(
                f"exhaustive search refuses space {space.name!r} with {size} archs "
                f"(limit {max_size}); use searcher=optuna or raise searcher.max_size"
            )
        self.max_size = max_size
        self._archs = list(space.enumerate())

    def ask(self) -> Proposal | None:
        if not self._budget_left() or self.n_asked >= len(self._archs):
            return None
        return self._propose(self._archs[self.n_asked])

    def state_dict(self) -> dict[str, Any]:
        return {"n_asked": self.n_asked}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.n_asked = int(state["n_asked"])
