"""Sharing strategies: ``full`` (one-shot), ``fewshot`` (Zhao 2021), ``gm`` (Hu 2022),
``costsplit`` (few-shot along parameter count) and ``adaptive`` (splits triggered by gradient
conflict measured during training)."""

from __future__ import annotations

from supernet.sharing.adaptive import AdaptiveSharing
from supernet.sharing.base import STRATEGIES, SharingStrategy, SplitContext, register_strategy
from supernet.sharing.costsplit import CostSplitSharing
from supernet.sharing.fewshot import FewShotSharing
from supernet.sharing.full import FullSharing
from supernet.sharing.gm import GradientMatchingSharing

__all__ = [
    "STRATEGIES",
    "AdaptiveSharing",
    "CostSplitSharing",
    "FewShotSharing",
    "FullSharing",
    "GradientMatchingSharing",
    "SharingStrategy",
    "SplitContext",
    "register_strategy",
]
