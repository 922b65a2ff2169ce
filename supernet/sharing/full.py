"""``full``: one weight set for every path (classic one-shot; Guo et al., SPOS, ECCV 2020)."""

from __future__ import annotations

from supernet.sharing.base import SharingStrategy, register_strategy


@register_strategy
class FullSharing(SharingStrategy):
    """Never splits: every arch routes to the single supernet."""

    name = "full"
