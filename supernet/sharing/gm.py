"""``gm``: gradient-matching splits (Hu et al., "Generalizing Few-Shot NAS with Gradient Matching",
ICLR 2022).

At each scheduled epoch, for every leaf and every decision with >= 2 allowed choices, compute the
gradient of the leaf's *shared* weights (everything except that decision's own candidate ops) under
each choice, on the same probe batches and the same random rest-of-path (a paired comparison).
Choices whose gradients point different ways fight over the shared weights. The decision whose
choices disagree most (lowest mean cross-group cosine similarity of the best bipartition) is split
into the two groups of the min normalised cut of the similarity graph
(``supernet.sharing.conflict``).
"""

from __future__ import annotations

import copy
import random
from collections.abc import Sequence

from torch import nn

from supernet.errors import SharenasError, check_int
from supernet.leaf import Leaf
from supernet.models import Macro
from supernet.sharing.base import SharingStrategy, SplitContext, register_strategy
from supernet.sharing.conflict import choice_similarity, min_normalized_cut
from supernet.spaces.base import Space

__all__ = ["GradientMatchingSharing", "min_normalized_cut"]


@register_strategy
class GradientMatchingSharing(SharingStrategy):
    """Split where choices' gradients on the shared weights disagree most (graph min-cut)."""

    name = "gm"

    def __init__(
        self,
        space: Space,
        macro: Macro,
        split_epochs: Sequence[int] = (1,),
        splits_per_epoch: int = 1,
        max_splits: int = 1,
        decisions: Sequence[str] | None = None,
        samples_per_choice: int = 4,
        train_all_leaves: bool = False,
    ) -> None:
        super().__init__(space, macro)
        choices = space.choices()
        for d in decisions or []:
            if d not in choices:
                raise SharenasError(f"gm: unknown decision {d!r}; allowed: {', '.join(choices)}")
        self.decisions = list(decisions) if decisions else list(choices)
        if isinstance(split_epochs, (str, int, float)):  # `sharing.split_epochs=3`
            raise SharenasError(
                f"sharing.split_epochs must be a list like [10,20], got {split_epochs!r}"
            )
        self.split_epochs = sorted(check_int("sharing.split_epochs", e, 1) for e in split_epochs)
        self.splits_per_epoch = check_int("sharing.splits_per_epoch", splits_per_epoch, 1)
        self.max_splits = check_int("sharing.max_splits", max_splits, 0)
        self.samples_per_choice = check_int("sharing.samples_per_choice", samples_per_choice, 1)
        self.train_all_leaves = train_all_leaves

    def _score(
        self, index: int, leaf: Leaf, decision: str, ctx: SplitContext, rng: random.Random
    ) -> tuple[float, list[list[str]]] | None:
        allowed = leaf.get(decision, self.space.choices()[decision])
        if len(allowed) < 2:
            return None
        module = self.supernets[index]
        archs = [dict(self._sample_in_leaf(leaf, rng)) for _ in range(self.samples_per_choice)]
        sim = choice_similarity(module, decision, allowed, archs, ctx.batches, ctx.loss_fn)
        a, b, cross = min_normalized_cut(sim)
        return cross, [[allowed[i] for i in a], [allowed[i] for i in b]]

    def _sample_in_leaf(self, leaf: Leaf, rng: random.Random) -> dict:
        return {d: rng.choice(leaf.get(d, c)) for d, c in self.space.choices().items()}

    def split_schedule(self) -> list[int]:
        return list(self.split_epochs)

    def maybe_split(self, ctx: SplitContext) -> list[tuple[nn.Parameter, nn.Parameter]]:
        due = self.split_epochs.count(ctx.epoch) * self.splits_per_epoch
        pairs: list[tuple[nn.Parameter, nn.Parameter]] = []
        for _ in range(due):
            if len(self.history) >= self.max_splits:
                break
            rng = random.Random(ctx.rng_seed * 1009 + len(self.history))
            candidates = []
            for index, leaf in enumerate(self.leaves):
                module = self.supernets[index]
                saved = copy.deepcopy(module.state_dict())  # probing must not move BN statistics
                was_training = module.training
                module.train()
                for decision in self.decisions:
                    scored = self._score(index, leaf, decision, ctx, rng)
                    if scored is not None:
                        candidates.append((scored[0], index, decision, scored[1]))
                module.load_state_dict(saved)
                module.train(was_training)
            if not candidates:
                break
            cross, index, decision, groups = min(candidates, key=lambda c: c[0])
            made = self.split(index, decision, groups, epoch=ctx.epoch, cross_similarity=cross)
            # a child of a child made in this call inherits from that child's own source, so
            # every source is a parameter the trainer (optimizer, EMA) already knows
            sources = {id(child): src for child, src in pairs}
            pairs += [(child, sources.get(id(src), src)) for child, src in made]
            ctx.log(
                f"gm: split leaf {index} on {decision} into {groups} "
                f"(cross-group gradient cosine {cross:.3f}); {self.num_supernets} sub-supernets"
            )
        return pairs
