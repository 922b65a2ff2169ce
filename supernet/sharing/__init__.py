"""Sharing strategies: ``full`` (one-shot), ``fewshot`` (Zhao et al. 2021), ``gm`` (Hu et al. 2022)."""

from __future__ import annotations

from supernet.sharing.base import SharingStrategy, SplitContext
from supernet.sharing.full import FullSharing

STRATEGIES: dict[str, type[SharingStrategy]] = {"full": FullSharing}

__all__ = ["STRATEGIES", "FullSharing", "SharingStrategy", "SplitContext"]
