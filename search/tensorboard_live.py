"""A search in TensorBoard as it runs: each record is logged the moment its trial finishes.

``LiveSearchLog`` is a ``Study`` listener. For every stored record it writes, with the trial
number as the step, the record's ranking score (``search/<key>``), the running best over feasible
records (``search/best_<key>``) and, for a multi-objective search, the hypervolume of the feasible
front (``search/hypervolume``). Each record also becomes one HParams session (``trials/trial_<n>``)
with one discrete hparam per decision of the space (its domain declared) plus the sub-supernet it
was routed to (and, in a search with racing, ``raced``: whether racing stopped it after the first
stage, its figures then the first stage's), and every score the search computed as a metric. The
experiment (hparams, domains, metrics) is declared once, in the root run, so no run is a blank
session. The standalone accuracy
of a verified arch is added to its session afterwards (``add_standalone``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams

from search.record import METRIC_DIRECTIONS, Record

if TYPE_CHECKING:
    from supernet.spaces.base import Space

#: Custom-scalars layout: training, sharing and search charts grouped on one page.
LAYOUT: dict[str, dict[str, list]] = {
    "training": {
        "loss": ["Multiline", [r"train/.*loss"]],
        "accuracy": ["Multiline", [r"train/.*acc"]],
        "learning rate": ["Multiline", [r"train/lr"]],
    },
    "sharing": {
        "sub-supernets": ["Multiline", [r"sharing/num_supernets"]],
        "gradient conflict": ["Multiline", [r"sharing/cross_cosine/.*"]],
    },
    "search": {
        "score per trial": ["Multiline", [r"search/(?!best_|hypervolume).*"]],
        "running best": ["Multiline", [r"search/best_.*"]],
        "hypervolume": ["Multiline", [r"search/hypervolume"]],
    },
}
METRICS = tuple(METRIC_DIRECTIONS)  # every score a record can hold


def session_name(trial: int) -> str:
    """The run folder (under ``tb/``) of the HParams session of ``trial``."""
    return f"trials/trial_{trial:05d}"


class LiveSearchLog:
    """Study listener that logs each record to TensorBoard as its trial finishes.

    ``objectives`` are the searcher's (key, "max" | "min") pairs; with two or more, the
    hypervolume of the feasible front is logged too, against a reference point just beyond the
    worst value seen so far of each objective (10% of its range). The reference moves out when a
    worse point arrives, which can lower the curve although the front lost nothing: a rise is a
    better front, a drop a wider range (Optuna's ``plot_hypervolume_history`` takes a fixed
    reference point, which a search cannot know before it has seen its archs).
    ``verify``: declare ``standalone_acc`` as a metric (the verify stage fills it in later).
    ``raced``: every session gets a ``raced`` hparam (True: racing stopped the arch after its first
    stage, ``search.racing``), so the dashboard can filter or colour by it."""

    def __init__(
        self,
        writer: SummaryWriter,
        space: Space,
        key: str,
        descending: bool,
        objectives: Sequence[tuple[str, str]],
        num_supernets: int = 1,
        feasible: Any = None,
        verify: bool = False,
        raced: bool = False,
    ) -> None:
        self.writer, self.space, self.key, self.descending = writer, space, key, descending
        self.objectives = list(objectives)
        self.feasible = feasible or (lambda record: True)
        self.best: float | None = None
        self.best_step = 0  # where search/best_<key> was last logged
        self.points: list[list[float]] = []  # feasible records' objective values, as minimised
        self.n_logged = 0
        self.raced = raced
        metrics = [*METRICS, *(["standalone_acc"] if verify else [])]
        self.metric_tags = [f"hparam/{m}" for m in metrics]
        domains: dict[str, list] = {d: list(c) for d, c in space.choices().items()}
        domains["supernet"] = [float(i) for i in range(max(1, int(num_supernets)))]
        if raced:
            domains["raced"] = [False, True]
        example = {d: c[0] for d, c in domains.items()}
        experiment, _, _ = hparams(
            example, dict.fromkeys(self.metric_tags, 0.0), hparam_domain_discrete=domains
        )
        writer.file_writer.add_summary(experiment)  # declared once, in the root run
        writer.add_custom_scalars(LAYOUT)
        writer.flush()

    def __call__(self, record: Record | Mapping[str, Any]) -> None:
        r = record.to_dict() if isinstance(record, Record) else dict(record)
        step = int(r["trial"]) if r.get("trial") is not None else self.n_logged
        self.n_logged += 1
        value = r.get(self.key)
        if isinstance(value, int | float) and math.isfinite(value):
            self.writer.add_scalar(f"search/{self.key}", float(value), step)
            if self.feasible(r):
                better = self.best is None or (
                    value > self.best if self.descending else value < self.best
                )
                self.best = float(value) if better else self.best
        # the running best at the highest trial number finished so far: on Ray, trials finish
        # out of order, and a best logged at its own trial's step could go down
        self.best_step = max(self.best_step, step)
        if self.best is not None:
            self.writer.add_scalar(f"search/best_{self.key}", self.best, self.best_step)
        if len(self.objectives) >= 2 and self.feasible(r):
            if (hv := self._hypervolume(r)) is not None:
                self.writer.add_scalar("search/hypervolume", hv, step)
        self._session(r, step)
        self.writer.flush()

    def _hypervolume(self, r: Mapping[str, Any]) -> float | None:
        """Hypervolume of the feasible points so far (Optuna's exact WFG algorithm)."""
        from optuna._hypervolume import compute_hypervolume

        values = [r.get(k) for k, _ in self.objectives]
        if not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
            return None
        signs = [1.0 if d == "min" else -1.0 for _, d in self.objectives]
        self.points.append([s * float(v) for s, v in zip(signs, values)])
        pts = np.asarray(self.points)
        span = pts.max(axis=0) - pts.min(axis=0)
        reference = pts.max(axis=0) + 0.1 * np.where(span > 0, span, 1.0)
        return float(compute_hypervolume(pts, reference))

    def _session(self, r: Mapping[str, Any], step: int) -> None:
        """One HParams session: a hparam per decision and the sub-supernet, every score a metric."""
        arch = self.space.parse(r["arch"])
        hp: dict[str, Any] = dict(arch)
        hp["supernet"] = float(r.get("supernet") or 0)
        if self.raced:
            hp["raced"] = r.get("raced") is not None
        _, start, end = hparams(hp, dict.fromkeys(self.metric_tags, 0.0))
        with SummaryWriter(str(self._dir(step))) as w:
            w.file_writer.add_summary(start)
            for m in METRICS:
                v = r.get(m)
                if isinstance(v, int | float) and math.isfinite(v):
                    w.add_scalar(f"hparam/{m}", float(v), step)
            w.file_writer.add_summary(end)

    def _dir(self, trial: int) -> str:
        return f"{self.writer.log_dir}/{session_name(trial)}"

    def add_standalone(
        self, rows: Sequence[Mapping[str, Any]], trials: Mapping[str, int | None]
    ) -> None:
        """Add each verified arch's standalone accuracy to its session (``hparam/standalone_acc``);
        ``trials`` maps an arch string to the trial that evaluated it."""
        for row in rows:
            trial, acc = trials.get(row["arch"]), row.get("standalone_acc")
            if trial is None or not isinstance(acc, int | float) or not math.isfinite(acc):
                continue
            with SummaryWriter(self._dir(int(trial))) as w:
                w.add_scalar("hparam/standalone_acc", float(acc), int(trial))


def score_histogram(records: Sequence[Mapping[str, Any]], key: str) -> Any | None:
    """A matplotlib figure: histogram of the evaluated archs' ``key`` (None without matplotlib)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    values = [float(v) for r in records if isinstance(v := r.get(key), int | float)]
    values = [v for v in values if math.isfinite(v)]
    fig = Figure(figsize=(5, 3.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.hist(values, bins=min(30, max(5, len(values) // 3)), color="steelblue")
    ax.set(xlabel=key, ylabel="archs", title=f"{len(values)} evaluated archs: {key}")
    fig.tight_layout()
    return fig


__all__ = ["LAYOUT", "LiveSearchLog", "score_histogram", "session_name"]
