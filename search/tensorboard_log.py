"""A search in TensorBoard at its end: leaderboard scalars against the rank, the leaderboard as
text and the Pareto front as a matplotlib figure. The per-trial curves, the running best and one
HParams session per evaluated arch are written live (``search.tensorboard_live``)."""

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
    """Log a finished search: ``leaderboard/<k>`` scalars against the rank for the ranking key and
    the Pareto objectives, the ``top_k`` leaderboard as a markdown table, the Pareto figure."""
    ranked = leaderboard(records, key=key, descending=descending)
    objs = default_objectives(ranked, key, objectives, descending)
    curves = list(dict.fromkeys([key, *(k for k, _ in objs)]))
    for r in ranked:
        for k in curves:
            if isinstance(r.get(k), int | float) and math.isfinite(r[k]):
                writer.add_scalar(f"leaderboard/{k}", float(r[k]), global_step=int(r["rank"]))
    writer.add_text("leaderboard", format_table(ranked, top_k, markdown=True))
    try:
        front = pareto_front(feasible(ranked), objs)
        fig = _pareto_figure(ranked, front, x=objs[-1][0], y=objs[0][0])
    except ImportError:
        writer.add_text("pareto", "matplotlib is not installed: Pareto front figure skipped.")
    else:
        writer.add_figure("pareto", fig)
    writer.flush()


__all__ = ["log_to_tensorboard"]
