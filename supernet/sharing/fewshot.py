"""``fewshot``: split the supernet on chosen decisions into one sub-supernet per choice or group.

Few-shot NAS (Zhao et al., ICML 2021): at ``split_epoch`` the (sub-)supernets are split on
``decision``; children start from the parent's weights and optimizer state, then each trains only
the paths it owns. Further decisions in ``decisions`` split every leaf again at later epochs.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from supernet.errors import SharenasError, check_int
from supernet.models import Macro
from supernet.sharing.base import SharingStrategy, SplitContext, register_strategy
from supernet.spaces.base import Space


@register_strategy
class FewShotSharing(SharingStrategy):
    """Split on a fixed list of decisions at fixed epochs (one split per listed decision).

    ``decisions=None`` picks the first decision with the most choices (for NB201: ``edge_1_0``, the
    edge every path reads first). ``groups=None`` gives one child per choice.
    """

    name = "fewshot"

    def __init__(
        self,
        space: Space,
        macro: Macro,
        split_epoch: int = 1,
        decisions: Sequence[str] | None = None,
        groups: Sequence[Sequence[str]] | None = None,
        split_every: int = 1,
        train_all_leaves: bool = False,
    ) -> None:
        super().__init__(space, macro)
        choices = space.choices()
        if decisions is None:
            decisions = [max(choices, key=lambda d: len(choices[d]))]
        for d in decisions:
            if d not in choices:
                raise SharenasError(
                    f"fewshot: unknown decision {d!r}; allowed: {', '.join(choices)}"
                )
        if groups is not None:
            flat = [c for g in groups for c in g]
            allowed = set(choices[decisions[0]])
            if sorted(flat) != sorted(allowed) or len(flat) != len(set(flat)):
                raise SharenasError(
                    f"fewshot: groups {list(map(list, groups))} must partition the choices of "
                    f"{decisions[0]!r}: {', '.join(choices[decisions[0]])}"
                )
        self.decisions = list(decisions)
        self.groups = [list(g) for g in groups] if groups is not None else None
        self.split_epoch = check_int("sharing.split_epoch", split_epoch, 1)
        self.split_every = check_int("sharing.split_every", split_every, 1)
        self.train_all_leaves = train_all_leaves

    def split_schedule(self) -> list[int]:
        return [self.split_epoch + k * self.split_every for k in range(len(self.decisions))]

    def _due(self, epoch: int) -> str | None:
        done = len({h["decision"] for h in self.history})
        if done >= len(self.decisions):
            return None
        if epoch == self.split_epoch + done * self.split_every:
            return self.decisions[done]
        return None

    def maybe_split(self, ctx: SplitContext) -> list[tuple[nn.Parameter, nn.Parameter]]:
        decision = self._due(ctx.epoch)
        if decision is None:
            return []
        groups = (
            self.groups
            if (self.groups and decision == self.decisions[0])
            else [[c] for c in self.space.choices()[decision]]
        )
        pairs: list[tuple[nn.Parameter, nn.Parameter]] = []
        for leaf_index in reversed(range(len(self.leaves))):  # reversed: indices stay valid
            pairs += self.split(leaf_index, decision, groups, epoch=ctx.epoch)
        ctx.log(f"fewshot: split on {decision} into {self.num_supernets} sub-supernets")
        return pairs
