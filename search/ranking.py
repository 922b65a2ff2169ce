"""Ranking search results: the leaderboard (best first by one key) and the Pareto front.

A *record* is a plain dict for one evaluated arch: "arch", "val_acc", "val_loss", "params", "flops",
"latency_ms", "trial", "supernet" and any extra numeric keys. Tables (``search.tables``), result
files (``search.result_files``) and TensorBoard logging (``search.tensorboard_log``) build on these.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

Record = dict[str, Any]
Records = Iterable[Mapping[str, Any]]
Objectives = Sequence[tuple[str, str]]

DEFAULT_OBJECTIVES: tuple[tuple[str, str], ...] = (("val_acc", "max"), ("flops", "min"))


def value(record: Mapping[str, Any], key: str) -> float:
    """Numeric value of ``key`` in a record; raises if missing or None, naming what exists."""
    if (v := record.get(key)) is None:
        raise ValueError(f"record {record.get('arch')!r} has no {key!r}; keys: {sorted(record)}")
    return float(v)


def _tie_value(record: Mapping[str, Any], key: str, digits: int | None = None) -> float:
    """A tie-breaker value (smaller first); missing or non-numeric values sort last."""
    v = record.get(key)
    if not isinstance(v, int | float) or isinstance(v, bool):
        return math.inf
    return round(float(v), digits) if digits is not None else float(v)


def leaderboard(records: Records, key: str = "val_acc", descending: bool = True) -> list[Record]:
    """All records sorted best first by ``key``, each with a 1-based "rank".

    Records marked ``"feasible": False`` (they break a constraint) come after all the others.
    Ties on ``key`` are broken by lower ``val_loss`` rounded to 4 decimals, then by fewer
    ``params`` (so of functionally identical archs the smallest comes first), then by arch string.
    Records with a ``canonical`` form (``space.canonical``) also get "same_as": the rank of the
    first row computing the same network, or None for that first row.
    Returns new dicts; the input records are not modified.
    """
    rows = [dict(r) for r in records]
    if missing := [r for r in rows if "arch" not in r]:
        raise ValueError(f"records need an 'arch' key; first without one: {missing[0]}")
    sign = -1.0 if descending else 1.0

    def order(r: Record) -> tuple:
        ties = (_tie_value(r, "val_loss", 4), _tie_value(r, "params"), str(r["arch"]))
        return (r.get("feasible") is False, sign * value(r, key), *ties)

    rows.sort(key=order)
    first: dict[str, int] = {}
    for i, r in enumerate(rows, start=1):
        r["rank"] = i
        if "canonical" in r:
            r["same_as"] = first.setdefault(r["canonical"], i)
            r["same_as"] = None if r["same_as"] == i else r["same_as"]
    return rows


def _dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """True if ``a`` is at least as good as ``b`` everywhere and better somewhere (maximising)."""
    return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))


def pareto_front(records: Records, objectives: Objectives = DEFAULT_OBJECTIVES) -> list[Record]:
    """The non-dominated records for any number of ``(key, "max" | "min")`` objectives.

    Sorted by the first objective best first (then the others, then arch). Records with equal
    objective values do not dominate each other, so distinct archs that tie all stay; an exact
    duplicate (same arch, same objective values) is kept once.
    """
    if not objectives:
        raise ValueError("need at least one objective, e.g. (('val_acc', 'max'),)")
    if bad := [o for o in objectives if o[1] not in ("max", "min")]:
        raise ValueError(f"objective directions must be 'max' or 'min', got {bad}")
    signs = [1.0 if d == "max" else -1.0 for _, d in objectives]
    rows = [dict(r) for r in records]
    points = [tuple(s * value(r, k) for s, (k, _) in zip(signs, objectives)) for r in rows]
    # Best first, so a point can only be dominated by one before it, i.e. by a front member.
    order = sorted(zip(points, rows), key=lambda t: ([-x for x in t[0]], str(t[1].get("arch"))))
    front: list[tuple[tuple[float, ...], Record]] = []
    seen: set[tuple[Any, ...]] = set()
    for p, row in order:
        if (p, row.get("arch")) not in seen and not any(_dominates(q, p) for q, _ in front):
            front.append((p, row))
            seen.add((p, row.get("arch")))
    return [row for _, row in front]


def default_objectives(
    records: Sequence[Record], key: str, objectives: Objectives | None, descending: bool = True
) -> Objectives:
    """``objectives``, else (key, its direction) and (cost, min); cost is flops if all records
    have it (params otherwise), left out when it is the key itself."""
    if objectives is not None:
        return objectives
    cost = "flops" if all(r.get("flops") is not None for r in records) else "params"
    first = (key, "max" if descending else "min")
    return (first,) if cost == key else (first, (cost, "min"))


def feasible(records: Sequence[Record]) -> Sequence[Record]:
    """The records not marked ``"feasible": False``, or all of them if none is feasible."""
    return [r for r in records if r.get("feasible") is not False] or records


__all__ = [
    "DEFAULT_OBJECTIVES",
    "Objectives",
    "Record",
    "Records",
    "default_objectives",
    "feasible",
    "leaderboard",
    "pareto_front",
    "value",
]
