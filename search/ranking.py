"""Search results: leaderboard, Pareto front, text tables, result files and TensorBoard logging.

A *record* is a plain dict for one evaluated arch: "arch", "val_acc", "val_loss", "params", "flops",
"latency_ms", "trial", "supernet" and any extra numeric keys. Nothing here imports the supernet
at import time (writing result files borrows supernet.checkpoint's umask helper).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from supernet.fileio import write_atomic

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

Record = dict[str, Any]
Records = Iterable[Mapping[str, Any]]
Objectives = Sequence[tuple[str, str]]

DEFAULT_OBJECTIVES: tuple[tuple[str, str], ...] = (("val_acc", "max"), ("flops", "min"))
DEFAULT_COLUMNS = ("rank", "val_acc", "val_loss", "params", "flops", "trial", "arch")
# Known keys come first in files, in this order; unknown keys follow alphabetically.
_KEY_ORDER = tuple(
    "rank arch val_acc val_loss train_loss params flops latency_ms trial supernet".split()
)
_COUNTS = {"params", "flops"}  # shown human readable (1.23M)


def _value(record: Mapping[str, Any], key: str) -> float:
    """Numeric value of ``key`` in a record; raises if missing or None, naming what exists."""
    if (value := record.get(key)) is None:
        raise ValueError(f"record {record.get('arch')!r} has no {key!r}; keys: {sorted(record)}")
    return float(value)


def _tie_value(record: Mapping[str, Any], key: str, digits: int | None = None) -> float:
    """A tie-breaker value (smaller first); missing or non-numeric values sort last."""
    value = record.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool):
        return math.inf
    return round(float(value), digits) if digits is not None else float(value)


def leaderboard(records: Records, key: str = "val_acc", descending: bool = True) -> list[Record]:
    """All records sorted best first by ``key``, each with a 1-based "rank".

    Records marked ``"feasible": False`` (they break a constraint) come after all the others.
    Ties on ``key`` are broken by lower ``val_loss`` rounded to 4 decimals, then by fewer
    ``params`` (so of functionally identical archs the smallest comes first), then by arch string.
    Returns new dicts; the input records are not modified.
    """
    rows = [dict(r) for r in records]
    if missing := [r for r in rows if "arch" not in r]:
        raise ValueError(f"records need an 'arch' key; first without one: {missing[0]}")
    sign = -1.0 if descending else 1.0

    def order(r: Record) -> tuple:
        ties = (_tie_value(r, "val_loss", 4), _tie_value(r, "params"), str(r["arch"]))
        return (r.get("feasible") is False, sign * _value(r, key), *ties)

    rows.sort(key=order)
    return [{**r, "rank": i} for i, r in enumerate(rows, start=1)]


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
    points = [tuple(s * _value(r, k) for s, (k, _) in zip(signs, objectives)) for r in rows]
    # Best first, so a point can only be dominated by one before it, i.e. by a front member.
    order = sorted(zip(points, rows), key=lambda t: ([-x for x in t[0]], str(t[1].get("arch"))))
    front: list[tuple[tuple[float, ...], Record]] = []
    seen: set[tuple[Any, ...]] = set()
    for p, row in order:
        if (p, row.get("arch")) not in seen and not any(_dominates(q, p) for q, _ in front):
            front.append((p, row))
            seen.add((p, row.get("arch")))
    return [row for _, row in front]


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


def _cell(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key in _COUNTS and isinstance(value, int | float):
        return human(value)
    return "-" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)


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
    cells = [[_cell(c, r.get(c)) for c in columns] for r in top]
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


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    raise TypeError(f"cannot write {type(obj).__name__} to results JSON: {obj!r}")


def _dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, indent=2, default=_json_default) + "\n"


def _write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` atomically, readable by others like any new file (``supernet.fileio``)."""
    return write_atomic(path, lambda f: f.write(text.encode("utf-8")))


def _objectives(
    records: Sequence[Record], key: str, objectives: Objectives | None, descending: bool = True
) -> Objectives:
    """``objectives``, else (key, its direction) and (cost, min); cost is flops if all records
    have it (params otherwise), left out when it is the key itself."""
    if objectives is not None:
        return objectives
    cost = "flops" if all(r.get("flops") is not None for r in records) else "params"
    first = (key, "max" if descending else "min")
    return (first,) if cost == key else (first, (cost, "min"))


def _feasible(records: Sequence[Record]) -> Sequence[Record]:
    """The records not marked ``"feasible": False``, or all of them if none is feasible."""
    return [r for r in records if r.get("feasible") is not False] or records


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
    front = pareto_front(_feasible(ranked), _objectives(ranked, key, objectives, descending))
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


def _pareto_figure(records: Sequence[Record], front: Sequence[Record], x: str, y: str) -> Any:
    """Scatter of all records (grey) and the front (red), drawn on a pyplot-free Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.scatter([_value(r, x) for r in records], [_value(r, y) for r in records], c="grey", s=12)
    pts = sorted((_value(r, x), _value(r, y)) for r in front)
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
    objs = _objectives(ranked, key, objectives, descending)
    curves = list(dict.fromkeys([key, *(k for k, _ in objs)]))
    for r in ranked:
        for k in curves:
            if isinstance(r.get(k), int | float) and math.isfinite(r[k]):
                writer.add_scalar(f"leaderboard/{k}", float(r[k]), global_step=int(r["rank"]))
    pick, best = (max, -math.inf) if descending else (min, math.inf)
    for r in sorted(ranked, key=lambda r: (r["trial"], r["rank"])):
        if r.get("feasible") is not False:  # the running best counts feasible archs only
            best = pick(best, _value(r, key))
        if math.isfinite(best):
            writer.add_scalar(f"search/best_{key}", best, global_step=int(r["trial"]))
    _log_hparams(writer, ranked[:top_k])
    writer.add_text("leaderboard", format_table(ranked, top_k, markdown=True))
    try:
        front = pareto_front(_feasible(ranked), objs)
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
