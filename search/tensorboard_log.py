"""A search in TensorBoard: leaderboard scalars, the running best, hparams sessions of the top
archs, the leaderboard as text and the Pareto front as a matplotlib figure."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from search.ranking import (
    Objectives,
    Record,
    Records,
    default_objectives,
    feasible,
    leaderboard,
    pareto_front,
    value,
)
from search.tables import format_table

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter


def _pareto_figure(records: Sequence[Record], front: Sequence[Record], x: str, y: str) -> Any:
    """Scatter of all records (grey) and the front (red), drawn on a pyplot-free Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.scatter([value(r, x) for r in records], [value(r, y) for r in records], c="grey", s=12)
    pts = sorted((value(r, x), value(r, y)) for r in front)
    ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color="red", ms=4)
    ax.set(xlabel=x, ylabel=y, title=f"Pareto front (red): {y} vs {x}")
    fig.tight_layout()
    return fig


def log_to_tensorboard(
    writer: SummaryWriter,
    records: Records,
    key: str = "val_acc",
    top_k: int = 10,
    objectives: Objectives | None = None,
    descending: bool = True,
) -> None:
    """Log a search to TensorBoard: leaderboard scalars, best curve, hparams sessions of the top
    ``top_k`` archs, leaderboard text and Pareto figure.

    Every record goes into the writer's own event file as scalars: ``leaderboard/<k>`` against
    the rank for the ranking key and the Pareto objectives, and the running best of ``key`` (over
    records not marked ``"feasible": False``) as ``search/best_<key>`` against the trial number.
    Only the ``top_k`` ranked archs (``results.top_k``) get an hparams session, each in a subfolder
    ``trial_{trial:05d}`` with every numeric record field as a ``hparam/<field>`` metric: one
    folder per evaluated arch made thousands of runs (15,625 for an exhaustive NB201 search) that
    TensorBoard loads slowly and nobody compares; the full table is in leaderboard.csv.
    """
    ranked = leaderboard(records, key=key, descending=descending)
    objs = default_objectives(ranked, key, objectives, descending)
    curves = list(dict.fromkeys([key, *(k for k, _ in objs)]))
    for r in ranked:
        for k in curves:
            if isinstance(r.get(k), int | float) and math.isfinite(r[k]):
                writer.add_scalar(f"leaderboard/{k}", float(r[k]), global_step=int(r["rank"]))
    pick, best = (max, -math.inf) if descending else (min, math.inf)
    for r in sorted(ranked, key=lambda r: (r["trial"], r["rank"])):
        if r.get("feasible") is not False:  # the running best counts feasible archs only
            best = pick(best, value(r, key))
        if math.isfinite(best):
            writer.add_scalar(f"search/best_{key}", best, global_step=int(r["trial"]))
    _log_hparams(writer, ranked[:top_k])
    writer.add_text("leaderboard", format_table(ranked, top_k, markdown=True))
    try:
        front = pareto_front(feasible(ranked), objs)
        fig = _pareto_figure(ranked, front, x=objs[-1][0], y=objs[0][0])
    except ImportError:
        writer.add_text("pareto", "matplotlib is not installed: Pareto front figure skipped.")
    else:
        writer.add_figure("pareto", fig)
    writer.flush()


def _log_hparams(writer: SummaryWriter, top: Sequence[Record]) -> None:
    """One hparams session per record in ``trial_{trial:05d}`` (``_2``, ... for a trial scored
    twice), every numeric field a ``hparam/<field>`` metric."""
    seen: dict[str, int] = {}
    for r in sorted(top, key=lambda r: (r["trial"], r["rank"])):
        base = f"trial_{r['trial']:05d}"
        n = seen[base] = seen.get(base, 0) + 1
        hparams = {k: r[k] for k in ("arch", "trial", "supernet") if r.get(k) is not None}
        nums = {k: v for k, v in r.items() if isinstance(v, int | float) and math.isfinite(v)}
        metrics = {f"hparam/{k}": float(v) for k, v in nums.items() if k not in {*hparams, "rank"}}
        run = base if n == 1 else f"{base}_{n}"
        writer.add_hparams(hparam_dict=hparams, metric_dict=metrics, run_name=run)


__all__ = ["log_to_tensorboard"]
