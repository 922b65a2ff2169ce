"""Objective: turns an evaluation record into the values and constraints a searcher is told."""

from __future__ import annotations

from collections.abc import Sequence

from supernet.errors import SharenasError

RECORD_KEYS = ("val_acc", "val_loss", "params", "flops", "latency_ms")


class Objective:
    """Which record keys a searcher optimises, and the cost limits paths must respect."""

    def __init__(self, objectives: Sequence[str], limits: dict[str, float | None] | None = None):
        for key in objectives:
            if key not in RECORD_KEYS:
                raise SharenasError(f"unknown objective {key!r}; allowed: {', '.join(RECORD_KEYS)}")
        self.objectives = list(objectives)
        self.limits = {k: float(v) for k, v in (limits or {}).items() if v is not None}
        for key in self.limits:
            if key not in RECORD_KEYS:
                raise SharenasError(
                    f"unknown constraint {key!r}; allowed: {', '.join(RECORD_KEYS)}"
                )

    def values(self, record: dict) -> list[float]:
        return [float(record[k]) for k in self.objectives]

    def constraints(self, record: dict) -> list[float] | None:
        """Optuna convention: value <= 0 means feasible. None when unconstrained."""
        if not self.limits:
            return None
        return [float(record[k]) - limit for k, limit in self.limits.items()]

    def feasible(self, record: dict) -> bool:
        return all(c <= 0 for c in self.constraints(record) or [])
