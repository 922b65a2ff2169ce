"""RandomSearcher: uniform sampling of the space without repeats."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from search.searchers.base import Proposal, Searcher
from supernet.spaces.base import Space


class RandomSearcher(Searcher):
    """Uniform random search without repeats, the baseline that weight-sharing NAS must beat
    (Li & Talwalkar, "Random Search and Reproducibility for NAS", UAI 2019).

    Returns ``None`` after ``n_trials`` asks or once every arch of the space has been proposed
    (``n_trials=None``: until then).
    """

    exhausts_space = True

    def __init__(
        self,
        space: Space,
        seed: int = 0,
        n_trials: int | None = 50,
        objectives: Sequence[str] | None = None,
        directions: Sequence[str] | None = None,
    ) -> None:
        super().__init__(space, seed, n_trials, objectives, directions)
        self.seen: set[str] = set()
        self._size = space.size()

    def ask(self) -> Proposal | None:
        if not self._budget_left() or len(self.seen) >= self._size:
            return None
        if len(self.seen) < self._size // 2 or self._size > self.space.enumerate_limit:
            # Rejection sampling: cheap while at least half the space is still unseen.
            while str(arch := self.space.sample(self.rng)) in self.seen:
                pass
        else:
            # Near exhaustion: draw from the explicit remainder (in the space's fixed order).
            arch = self.rng.choice([a for a in self.space.enumerate() if str(a) not in self.seen])
        self.seen.add(str(arch))
        return self._propose(arch)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "seen": sorted(self.seen)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.seen = set(state["seen"])
