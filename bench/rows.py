"""The fidelity benchmark's rows, read from ``bench/rows.yaml`` (data: names, overrides, reasons).

A row is a list of ``train.py`` overrides on top of the benchmark's base: the ground truth's data
and macro, the equal step budget, one thread and no progress bar. The base is built here, the
same for every row, and a row may replace one of its keys (the longer-budget rows set
``trainer.epochs``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.ground_truth import SAMPLES, Sample

ROWS_FILE = Path(__file__).resolve().with_name("rows.yaml")
ROW_KEYS = ("why", "extends", "overrides")


@dataclass(frozen=True)
class Row:
    """One benchmark row: its overrides (a parent's first, when it extends one) and its reason."""

    name: str
    overrides: tuple[str, ...]
    why: str


@dataclass(frozen=True)
class RowBook:
    """Every row of a rows file, in file order, and the step budget they share."""

    epochs: int
    steps_per_epoch: int
    rows: dict[str, Row]

    def base(
        self,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        sample: Sample | None = None,
    ) -> list[str]:
        """The overrides every row starts from: ``sample``'s space, data and macro (default the
        stratified NB201 sample's) and the budget (``epochs``/``steps_per_epoch``: a smaller
        one, for a plumbing check)."""
        sample = sample or SAMPLES["stratified"]
        space = [] if sample.space == "nb201" else [f"space={sample.space}"]
        data = [f"data={sample.data['name']}"] + [
            f"data.{k}={v}" for k, v in sample.data.items() if k in ("pool", "seed", "limit")
        ]
        macro = [f"space.macro.{k}={v}" for k, v in sample.macro.items()]
        return [
            *space,
            *data,
            *macro,
            f"trainer.epochs={epochs or self.epochs}",
            f"trainer.steps_per_epoch={steps_per_epoch or self.steps_per_epoch}",
            "trainer.progress=false",
            "trainer.num_threads=1",
        ]

    def overrides(self, name: str, base: list[str] | None = None) -> list[str]:
        """The base (default ``self.base()``) without the keys the row sets, then the row's own."""
        row = self.rows[name].overrides
        keys = {o.split("=")[0] for o in row}
        return [b for b in (base or self.base()) if b.split("=")[0] not in keys] + list(row)

    def budget_of(self, name: str) -> str:
        """The row's step budget in words: "90 epochs x 45 steps", "15 epochs x every batch"."""
        key = "trainer.steps_per_epoch="
        given = [o.split("=")[1] for o in self.overrides(name) if o.startswith(key)]
        steps = given[-1] if given else str(self.steps_per_epoch)
        per = "every batch" if steps in ("null", "None") else f"{steps} steps"
        return f"{self.epochs_of(name)} epochs x {per}"

    def epochs_of(self, name: str) -> int:
        """The row's training epochs (rows at another budget are a separate comparison)."""
        row = self.rows[name].overrides
        given = [o.split("=")[1] for o in row if o.startswith("trainer.epochs=")]
        return int(given[-1]) if given else self.epochs


class _UniqueKeys(yaml.SafeLoader):
    """A safe loader that refuses a key given twice (YAML would keep the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"{key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _fail(path: Path, msg: str) -> ValueError:
    return ValueError(f"{path}: {msg}")


def load_rows(path: Path = ROWS_FILE) -> RowBook:
    """Read and check a rows file; a bad entry fails in one line naming it."""
    try:
        data = yaml.load(path.read_text(), Loader=_UniqueKeys) or {}  # noqa: S506 (a safe loader)
    except yaml.YAMLError as err:
        raise _fail(path, " ".join(str(err).split())) from None
    if not isinstance(data, dict) or set(data) != {"budget", "rows"}:
        got = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise _fail(path, f"top-level keys must be budget, rows; got {got}")
    budget = data["budget"]
    if not isinstance(budget, dict) or sorted(budget) != ["epochs", "steps_per_epoch"]:
        raise _fail(path, f"budget must have epochs and steps_per_epoch; got {budget!r}")
    if not all(isinstance(v, int) and v >= 1 for v in budget.values()):
        raise _fail(path, f"budget values must be integers >= 1; got {budget!r}")
    rows: dict[str, Row] = {}
    for name, spec in (data["rows"] or {}).items():
        if not isinstance(spec, dict):
            raise _fail(path, f"row {name!r} must be a mapping with keys {', '.join(ROW_KEYS)}")
        unknown = sorted(set(spec) - set(ROW_KEYS))
        if unknown:
            allowed = ", ".join(ROW_KEYS)
            raise _fail(path, f"row {name!r}: unknown key {unknown[0]!r}; allowed: {allowed}")
        why, own = spec.get("why"), spec.get("overrides")
        if not isinstance(why, str) or not why.strip():
            raise _fail(path, f"row {name!r} needs a short reason (why: ...)")
        if not isinstance(own, list) or not all(isinstance(o, str) and "=" in o for o in own):
            raise _fail(path, f"row {name!r}: overrides must be a list of key=value, got {own!r}")
        parent = spec.get("extends")
        if parent is not None and parent not in rows:
            raise _fail(
                path,
                f"row {name!r} extends {parent!r}, which is not a row above it; "
                f"rows above: {', '.join(rows) or 'none'}",
            )
        inherited = rows[parent].overrides if parent else ()
        rows[str(name)] = Row(str(name), (*inherited, *own), why.strip())
    if not rows:
        raise _fail(path, "no rows")
    return RowBook(budget["epochs"], budget["steps_per_epoch"], rows)
