"""Searcher: how the next arch is chosen, as a seeded Optuna sampler over the space's decisions."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna

from search.record import OPTUNA_DIRECTIONS
from supernet.arch import Arch
from supernet.errors import SharenasError
from supernet.registry import Registry
from supernet.spaces.base import Space

DIRECTIONS = tuple(OPTUNA_DIRECTIONS)


def _list(*items: str) -> Any:
    return field(default_factory=lambda: list(items))


@dataclass
class SearcherConf:
    """Keys every searcher takes (``space`` and ``seed`` are passed by the pipeline); a
    searcher's own schema extends it and is its ``schema`` attribute."""

    _target_: str = "search.searchers.RandomSearcher"
    n_trials: int | None = 50  # distinct archs the whole study evaluates; None: the whole space
    objectives: list[str] = _list("score")
    directions: list[str] = _list("maximize")
    storage: str | None = None  # None: in memory; sqlite:///x.db, postgresql://..., or x.journal
    study_name: str = "sharenas"  # the Optuna study in the storage (resumed when it exists)
    dedupe: bool = False  # skip archs whose canonical form (space.canonical) is evaluated


#: Registered searchers by ``name`` (``@register_searcher``); each is ``conf/searcher/<name>.yaml``
#: and its ``schema`` is stored as ``_schema_searcher_<name>`` (``search.config``).
SEARCHERS: Registry[type[Searcher]] = Registry("searcher")


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
    name: str = ""  # the registered name (conf/searcher/<name>.yaml)
    schema: type = SearcherConf  # the structured config of its keys

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


register_searcher = SEARCHERS.register
