"""Searcher: how the next arch is chosen, as a seeded Optuna sampler over the space's decisions."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import optuna

from search.record import OPTUNA_DIRECTIONS
from supernet.arch import Arch
from supernet.errors import SharenasError
from supernet.spaces.base import Space

DIRECTIONS = tuple(OPTUNA_DIRECTIONS)


@dataclass
class Proposal:
    """One arch a study asks to have evaluated."""

    arch: Arch
    trial: int  # the study's trial number (continues across a resumed study)
    handle: object = None  # the Optuna trial being evaluated


class Searcher(ABC):
    """A search strategy: an Optuna sampler (``make_sampler``) plus the budget and objectives.

    Every searcher is an Optuna sampler, so every search is an Optuna study (``search.study.Study``)
    that can live in any Optuna storage: it resumes, it can be shared by several processes, and
    optuna-dashboard can read it. The study, not the searcher, asks and tells, skips archs already
    evaluated and keeps the records; a searcher sees decisions and scores only, never weights,
    checkpoints or where evaluations run. ``n_trials`` counts the distinct archs of the whole
    study (with ``dedupe``, the distinct networks: archs with one canonical form count once).
    All randomness comes from ``seed``: same seed, same proposals.
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
        storage: str | None = None,
        study_name: str = "sharenas",
        dedupe: bool = False,
    ) -> None:
        self.space, self.seed = space, seed
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
        if n_trials is not None and (isinstance(n_trials, bool) or n_trials < 1):
            raise SharenasError(f"searcher.n_trials must be >= 1 or null, got {n_trials!r}")
        self.n_trials = n_trials
        self.storage, self.study_name, self.dedupe = storage, study_name, bool(dedupe)

    @abstractmethod
    def make_sampler(self) -> optuna.samplers.BaseSampler:
        """A fresh, seeded Optuna sampler that proposes this searcher's archs."""

    def describe(self) -> str:
        """E.g. "RandomSearcher", "OptunaSearcher(nsga2)"."""
        return type(self).__name__
