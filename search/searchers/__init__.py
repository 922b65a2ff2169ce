"""Searchers: ask-and-tell strategies that propose archs and learn from their scores.

A new searcher is one module here (a ``Searcher`` subclass with ``name``, its ``schema`` and
``@register_searcher``), its import below, and ``conf/searcher/<name>.yaml``."""

from __future__ import annotations

from search.searchers.base import (
    SEARCHERS,
    Proposal,
    Searcher,
    SearcherConf,
    register_searcher,
)
from search.searchers.evolution import EvolutionSearcher  # each module registers its searcher
from search.searchers.exhaustive import ExhaustiveSearcher
from search.searchers.optuna_searcher import OptunaSearcher
from search.searchers.random_searcher import RandomSearcher

__all__ = [
    "SEARCHERS",
    "EvolutionSearcher",
    "ExhaustiveSearcher",
    "OptunaSearcher",
    "Proposal",
    "RandomSearcher",
    "Searcher",
    "SearcherConf",
    "register_searcher",
]
