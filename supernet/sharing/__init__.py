"""Sharing strategies: ``full`` (one-shot), ``fewshot`` (Zhao 2021), ``gm`` (Hu 2022), and
``costsplit`` (few-shot along parameter count)."""

from __future__ import annotations

from supernet.sharing.base import SharingStrategy, SplitContext
from supernet.sharing.costsplit import CostSplitSharing
from supernet.sharing.fewshot import FewShotSharing
from supernet.sharing.full import FullSharing
from supernet.sharing.gm import GradientMatchingSharing

STRATEGIES: dict[str, type[SharingStrategy]] = {
    "full": FullSharing,
    "fewshot": FewShotSharing,
    "gm": GradientMatchingSharing,
    "costsplit": CostSplitSharing,
}

__all__ = [
    "STRATEGIES",
    "CostSplitSharing",
    "FewShotSharing",
    "FullSharing",
    "GradientMatchingSharing",
    "SharingStrategy",
    "SplitContext",
]
