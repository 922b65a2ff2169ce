"""Copies of supernet parts for extracted networks, optionally memoised (and prepared)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Hashable

from torch import nn


def copy_part(
    parts: dict | None,
    key: Hashable,
    module: nn.Module | None = None,
    make: Callable[[], nn.Module] | None = None,
) -> nn.Module:
    """A copy of ``module`` (or ``make()``); with a ``parts`` memo, the copy stored under ``key``,
    made on first use. Networks assembled from one memo share those copies: a scorer that
    recalibrates every BN before it scores (``search.evaluate``) then copies no weight per arch."""
    build = make if make is not None else lambda: copy.deepcopy(module)
    if parts is None:
        return build()
    if key not in parts:
        part = build()
        parts[key] = parts.prepare(part) if isinstance(parts, PartMemo) else part
    return parts[key]


class PartMemo(dict):
    """A ``parts`` memo whose copies pass through ``prepare`` once, as they are made (e.g. the
    synflow twins of ``search.zero_cost``: float64, ``|w|``, no BN); its nested memos (one per
    cell, ``sub_memo``) prepare theirs the same way."""

    def __init__(self, prepare: Callable[[nn.Module], nn.Module]) -> None:
        super().__init__()
        self.prepare = prepare


def sub_memo(parts: dict | None, key: Hashable) -> dict | None:
    """The memo nested in ``parts`` under ``key`` (made on first use; None without a memo)."""
    if parts is None:
        return None
    if key not in parts:
        parts[key] = PartMemo(parts.prepare) if isinstance(parts, PartMemo) else {}
    return parts[key]
