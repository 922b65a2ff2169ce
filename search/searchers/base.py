"""Searcher: the ask-and-tell contract every search strategy implements."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supernet.arch import Arch
from supernet.errors import SharenasError
from supernet.spaces.base import Space

DIRECTIONS = ("maximize", "minimize")


@dataclass
class Proposal:
    """One arch a searcher asks to have evaluated."""

    arch: Arch
    trial: int  # 0-based number of the ask (continues across a resumed Optuna study)
    handle: object = None  # searcher-private bookkeeping, e.g. the optuna Trial


class Searcher(ABC):
    """Proposes archs of a space and learns from their scores (the ask-and-tell interface).

    The driver loop owns evaluation; the searcher only sees archs and numbers::

        while (proposal := searcher.ask()) is not None:
            values = evaluate(proposal.arch)                 # anywhere: in process, Ray, ...
            searcher.tell(proposal, values, constraints)

    ``ask`` returns ``None`` when nothing is left to propose (budget of ``n_trials`` spent, or the
    space exhausted). Several asks may be outstanding before their tells, in any order, so a
    backend can evaluate in parallel. ``values`` follow the order of ``objectives``, each optimised
    in its ``directions`` entry; ``constraints`` follow Optuna's convention (every value <= 0 means
    feasible). All randomness comes from ``self.rng``, seeded by ``seed``: same seed, same
    proposals. This is the interface of Optuna's ask-and-tell API (Akiba et al., KDD 2019).
    """

    #: True when the searcher stops by itself once the space is used up, so n_trials may be None.
    exhausts_space: bool = False

    def __init__(
        self,
        space: Space,
        seed: int = 0,
        n_trials: int | None = 50,
        objectives: Sequence[str] | None = None,
        directions: Sequence[str] | None = None,
    ) -> None:
        self.space = space
        self.seed = seed
        self.objectives = list(objectives) if objectives is not None else ["val_acc"]
        self.directions = list(directions) if directions is not None else ["maximize"]
        for d in self.directions:
            if d not in DIRECTIONS:
                raise SharenasError(
                    f"unknown searcher direction {d!r}; allowed: {', '.join(DIRECTIONS)}"
                )
        if not self.objectives or len(self.directions) != len(self.objectives):
            raise SharenasError(
                f"searcher.directions {self.directions} must give one of {', '.join(DIRECTIONS)} "
                f"for each of searcher.objectives {self.objectives}"
            )
        if n_trials is None and not self.exhausts_space:
            raise SharenasError(
                f"searcher.n_trials=null is only allowed for searchers that stop on their own "
                f"(random, exhaustive); {type(self).__name__} needs a positive integer"
            )
        if n_trials is not None and n_trials < 1:
            raise SharenasError(f"searcher.n_trials must be >= 1 or null, got {n_trials!r}")
        self.n_trials = n_trials
        self.rng = random.Random(seed)
        self.n_asked = 0  # distinct archs proposed so far
        self._n_proposals = 0
        self._proposed: set = set()

    @abstractmethod
    def ask(self) -> Proposal | None:
        """The next arch to evaluate, or ``None`` when nothing is left to propose."""

    def tell(
        self,
        proposal: Proposal,
        values: Sequence[float],
        constraints: Sequence[float] | None = None,
        record: Mapping[str, Any] | None = None,
    ) -> None:
        """Report the scores of an asked proposal (in ``objectives`` order). The default checks
        the values and learns nothing (random, exhaustive); learning searchers override it.
        ``record`` is the evaluator's whole record of the arch: a searcher with persistent state
        (an Optuna study in a storage) keeps it so a resumed search can rank earlier archs too."""
        self._check_values(values)

    def use_checkpoint(
        self, checkpoint: str | Path | None, settings: Mapping[str, Any] | None = None
    ) -> None:
        """Bind the search to the supernet it scores and the ``settings`` that shape a score
        (evaluator config, seed). Only a searcher that keeps scores across runs (a persistent
        Optuna study) cares: it refuses to mix scores of two supernets or two scorings.
        ``None`` means a new supernet is about to be trained. The default does nothing."""
        return None

    def resumed_records(self) -> list[dict[str, Any]]:
        """Records of the archs earlier runs of this search evaluated (a resumed persistent
        Optuna study), oldest trial first; they count against ``n_trials`` (``n_asked``) and are
        ranked with the new ones. Empty for searchers that start from scratch."""
        return []

    # -- helpers for subclasses -------------------------------------------------------------------
    def _budget_left(self) -> bool:
        return self.n_trials is None or self.n_asked < self.n_trials

    def _propose(self, arch: Arch, handle: object = None) -> Proposal:
        """Number proposals in ask order; only *new* archs spend the ``n_trials`` budget (a
        repeated proposal is answered from memory by the backend)."""
        proposal = Proposal(arch=arch, trial=self._n_proposals, handle=handle)
        self._n_proposals += 1
        if arch not in self._proposed:
            self._proposed.add(arch)
            self.n_asked += 1
        return proposal

    def _check_values(self, values: Sequence[float]) -> list[float]:
        if len(values) != len(self.objectives):
            raise SharenasError(
                f"tell got {len(values)} values {list(values)}; expected one per objective "
                f"{self.objectives}"
            )
        return [float(v) for v in values]

    def _sign(self) -> float:
        """+1 if the first objective is maximised, -1 if minimised (so higher key is better)."""
        return 1.0 if self.directions[0] == "maximize" else -1.0

    # -- optional checkpointing -------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Plain-data state for a checkpoint; subclasses extend it."""
        return {"rng": self.rng.getstate(), "n_asked": self.n_asked}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.setstate(_as_tuple(state["rng"]))
        self.n_asked = int(state["n_asked"])


def _as_tuple(x: Any) -> Any:
    """``random.Random.setstate`` needs tuples; JSON round-trips give lists."""
    return tuple(_as_tuple(v) for v in x) if isinstance(x, list | tuple) else x
