"""supernet.schema: checks declared on schema fields run on composed configs, naming the key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from omegaconf import OmegaConf

from supernet.errors import SharenasError
from supernet.schema import (
    at_least,
    check_config,
    checked,
    fraction,
    greater_than,
    number_or_null,
    one_of,
    optional,
)


@dataclass
class Inner:
    depth: int = checked(2, at_least(1))
    rate: float = checked(0.0, fraction("e.g. 0.1", zero_is_off=True))


@dataclass
class Outer:
    steps: Any = checked(None, optional(at_least(1)))
    clip: float = checked(1.0, greater_than(0))
    mode: str = checked("a", one_of("a", "b"))
    limit: Any = checked(None, number_or_null)
    inner: Inner = checked(factory=Inner)
    free: int = -5  # no check: anything of its type passes


def check(**values: object) -> None:
    check_config(OmegaConf.merge(OmegaConf.structured(Outer), values), Outer, "top")


def test_defaults_pass_and_unchecked_fields_are_free() -> None:
    check()
    check(steps=3, clip=float("inf"), mode="b", limit=2.5, inner={"depth": "4", "rate": 0.5})


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"steps": 0}, "top.steps must be an integer >= 1, got 0"),
        ({"clip": 0.0}, "top.clip must be a number > 0, got 0.0"),
        ({"clip": float("nan")}, "top.clip must be a number > 0, got nan"),
        ({"mode": "c"}, "unknown top.mode 'c'; allowed: a, b"),
        ({"limit": "x"}, "top.limit must be a finite number or null, got 'x'"),
        ({"inner": {"depth": 0}}, "top.inner.depth must be an integer >= 1, got 0"),
        ({"inner": {"rate": 1.0}}, "top.inner.rate must be in (0, 1) (e.g. 0.1); got 1.0"),
    ],
)
def test_a_failed_check_names_the_full_key_and_the_value(values: dict, words: str) -> None:
    with pytest.raises(SharenasError) as err:
        check(**values)
    assert str(err.value) == words


def test_keys_a_node_lacks_are_skipped() -> None:
    check_config(OmegaConf.create({"clip": 2.0}), Outer)
    with pytest.raises(SharenasError, match="^clip must be"):
        check_config(OmegaConf.create({"clip": -1}), Outer)
