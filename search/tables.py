"""Console and markdown tables of ranked records, and the line that introduces them."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from search.ranking import Records, leaderboard

DEFAULT_COLUMNS = ("rank", "val_acc", "val_loss", "params", "flops", "trial", "arch")
_COUNTS = {"params", "flops"}  # shown human readable (1.23M)


def human(n: float) -> str:
    """A count with three significant digits and a unit suffix: 950, 1.23K, 45.6M, 1.00G."""
    value, sign = abs(float(n)), "-" if n < 0 else ""
    if round(value) < 1000:
        return f"{sign}{value:.0f}"
    for unit in ("K", "M", "G", "T", "P"):
        value /= 1000.0
        decimals = 2 if value < 10 else 1 if value < 100 else 0
        if round(value, decimals) < 1000 or unit == "P":
            return f"{sign}{value:.{decimals}f}{unit}"
    raise AssertionError("unreachable")


def _cell(key: str, value: Any, decimals: int = 2) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key in _COUNTS and isinstance(value, int | float):
        return human(value)
    if isinstance(value, float):
        return f"{value:.{decimals}f}"
    return "-" if value is None else str(value)


def decimals_for(values: Iterable[Any]) -> int:
    """The fewest decimals, from 2 up to 4, at which a column's different floats still read
    differently: an estimator such as the angle (0.0193, 0.0312) would read 0.02 and 0.03 at 2."""
    floats = {v for v in values if isinstance(v, float) and math.isfinite(v)}
    for decimals in (2, 3):
        if len({f"{v:.{decimals}f}" for v in floats}) == len(floats):
            return decimals
    return 4


def format_table(
    rows: Records, k: int = 10, columns: Sequence[str] = DEFAULT_COLUMNS, markdown: bool = False
) -> str:
    """An aligned plain-text table of the top ``k`` rows: header, dashed separator, one line each.

    ``rows`` are taken in order (rank them with ``leaderboard`` by val_acc when they have no
    "rank"). Text columns (arch) are left-aligned, numbers right-aligned, missing values are "-".
    ``markdown=True`` gives a markdown table instead, with arch strings in code spans.
    """
    rows = list(rows)
    top = (rows if all("rank" in r for r in rows) else leaderboard(rows))[:k]
    places = {c: decimals_for(r.get(c) for r in top) for c in columns}
    cells = [[_cell(c, r.get(c), places[c]) for c in columns] for r in top]
    if markdown:
        cells = [[f"`{v}`" if c == "arch" else v for c, v in zip(columns, cl)] for cl in cells]
        body = [columns, ["---"] * len(columns), *cells]
        return "\n".join("| " + " | ".join(line) + " |" for line in body)
    widths = [max([len(c), *(len(line[i]) for line in cells)]) for i, c in enumerate(columns)]
    left = [bool(top) and all(isinstance(r.get(c), str) for r in top) for c in columns]

    def line(values: Sequence[str]) -> str:
        parts = [v.ljust(w) if lt else v.rjust(w) for v, w, lt in zip(values, widths, left)]
        return "  ".join(parts).rstrip()

    return "\n".join([line(columns), line(["-" * w for w in widths]), *map(line, cells)])


def table_columns(shown: Iterable[str] = (), feasibility: bool = False) -> list[str]:
    """``DEFAULT_COLUMNS`` with every key of ``shown`` (the ranking key, each objective, each
    constrained cost) added before "arch" where it is not there yet, and "feasible" when asked."""
    columns = list(DEFAULT_COLUMNS[:-1])
    columns += [k for k in dict.fromkeys(shown) if k not in columns]
    return [*columns, *(["feasible"] if feasibility else []), "arch"]


def count(n: int, noun: str) -> str:
    """ "1 arch", "5 archs": ``n`` and ``noun``, plural unless ``n`` is 1."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def top_of(k: int, n: int) -> str:
    """How many of ``n`` rows a top-``k`` table shows: "top 10 of 50", or "all 5" when k >= n."""
    return f"all {n}" if k >= n else f"top {k} of {n}"


__all__ = ["DEFAULT_COLUMNS", "count", "format_table", "human", "table_columns", "top_of"]
