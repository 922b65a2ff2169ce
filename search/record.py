"""Record: what a search knows about one evaluated arch, and which way each score is better.

The one schema of a search's results: the evaluator fills it, the study stores each field as its
own Optuna trial user attribute, the backends carry it, and ranking, result files and TensorBoard
read it. ``METRIC_DIRECTIONS`` is the one mapping of score -> "max" | "min"; ``OPTUNA_DIRECTIONS``
translates Optuna's words.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

#: Score field -> "max" (higher is better) or "min" (lower is better).
METRIC_DIRECTIONS: dict[str, str] = {
    "score": "max",  # the estimator's value (evaluator.estimator, search.estimators)
    "val_acc": "max",
    "val_loss": "min",
    "params": "min",
    "flops": "min",
    "latency_ms": "min",
    "train_loss": "min",
    "angle": "max",  # radians the path's weights moved in training (evaluator.estimator=angle)
    "zero_cost": "max",  # the zero-cost proxy named by evaluator.estimator (search.zero_cost)
}
#: Optuna's direction words -> ranking directions.
OPTUNA_DIRECTIONS: dict[str, str] = {"maximize": "max", "minimize": "min"}


@dataclass
class Record:
    """One evaluated arch: its canonical string, its scores and costs, where it was routed.

    ``None`` means "not measured" (e.g. ``flops`` with ``evaluator.count_flops=false``). ``trial``
    is the study's trial number that evaluated the arch."""

    arch: str
    score: float | None = None  # the estimator's value, higher is better (search.estimators)
    val_acc: float | None = None  # % on the validation split, inherited weights, BN recalibrated
    val_loss: float | None = None  # mean cross-entropy on the validation split
    train_loss: float | None = None  # mean loss on the training split (evaluator.train_loss)
    params: int | None = None  # parameters of the extracted standalone net
    flops: float | None = None  # forward FLOPs of one sample (evaluator.count_flops)
    latency_ms: float | None = None  # median forward time of one sample (measure_latency)
    angle: float | None = None  # radians between the path's initial and trained weights (angle)
    zero_cost: float | None = None  # the estimator's zero-cost proxy (snip, grad_norm, synflow)
    raced: int | None = None  # evaluator.race stopped it: validation images its figures are from
    trial: int | None = None  # the study trial that evaluated it
    supernet: int | None = None  # the sub-supernet the sharing strategy routes the arch to

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Record:
        """A record from any mapping holding at least ``arch`` (other keys are ignored);
        numpy/torch scalars become Python numbers."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: _plain(v) for k, v in data.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def non_finite(self) -> list[str]:
        """The score fields holding NaN or an infinity (never ranked nor exported)."""
        return [
            k
            for k in METRIC_DIRECTIONS
            if isinstance(v := getattr(self, k), float) and not math.isfinite(v)
        ]


#: Every field of a record, in file order.
RECORD_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Record))


def _plain(value: Any) -> Any:
    """numpy / torch scalars as Python numbers."""
    return value.item() if hasattr(value, "item") else value


def finite_or_none(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, inf) replaced by ``None``, recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite_or_none(v) for v in obj]
    return obj


def strict_dumps(obj: Any, **kwargs: Any) -> str:
    """Strict JSON (RFC 8259): non-finite numbers written as ``null``, never as bare ``NaN``."""
    return json.dumps(finite_or_none(obj), allow_nan=False, **kwargs)
