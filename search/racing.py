"""Racing: stop scoring an arch once it cannot reach the top of the search (``evaluator.race``).

A record's forward passes are BN recalibration on the calibration batches, then the validation
split. Most archs a search meets rank far below its best, and their full record buys nothing the
leaderboard's top needs. With racing on, each arch first runs a short stage once ``top_k`` archs
are fully scored:

1. its BN statistics are recalibrated on the first calibration batch only;
2. it scores the first ``images`` validation images, keeping the loss and correctness per image;
3. its most optimistic score is computed: the mean loss ``z`` standard errors lower and the
   accuracy ``z`` standard errors higher, through the estimator (a fusion with cost included).

If even that score is below the ``top_k``-th best full score seen so far (feasible records only),
the arch stops there: its record keeps the first stage's figures and ``raced`` = the number of
validation images it was scored on. Otherwise it is scored in full, exactly as without racing.
An arch that breaks a ``params`` or ``flops`` constraint stops at the first stage too: it cannot
reach the feasible top. Where the archs are too close to tell apart on the first stage (or the
top is still weak, right after it formed), each one pays for it and none stops; after ``PAUSE``
first stages in a row that stopped nothing, only one arch in ``PROBE_EVERY`` runs it, until one
stops again. Both changes are printed.

A stopped arch's figures are biased, not only noisier: its BN statistics come from one batch, and
its loss is higher than its full record's (on the default nb201 supernet, scores 0.84 lower on
average). Below the top, stopped archs sort after fully scored ones of the same quality.

For an estimator read from the validation split this is a statistical rule, not an exact bound:
the first stage's BN statistics come from fewer images, and a loss's standard error is estimated
from the images scored. An estimator that reads no split's loss or accuracy (``EXACT_ESTIMATORS``:
the angle, mbv3's default, and the zero-cost proxies) races exactly: its score is computed before
any validation pass, the same as in the full record, and an arch stops when that score is below
the top. Only the stopped arch's record figures come from the first stage (one calibration batch,
``images`` validation images), so the order by score and the top's records are exactly those
of a search without racing (only ties in score, broken by the validation loss, may order
differently below the top); such a race never pauses, since checking costs no pass.
``bench/racing.py`` measures both sides on a trained supernet: the cost per arch against the full
evaluator and the naive baseline, and how many archs of the full evaluator's top-k racing stopped.
"""

from __future__ import annotations

import heapq
import math
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import torch

from supernet.errors import SharenasError

#: Estimators whose score is read from the validation split's loss or accuracy: they race on a
#: first stage's hopeful figures.
VAL_ESTIMATORS = ("val_acc", "val_loss", "val_loss+params", "val_loss+synflow")
#: Estimators that read no split's loss or accuracy: they race on their exact score.
EXACT_ESTIMATORS = ("angle", "snip", "grad_norm", "synflow")
#: The estimators that race: train_loss and train_loss+params do not (their passes are the
#: whole training split, and a first stage of it would cost what racing saves).
RACE_ESTIMATORS = VAL_ESTIMATORS + EXACT_ESTIMATORS
#: First stages in a row without a stop after which only one arch in PROBE_EVERY runs one.
PAUSE = 20
PROBE_EVERY = 10


@dataclass
class Race:
    """The racing rule of one evaluator, and the best full scores it has seen (``observe``)."""

    top_k: int = 10  # the leaderboard's top an arch must be able to reach (results.top_k)
    z: float = 3.0  # standard errors of optimism
    images: int = 64  # validation images of the first stage
    limits: Mapping[str, float] = field(default_factory=dict)  # constraints: feasible records
    exact: bool = False  # the score needs no pass (EXACT_ESTIMATORS): never paused
    _best: list[float] = field(default_factory=list, repr=False)  # min-heap of the top_k scores
    _misses: int = 0  # first stages in a row that stopped nothing
    _waited: int = 0  # archs scored in full without a first stage while paused

    def __post_init__(self) -> None:
        for key, value, low in (("race_top_k", self.top_k, 1), ("race_images", self.images, 2)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise SharenasError(f"evaluator.{key} must be an integer >= {low}, got {value!r}")
        number = isinstance(self.z, int | float) and not isinstance(self.z, bool)
        if not (number and math.isfinite(self.z) and self.z >= 0):
            raise SharenasError(f"evaluator.race_z must be a finite number >= 0, got {self.z!r}")
        self.limits = {k: float(v) for k, v in self.limits.items() if v is not None}

    @staticmethod
    def check_estimator(estimator: str, given: str | None = None) -> None:
        """One line when ``estimator`` (resolved from ``given``, e.g. ``auto``) does not score
        the validation split."""
        if estimator not in RACE_ESTIMATORS:
            shown = estimator if given in (None, estimator) else f"{given} ({estimator} here)"
            raise SharenasError(
                f"evaluator.race=true needs an estimator read from the validation split "
                f"({', '.join(VAL_ESTIMATORS)}) or one scored without a validation pass "
                f"({', '.join(EXACT_ESTIMATORS)}), got evaluator.estimator={shown}"
            )

    def observe(self, record: Mapping) -> None:
        """Count a fully scored record's score toward the top (infeasible or raced ones not)."""
        score = record.get("score")
        if record.get("raced") is not None or score is None or not math.isfinite(score):
            return
        if self.infeasible(record):
            return
        if len(self._best) < self.top_k:
            heapq.heappush(self._best, float(score))
        elif score > self._best[0]:
            heapq.heapreplace(self._best, float(score))

    def observe_all(self, records: Iterable[Mapping]) -> None:
        for record in records:
            self.observe(record)

    def top(self) -> list[float]:
        """The full scores that make the top, best first (what another process ``adopt``s)."""
        return sorted(self._best, reverse=True)

    def adopt(self, top: Iterable[float]) -> None:
        """Race against ``top`` (another process's ``top()``: the Ray driver's, which sees every
        worker's records) when its threshold is higher than this one's. Each threshold is a
        k-th best score of distinct records, so neither exceeds the k-th best of all records:
        the higher is the better bound. The top is replaced, never merged, so no record counts
        twice."""
        best = heapq.nlargest(self.top_k, (float(s) for s in top if math.isfinite(float(s))))
        if len(best) < self.top_k:
            return
        if self.threshold is None or best[-1] > self.threshold:
            heapq.heapify(best)
            self._best = best  # a paused race stays paused: its next probe may resume it

    @property
    def threshold(self) -> float | None:
        """The ``top_k``-th best full score so far; None until ``top_k`` archs are scored."""
        return self._best[0] if len(self._best) >= self.top_k else None

    def enter(self) -> bool:
        """Whether the next arch runs the first stage: once there is a top to race against, every
        arch, or while paused one in ``PROBE_EVERY``."""
        if self.threshold is None:
            return False
        if self.exact or self._misses < PAUSE:
            return True
        self._waited += 1
        return self._waited % PROBE_EVERY == 0

    def infeasible(self, record: Mapping) -> bool:
        """Whether ``record`` breaks a constraint it holds a value for."""
        return any(
            record.get(k) is not None and float(record[k]) > v for k, v in self.limits.items()
        )

    def stops(self, optimistic_score: float) -> bool:
        """Whether an arch whose most optimistic score is this cannot reach the top (a first
        stage's verdict: ``PAUSE`` of them in a row that are all False pause racing, unless the
        race is ``exact``)."""
        threshold = self.threshold
        stop = threshold is not None and optimistic_score < threshold
        if self.exact:  # an exact score costs no pass to check: nothing to pause
            return stop
        if stop and self._misses >= PAUSE:
            print("\nevaluator.race: an arch was stopped again: racing resumed", file=sys.stderr)
        self._misses = 0 if stop else self._misses + 1
        if self._misses == PAUSE:
            self._waited = 0
            print(
                f"\nevaluator.race: none of the last {PAUSE} archs that ran the first stage could "
                f"be stopped on {self.images} images: paused, one arch in {PROBE_EVERY} still "
                "runs it until one stops; the others are scored in full",
                file=sys.stderr,
            )
        return stop


def first_stage(losses: torch.Tensor, correct: torch.Tensor, z: float) -> tuple[dict, dict]:
    """(point figures, optimistic figures) of the first stage from per-image ``losses`` and
    ``correct`` (0/1): ``val_loss`` and ``val_acc`` (%), the optimistic ones ``z`` standard
    errors better and clipped to what they can be (a loss >= 0, an accuracy <= 100)."""
    n = losses.numel()
    losses, correct = losses.double(), correct.double()
    loss, acc = float(losses.mean()), float(correct.mean())
    loss_se = float(losses.std()) / math.sqrt(n)
    acc_se = float(correct.std()) / math.sqrt(n)
    point = {"val_loss": loss, "val_acc": 100.0 * acc}
    hopeful = {
        "val_loss": max(loss - z * loss_se, 0.0),
        "val_acc": min(100.0 * (acc + z * acc_se), 100.0),
    }
    return point, hopeful
