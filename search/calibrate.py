"""Calibrated ranking: standalone accuracy predicted from what the search measured for every arch
(the supernet's estimate, the parameter count and, optionally, the choice at each decision),
fitted on the archs the verify stage trained, then applied to every evaluated arch.

The model is a rank regression: the estimate and the parameter count enter as their percentile
among all evaluated archs, the label as its percentile among the verified ones, and a ridge fit
(standardised features, penalty ``ALPHA`` fixed in advance, never tuned on a benchmark) maps one
to the other. Ranks keep the fit from being ruled by outliers such as cells with no path from
input to output, which train to chance accuracy and would otherwise decide every weight. The
prediction is turned back into an accuracy through the verified archs' own accuracies (a
monotone map: it does not change the ranking). ``leave_one_out`` tells, on the verified archs alone,
whether the fit ranks them better than the raw estimate; ``bench/calibration.py`` measures how
many verified archs it needs on the dev samples.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from search.fidelity import kendall_tau
from search.record import finite_or_none
from search.tables import format_table

#: Ridge penalty on standardised features (fixed before any figure was measured).
ALPHA = 1.0
#: Feature sets: what the fit sees besides the estimate and the parameter count.
FEATURES = ("none", "counts", "decisions")


@dataclass(frozen=True)
class Design:
    """How records become feature rows: the estimate's key and direction, and what else.

    ``extra``: ``"none"``; ``"counts"``, how many decisions take each choice value (e.g. the
    number of 3x3 convolutions in an NB201 cell, of kernel-7 blocks in mbv3); ``"decisions"``,
    one indicator per decision and choice. ``choices`` is the space's ``choices()``."""

    key: str
    descending: bool  # True: a higher estimate is better
    choices: Mapping[str, Sequence[str]] | None = None
    extra: str = "none"

    def __post_init__(self) -> None:
        if self.extra not in FEATURES:
            raise ValueError(f"unknown features {self.extra!r}; allowed: {', '.join(FEATURES)}")
        if self.extra != "none" and not self.choices:
            raise ValueError(f"features {self.extra!r} need the space's choices")

    @property
    def values(self) -> list[str]:
        """Every choice value of the space, once, in a fixed order."""
        return sorted({c for options in (self.choices or {}).values() for c in options})

    @property
    def columns(self) -> list[str]:
        names = [f"estimate ({self.key})", "log params"]
        if self.extra == "counts":
            names += [f"count {v}" for v in self.values]
        elif self.extra == "decisions":
            for decision, options in (self.choices or {}).items():
                names += [f"{decision}={c}" for c in options]
        return names

    def rows(
        self, records: Sequence[Mapping], decisions: Sequence[Mapping[str, str]]
    ) -> np.ndarray:
        """One feature row per record; ``decisions[i]`` is record i's decision -> choice. The
        estimate and the parameter count are percentiles among ``records``: pass every
        evaluated arch, then pick the rows to fit on."""
        sign = 1.0 if self.descending else -1.0
        columns = [
            percentiles([sign * float(r[self.key]) for r in records]),
            percentiles([math.log(max(float(r["params"]), 1.0)) for r in records]),
        ]
        if self.extra == "counts":
            for v in self.values:
                columns.append(
                    np.array([float(sum(c == v for c in a.values())) for a in decisions])
                )
        elif self.extra == "decisions":
            for decision, options in (self.choices or {}).items():
                for c in options:
                    columns.append(np.array([float(a.get(decision) == c) for a in decisions]))
        return np.column_stack(columns).reshape(len(records), len(self.columns))


def percentiles(values: Sequence[float]) -> np.ndarray:
    """Each value's rank among ``values`` as a fraction in (0, 1); ties share their mean rank."""
    return stats.rankdata(np.asarray(values, dtype=np.float64)) / (len(values) + 1)


@dataclass(frozen=True)
class Fit:
    """A fitted ridge model: standardisation, weights, intercept, and the labels it was fitted
    on (to turn a predicted percentile back into an accuracy)."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    labels: np.ndarray

    @property
    def n(self) -> int:
        return len(self.labels)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted percentile of each row among the verified archs (higher is better)."""
        return ((x - self.mean) / self.scale) @ self.coef + self.intercept

    def accuracy(self, x: np.ndarray) -> np.ndarray:
        """The prediction as an accuracy: that percentile of the verified archs' accuracies."""
        return np.quantile(self.labels, np.clip(self.predict(x), 0.0, 1.0))


def fit(x: np.ndarray, y: Sequence[float], alpha: float = ALPHA) -> Fit:
    """Ridge regression of the percentiles of ``y`` on ``x``, features standardised on these
    rows (a constant feature gets weight 0)."""
    labels = np.asarray(y, dtype=np.float64)
    if len(labels) < 2:
        raise ValueError(f"a calibration needs at least 2 verified archs, got {len(labels)}")
    target = percentiles(labels)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    xs = (x - mean) / scale
    gram = xs.T @ xs + alpha * np.eye(x.shape[1])
    coef = np.linalg.solve(gram, xs.T @ (target - target.mean()))
    return Fit(mean, scale, coef, float(target.mean()), labels)


def leave_one_out(x: np.ndarray, y: Sequence[float], alpha: float = ALPHA) -> np.ndarray:
    """Each row's prediction from a fit on all the other rows."""
    y = np.asarray(y, dtype=np.float64)
    keep = np.ones(len(y), dtype=bool)
    out = np.empty(len(y))
    for i in range(len(y)):
        keep[i] = False
        out[i] = fit(x[keep], y[keep], alpha).predict(x[i : i + 1])[0]
        keep[i] = True
    return out


def calibrate_ranking(
    ranked: Sequence[dict],
    verified: Sequence[Mapping],
    design: Design,
    decisions: Sequence[Mapping[str, str]],
    minimum: int,
) -> dict:
    """Fit on the ``verified`` rows (arch, standalone_acc) and give every row of ``ranked``
    (``decisions[i]`` is row i's decision -> choice) its ``calibrated_acc``. Returns the report:
    what was fitted, and the leave-one-out Kendall tau on the verified archs of the calibrated
    ranking beside the raw estimate's. With fewer than ``minimum`` verified archs nothing is
    fitted (``fitted`` false): below that, on the dev benchmark, it ranks worse than the raw
    estimate (``bench/calibration.py``)."""
    report = {"n": len(verified), "minimum": minimum, "features": design.extra}
    if len(verified) < minimum:
        return report | {"fitted": False}
    if len({float(v["standalone_acc"]) for v in verified}) < 3:
        why = "their standalone accuracies take fewer than 3 distinct values"
        return report | {"fitted": False, "why": why}
    x = design.rows(ranked, decisions)  # percentiles among every evaluated arch
    where = {r["arch"]: i for i, r in enumerate(ranked)}
    rows = [where[v["arch"]] for v in verified]
    labels = [float(v["standalone_acc"]) for v in verified]
    model = fit(x[rows], labels)
    for row, acc in zip(ranked, model.accuracy(x).tolist(), strict=True):
        row["calibrated_acc"] = float(acc)
    truth = {v["arch"]: float(v["standalone_acc"]) for v in verified}
    loo = dict(zip(truth, leave_one_out(x[rows], labels).tolist(), strict=True))
    raw = {a: float(x[i, 0]) for a, i in zip(truth, rows, strict=True)}
    weights = dict(zip(design.columns, model.coef.tolist(), strict=True))
    return report | {
        "fitted": True,
        "alpha": ALPHA,
        "weights": weights,
        "leave_one_out_kendall_tau": {
            "calibrated": finite_or_none(kendall_tau(loo, truth)),
            "supernet": finite_or_none(kendall_tau(raw, truth)),
        },
    }


EXTRA_TEXT = {
    "none": "",
    "counts": " and how many decisions take each choice",
    "decisions": " and the choice at each decision",
}


def format_calibration(
    report: Mapping, ranked: Sequence[Mapping], key: str, k: int, verified: Sequence[Mapping] = ()
) -> str:
    """The printed calibration block: a line when nothing was fitted, else the fit's
    leave-one-out agreement and the top ``k`` archs by calibrated accuracy, with the standalone
    accuracy of those among them that were ``verified``."""
    if not report["fitted"]:
        why = report.get(
            "why",
            f"it needs at least {report['minimum']}: with fewer it ranks worse than the raw "
            "estimate on the dev benchmark; raise verify.control",
        )
        return f"calibrated ranking: not fitted ({report['n']} distinct verified archs; {why})"
    loo = report["leave_one_out_kendall_tau"]

    def show(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.2f}"

    accs = {v["arch"]: v["standalone_acc"] for v in verified}
    top = [
        {**r, "standalone_acc": accs.get(r["arch"])}
        for r in sorted(ranked, key=lambda r: (-r["calibrated_acc"], r["rank"]))[:k]
    ]
    return "\n".join(
        [
            f"calibrated ranking: standalone accuracy predicted from the estimate and the "
            f"parameter count{EXTRA_TEXT[report['features']]}, fitted on {report['n']} verified "
            f"archs (leave-one-out Kendall tau on them: calibrated {show(loo['calibrated'])}, "
            f"supernet {show(loo['supernet'])}: prefer it only when the first is clearly higher); "
            f"top {len(top)}:",
            format_table(
                top, k=len(top), columns=["rank", key, "calibrated_acc", "standalone_acc", "arch"]
            ),
        ]
    )
