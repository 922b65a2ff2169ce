"""SteeredSampler: a searcher's sampler that the study can point at one arch for the next trial."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.trial import FrozenTrial, TrialState


class SteeredSampler(optuna.samplers.BaseSampler):
    """Delegates every call to the searcher's sampler (``inner``), except for a trial whose arch the
    study has named with ``steer(params)``: that trial gets exactly those choices.

    The study uses it to move on to an unseen arch after a sampler re-proposed evaluated ones many
    times in a row. Optuna's own trial queue (``enqueue_trial``) would do it too, but the queue
    lives in the storage, where two processes may pop the same queued trial (SQLite has no row
    locks); a steer lives in this process only.

    ``redirect(params)``, when given, sees every whole-arch proposal of the inner sampler's
    relative sampling and may return other params for the trial (the study moves a proposal of an
    arch it already holds to an unseen neighbour); None keeps the proposal. The trial's params are
    the ones returned, so the sampler's model learns from what was really evaluated."""

    def __init__(
        self,
        inner: optuna.samplers.BaseSampler,
        choices: Mapping[str, Sequence],
        redirect: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None,
    ) -> None:
        self.inner = inner
        self.space = {d: CategoricalDistribution(list(c)) for d, c in choices.items()}
        self.next: dict[str, Any] | None = None
        self.redirect = redirect

    def steer(self, params: Mapping[str, Any]) -> None:
        self.next = dict(params)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        if self.next is not None:
            return dict(self.space)
        return self.inner.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if self.next is not None:
            params, self.next = self.next, None
            return params
        params = self.inner.sample_relative(study, trial, search_space)
        if self.redirect is not None and params.keys() == self.space.keys():
            return self.redirect(params) or params
        return params

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self.inner.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.inner.before_trial(study, trial)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self.inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()
