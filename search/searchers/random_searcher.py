"""RandomSearcher: uniform sampling of the space without repeats."""

from __future__ import annotations

from dataclasses import dataclass

import optuna

from search.searchers.base import Searcher, SearcherConf, register_searcher


@dataclass
class RandomSearcherConf(SearcherConf):
    _target_: str = "search.searchers.RandomSearcher"


@register_searcher
class RandomSearcher(Searcher):
    """Uniform random search without repeats, the baseline that weight-sharing NAS must beat
    (Li & Talwalkar, "Random Search and Reproducibility for NAS", UAI 2019).

    Optuna's ``RandomSampler``; the study skips archs it already evaluated, so no arch is scored
    twice. ``n_trials=None``: until every arch of the space has been evaluated.
    """

    exhausts_space = True
    name = "random"
    schema = RandomSearcherConf

    def make_sampler(self) -> optuna.samplers.BaseSampler:
        return optuna.samplers.RandomSampler(seed=self.seed)
