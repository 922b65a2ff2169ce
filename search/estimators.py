"""Estimators: how an evaluation record becomes the one number a search ranks by (``score``).

``evaluator.estimator=NAME`` picks one; the record's ``score`` is its value, higher is better, and
the searchers' default objective and ``results.key`` are ``score``. All of them read weights that
paths inherit from the supernet, with BN recalibrated (``search.evaluate``):

- ``val_acc``: validation accuracy (the estimator before 2026-12-06);
- ``val_loss``: minus the validation loss;
- ``train_loss``: minus the loss on the whole training split, continuous and three times the
  images of the validation split on mnist5k, with BN recalibrated on all of it; it ranks as
  ``val_loss`` does in ``bench/fidelity.py``, at about four times its forward passes;
- ``angle``: the angle between the path's weights at the supernet's initialisation and after
  training (Hu et al., "Angle-based search space shrinking", ECCV 2020: paths whose weights moved
  further rank higher). It needs no forward pass: the initial supernet is rebuilt from the
  checkpoint's config and seed (``supernet.builder.initial_strategy``). On the dev benchmark
  (``bench/README.md``) it ranked NB201 cells *against* their standalone accuracy (Kendall tau
  below zero on both samples): it is here to be compared, not to be used by default;
- ``snip``, ``grad_norm``, ``synflow``: zero-cost proxies computed with the inherited weights
  (``search.zero_cost``): one backward pass on a fixed training batch (none for ``synflow``);
- ``val_loss+synflow``, ``val_loss+params`` and ``train_loss+params``: fixed-rule fusions,
  without fitted weights: the sum of the z-scores of minus the loss and of the log of a cost that
  ranks NB201 cells by their structure (the ``synflow`` of the path's weights, or its parameter
  count), each standardised on a seeded reference sample of ``REFERENCE_ARCHS`` archs scored once
  by the same evaluator. The structure alone already ranks NB201 cells well (DESIGN.md), and it
  errs where the supernet does not. ``val_loss+synflow`` is nb201's default: over 6 supernets on
  the uniform dev sample it ranks at Kendall tau 0.612 against 0.558 for ``val_loss+params`` and
  0.551 for ``train_loss`` (the default before), at a quarter of ``train_loss``'s forward passes
  per arch; synflow costs one float64 forward and backward pass of one image (``bench/README.md``).

``evaluator.calib_batches=auto`` follows the estimator: the whole training split for one that
scores the training split, else ``AUTO_CALIB_BATCHES`` batches (256 images at the default batch of
64: the calibration the benchmark ranked the validation-split estimators with).
"""

from __future__ import annotations

import math
import random
import statistics
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from search.zero_cost import ZERO_COST
from supernet.errors import UnknownNameError

REFERENCE_ARCHS = 64  # archs that set the fusion's standardisation (scored once per evaluator)
#: ``evaluator.estimator=auto`` (the default recipe's): the estimator ``bench/fidelity.py`` ranks
#: best on each space's dev samples (``bench/README.md``); another space gets ``AUTO_OTHER``.
AUTO_BY_SPACE = {"nb201": "val_loss+synflow", "mbv3": "angle"}
#: An unbenchmarked space: minus the validation loss, the supernet's own estimate. It ranked with
#: minus the training loss on both benchmarked spaces at a quarter of the forward passes, and no
#: fusion with cost: the parameter count ranks NB201 cells well but mbv3 archs against accuracy.
AUTO_OTHER = "val_loss"
#: ``evaluator.calib_batches=auto`` for an estimator that does not score the training split.
AUTO_CALIB_BATCHES = 4


@dataclass(frozen=True)
class Estimator:
    """One estimator: its record fields, and whether it needs the training-split loss."""

    name: str
    needs_train_loss: bool
    describe: str
    needs_initial: bool = False  # the supernet's initial weights (the angle)
    zero_cost: bool = False  # a proxy of search.zero_cost: the record's ``zero_cost`` field
    proxy: str | None = None  # the proxy the record's ``zero_cost`` holds (its own, or a fusion's)

    def __post_init__(self) -> None:
        if self.zero_cost and self.proxy is None:
            object.__setattr__(self, "proxy", self.name)


ESTIMATORS: dict[str, Estimator] = {
    e.name: e
    for e in (
        Estimator("val_acc", False, "validation accuracy"),
        Estimator("val_loss", False, "minus the validation loss"),
        Estimator("train_loss", True, "minus the loss on the whole training split"),
        Estimator("angle", False, "angle between initial and trained path weights", True),
        *(Estimator(name, False, text, zero_cost=True) for name, text in ZERO_COST.items()),
        Estimator(
            "val_loss+params",
            False,
            "z(minus the validation loss) + z(log parameters) on a reference sample",
        ),
        Estimator(
            "train_loss+params",
            True,
            "z(minus the training loss) + z(log parameters) on a reference sample",
        ),
        Estimator(
            "val_loss+synflow",
            False,
            "z(minus the validation loss) + z(log synflow) on a reference sample",
            proxy="synflow",
        ),
    )
}
#: Each fusion -> (the loss whose negation it scores, the cost whose log it adds): ``params``, or
#: ``synflow`` (the record's ``zero_cost``: ``search.zero_cost.synflow`` of the path's weights).
FUSIONS = {
    "val_loss+params": ("val_loss", "params"),
    "train_loss+params": ("train_loss", "params"),
    "val_loss+synflow": ("val_loss", "synflow"),
}


def get_estimator(name: str) -> Estimator:
    """The estimator called ``name``; one line listing the allowed names otherwise."""
    if name not in ESTIMATORS:
        raise UnknownNameError("evaluator.estimator", name, ESTIMATORS)
    return ESTIMATORS[name]


def resolve_estimator(name: str, space: str) -> str:
    """``name``, or for ``auto`` the estimator of ``AUTO_BY_SPACE`` for ``space`` (printed)."""
    if name != "auto":
        return get_estimator(name).name
    chosen = AUTO_BY_SPACE.get(space, AUTO_OTHER)
    why = "ranked best on its dev samples" if space in AUTO_BY_SPACE else "no benchmark of it"
    print(
        f"evaluator.estimator=auto -> {chosen} ({space} space: {why}, bench/README.md)",
        file=sys.stderr,
    )
    return chosen


def resolve_calibration(value: int | str, estimator: str) -> int | str:
    """``evaluator.calib_batches``: ``value``, or for ``auto`` the calibration that goes with
    ``estimator`` (a concrete name): ``all`` when it scores the training split, else
    ``AUTO_CALIB_BATCHES`` (printed)."""
    if value != "auto":
        return value
    if get_estimator(estimator).needs_train_loss:
        chosen, why = "all", "it scores the whole training split"
    else:
        chosen, why = AUTO_CALIB_BATCHES, "the benchmark's calibration for its estimators"
    print(f"evaluator.calib_batches=auto -> {chosen} ({estimator}: {why})", file=sys.stderr)
    return chosen


def log_cost(value: float) -> float:
    """The log of a cost (a parameter count, a synflow score); a value that is not positive (a
    synflow of 0: no path from input to output) gets the log of the smallest positive float."""
    return math.log(value) if value > 0 else math.log(sys.float_info.min)


def _fusion_parts(record: Mapping, name: str) -> tuple[float, float]:
    loss, cost = FUSIONS[name]
    value = record["params"] if cost == "params" else record["zero_cost"]
    return -float(record[loss]), log_cost(float(value))


class Scorer:
    """Turns records into ``score`` values for one estimator. ``evaluate(arch) -> record`` scores
    the fusion's reference sample the first time it is needed (seeded by ``seed``)."""

    def __init__(
        self, estimator: str, evaluate: Callable[[Mapping], Mapping], space, seed: int = 0
    ) -> None:
        self.estimator = get_estimator(estimator)
        self._evaluate = evaluate
        self._space = space
        self._seed = seed
        self._reference: list[tuple[float, float]] | None = None  # (mean, std) of each part

    @property
    def fusion(self) -> bool:
        """Whether the score is a fusion with cost (it needs the reference sample)."""
        return self.estimator.name in FUSIONS

    def reference(self) -> list[tuple[float, float]]:
        """Mean and standard deviation of each fusion part over the reference sample."""
        if self._reference is None:
            print(
                f"evaluator.estimator={self.estimator.name}: scoring {REFERENCE_ARCHS} seeded "
                "reference archs once, to standardise its parts",
                file=sys.stderr,
            )
            rng = random.Random(self._seed * 7919 + 17)
            parts = [
                _fusion_parts(self._evaluate(self._space.sample(rng)), self.estimator.name)
                for _ in range(REFERENCE_ARCHS)
            ]
            columns = list(zip(*parts, strict=True))
            self._reference = [(statistics.fmean(c), statistics.pstdev(c) or 1.0) for c in columns]
        return self._reference

    def __call__(self, record: Mapping) -> float:
        name = self.estimator.name
        if name == "val_acc":
            return float(record["val_acc"])
        if name == "val_loss":
            return -float(record["val_loss"])
        if name == "train_loss":
            return -float(record["train_loss"])
        if name == "angle":
            return float(record["angle"])
        if self.estimator.zero_cost:
            return float(record["zero_cost"])
        stats = self.reference()
        parts = _fusion_parts(record, name)
        return sum((v - mean) / std for v, (mean, std) in zip(parts, stats, strict=True))
