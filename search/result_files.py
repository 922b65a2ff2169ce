"""Result files of a search: ``leaderboard.csv``, ``results.json`` and ``pareto.json``; and the
outputs of an earlier search in the same run directory, moved aside before a new one writes."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from search.ranking import (
    Objectives,
    Record,
    Records,
    default_objectives,
    feasible,
    leaderboard,
    pareto_front,
)
from search.record import RECORD_FIELDS, strict_dumps
from supernet.fileio import write_atomic

# Known keys come first in files, in this order; unknown keys follow alphabetically.
_KEY_ORDER = ("rank", *RECORD_FIELDS)


#: What a search writes into its run directory, besides the caches it reuses on a rerun (the
#: verify stage's ``verify/``, a study's storage) and a supernet trained there.
SEARCH_OUTPUTS = (
    "results.json",
    "leaderboard.csv",
    "pareto.json",
    "verify.json",
    "best",
    "best_supernet",
    "top",
)


def move_earlier_outputs(run_dir: Path, tensorboard: bool = True) -> Path | None:
    """Move the outputs of an earlier search in ``run_dir`` (``SEARCH_OUTPUTS``, and ``tb/`` when
    ``tensorboard``) into ``run_dir/earlier/<n>/``, so that a rerun in the same directory leaves
    none of them beside its own (a smaller ``top/``, no verify, other event files) and deletes
    nothing; says so in one line. Returns the folder, or None when there was nothing to move."""
    run_dir = Path(run_dir)
    names = [*SEARCH_OUTPUTS, *(["tb"] if tensorboard else [])]
    found = [n for n in names if (run_dir / n).exists()]
    if not found:
        return None
    n = 1
    while (run_dir / "earlier" / str(n)).exists():
        n += 1
    dest = run_dir / "earlier" / str(n)
    dest.mkdir(parents=True)
    for name in found:
        os.replace(run_dir / name, dest / name)
    shown = ", ".join(f"{n}/" if (dest / n).is_dir() else n for n in found)
    print(
        f"{run_dir} held the outputs of an earlier search: moved {shown} to {dest}",
        file=sys.stderr,
    )
    return dest


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    raise TypeError(f"cannot write {type(obj).__name__} to results JSON: {obj!r}")


def _dumps(obj: Any) -> str:
    return strict_dumps(obj, sort_keys=True, indent=2, default=_json_default) + "\n"


def _write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` atomically, readable by others like any new file (``supernet.fileio``)."""
    return write_atomic(path, lambda f: f.write(text.encode("utf-8")))


def write_results(
    run_dir: Path,
    records: Records,
    meta: Mapping[str, Any],
    key: str = "val_acc",
    objectives: Objectives | None = None,
    descending: bool = True,
) -> dict[str, Path]:
    """Write ``leaderboard.csv``, ``results.json`` and ``pareto.json`` atomically into ``run_dir``.

    ``results.json`` is ``{"meta": meta, "records": ranked records}`` with sorted keys, so equal
    inputs give identical bytes. ``pareto.json`` is the front of the feasible records (all if
    none is) for ``objectives``, by default (key, max if ``descending`` else min) and
    (flops or params, min).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    ranked = leaderboard(records, key=key, descending=descending)
    front = pareto_front(feasible(ranked), default_objectives(ranked, key, objectives, descending))
    keys = set().union(*(r.keys() for r in ranked))
    columns = [k for k in _KEY_ORDER if k in keys] + sorted(keys - set(_KEY_ORDER))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in r.items()} for r in ranked)
    texts = {"leaderboard.csv": buf.getvalue(), "pareto.json": _dumps(front)}
    texts["results.json"] = _dumps({"meta": meta, "records": ranked})
    return {name.split(".")[0]: _write_atomic(run_dir / name, t) for name, t in texts.items()}


def load_results(path: Path) -> list[Record]:
    """The ranked records from a ``results.json`` file (or a run directory holding one)."""
    path = Path(path) / "results.json" if Path(path).is_dir() else Path(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("records"), list):
        raise ValueError(f"{path} is not a results file with a 'records' list")
    return data["records"]


__all__ = ["load_results", "write_results"]
