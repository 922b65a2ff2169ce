"""Config checks that live in the structured-config schemas.

A schema field carries the checks its type cannot express, next to its one-line reason::

    epochs: int = checked(5, at_least(1))  # passes over the training split

``check_config(node, Schema, "trainer")`` runs every field's checks (and those of nested schemas)
on a composed config node and raises one ``SharenasError`` line naming the key
(``trainer.epochs``), the value and what is allowed. Rules that tie several keys together stay in
the one function that checks a root config (``check_train_config``, ``check_search_config``).
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from typing import Any

from supernet.errors import SharenasError, check_fraction, check_int

#: A check gets the full key (``trainer.epochs``) and the value, and raises ``SharenasError``.
Check = Callable[[str, Any], Any]


def checked(
    default: Any = MISSING, *checks: Check, factory: Callable[[], Any] | None = None
) -> Any:
    """A dataclass field whose value must pass ``checks`` (``factory`` for mutable defaults)."""
    if factory is not None:
        return field(default_factory=factory, metadata={"checks": checks})
    return field(default=default, metadata={"checks": checks})


@dataclass(frozen=True)
class _AtLeast:
    minimum: int

    def __call__(self, key: str, value: Any) -> int:
        return check_int(key, value, self.minimum)


def at_least(minimum: int) -> Check:
    """An integer >= ``minimum`` ("3" and 3.0 pass: values come from YAML and the command line)."""
    return _AtLeast(minimum)


def optional(check: Check) -> Check:
    """``check``, or None (null: the setting is off)."""

    def run(key: str, value: Any) -> Any:
        return None if value is None else check(key, value)

    return run


def fraction(example: str, zero_is_off: bool = False) -> Check:
    """A float strictly between 0 and 1 (also 0 when ``zero_is_off``); ``example`` is shown."""

    def run(key: str, value: Any) -> Any:
        if zero_is_off and not isinstance(value, bool) and value == 0:
            return 0.0
        return check_fraction(key, value, example)

    return run


def greater_than(bound: float) -> Check:
    """A number > ``bound`` (not NaN; infinity passes)."""

    def run(key: str, value: Any) -> float:
        number = _number(value)
        if number is None or not number > bound:
            raise SharenasError(f"{key} must be a number > {bound:g}, got {value!r}")
        return number

    return run


def number_or_null(key: str, value: Any) -> float | None:
    """A finite number, or None."""
    if value is None:
        return None
    number = _number(value)
    if number is None or not math.isfinite(number):
        raise SharenasError(f"{key} must be a finite number or null, got {value!r}")
    return number


def one_of(*allowed: str) -> Check:
    """One of the ``allowed`` strings."""

    def run(key: str, value: Any) -> str:
        if value not in allowed:
            raise SharenasError(f"unknown {key} {value!r}; allowed: {', '.join(allowed)}")
        return value

    return run


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def check_config(node: Mapping[str, Any], schema: type, prefix: str = "") -> None:
    """Run the checks of every field of ``schema`` (and of nested schemas) on ``node``; keys
    the node lacks are skipped (a group option may use a smaller schema of the same family)."""
    hints = typing.get_type_hints(schema)
    where = f"{prefix}." if prefix else ""
    for f in fields(schema):
        if f.name not in node:
            continue
        value = node[f.name]
        for check in f.metadata.get("checks", ()):
            check(where + f.name, value)
        nested = hints.get(f.name)
        if isinstance(nested, type) and is_dataclass(nested) and isinstance(value, Mapping):
            check_config(value, nested, where + f.name)


__all__ = [
    "Check",
    "at_least",
    "check_config",
    "checked",
    "fraction",
    "greater_than",
    "number_or_null",
    "one_of",
    "optional",
]
