"""Searchers: ask-and-tell strategies that propose archs and learn from their scores."""

from __future__ import annotations

from search.searchers.base import Proposal, Searcher
from search.searchers.evolution import EvolutionSearcher
from search.searchers.exhaustive import ExhaustiveSearcher
from search.searchers.optuna_searcher import OptunaSearcher
from search.searchers.random_searcher import RandomSearcher

#: Config name (conf/searcher/<name>.yaml) -> class.
SEARCHERS: dict[str, type[Searcher]] = {
    "optuna": OptunaSearcher,
    "evolution": EvolutionSearcher,
    "random": RandomSearcher,
    "exhaustive": ExhaustiveSearcher,
}

__all__ = [
    "SEARCHERS",
    "EvolutionSearcher",
    "ExhaustiveSearcher",
    "OptunaSearcher",
    "Proposal",
    "RandomSearcher",
    "Searcher",
]
