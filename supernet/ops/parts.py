"""Copies of supernet parts for extracted networks, optionally memoised."""

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
        parts[key] = build()
    return parts[key]
