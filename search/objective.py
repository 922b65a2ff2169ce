"""Objective: turns an evaluation record into the values and constraints a study is told.

Which way each record key is better lives in ``search.record.METRIC_DIRECTIONS`` (re-exported here
as ``KEY_DIRECTIONS``): ranking, result files, TensorBoard curves and the progress bar follow it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from search.record import METRIC_DIRECTIONS, OPTUNA_DIRECTIONS
from supernet.errors import SharenasError

KEY_DIRECTIONS = METRIC_DIRECTIONS
RECORD_KEYS = tuple(METRIC_DIRECTIONS)  # the score fields of a record
SEARCHER_DIRECTIONS = OPTUNA_DIRECTIONS


def direction(key: str, what: str = "results.key") -> str:
    """ "max" or "min" for a record key; a one-line error naming ``what`` for an unknown key."""
    if key not in KEY_DIRECTIONS:
        raise SharenasError(f"unknown {what} {key!r}; allowed: {', '.join(RECORD_KEYS)}")
    return KEY_DIRECTIONS[key]


def descending(key: str) -> bool:
    """True when higher values of ``key`` rank first (the ``descending`` of ranking.leaderboard)."""
    return direction(key) == "max"


class Objective:
    """Which record keys a searcher optimises, the cost limits paths must respect, and the key
    (``key``, ranked in its ``KEY_DIRECTIONS`` direction) the results are ranked by."""

    def __init__(
        self,
        objectives: Sequence[str],
        limits: Mapping[str, float | None] | None = None,
        key: str = "val_acc",
    ) -> None:
        for name in objectives:
            direction(name, "objective")
        self.objectives = list(objectives)
        self.limits = {k: float(v) for k, v in (limits or {}).items() if v is not None}
        for name in self.limits:
            direction(name, "constraint")
        self.key = key
        self.descending = descending(key)

    def values(self, record: dict) -> list[float]:
        return [float(record[k]) for k in self.objectives]

    def constraints(self, record: dict) -> list[float] | None:
        """Optuna convention: value <= 0 means feasible. None when unconstrained."""
        if not self.limits:
            return None
        return [float(record[k]) - limit for k, limit in self.limits.items()]

    def feasible(self, record: dict) -> bool:
        return all(c <= 0 for c in self.constraints(record) or [])

    def best(self, records: Iterable[Mapping]) -> float | None:
        """The best ``key`` value among the feasible records (None if there is none)."""
        values = [
            float(r[self.key]) for r in records if r.get(self.key) is not None and self.feasible(r)
        ]
        if not values:
            return None
        return max(values) if self.descending else min(values)

    def describe_limits(self) -> str:
        """E.g. "params <= 100000, flops <= 2e+06"."""
        return ", ".join(f"{k} <= {v:g}" for k, v in self.limits.items())
