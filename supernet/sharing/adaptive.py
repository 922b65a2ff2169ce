"""``adaptive``: split when and where gradient conflict, measured during training, says so.

``fewshot`` and ``gm`` split at epochs fixed in advance. Here the strategy watches a signal while
it trains and decides itself, within a budget of sub-supernets, when, where and whether to split:

- **signal**: every ``probe_every`` optimizer steps one (leaf, decision) pair, taken in turn, is
  probed as GM-NAS measures it at its split epochs (Hu et al., ICLR 2022;
  ``supernet.sharing.conflict``): the cosine similarities of the choices' gradients on the weights
  they share, on fixed probe batches and ``samples_per_choice`` random rest-of-paths. The matrix is
  smoothed across that pair's probes (an exponential average with weight ``smoothing`` on the
  past), and its min normalised cut gives the two groups of choices and the mean cosine across
  them: the lower, the more the two groups pull the shared weights different ways;
- **split**: at the end of an epoch in ``[min_epoch, max_epoch]``, among the pairs whose smoothed
  cross-group cosine stayed below ``threshold`` for ``patience`` probes in a row, the one with the
  lowest is split into its two groups (at most one split per epoch, never beyond
  ``max_supernets``). When no pair conflicts that much, it never splits. Children start as exact
  copies of their parent, with its optimizer state and weight average (``SharingStrategy.split``);
  the signals of the split leaf are dropped, and its children are measured afresh.

Probes cost ``samples_per_choice`` forward/backward passes per allowed choice. Splits happen at
epoch ends, where the trainer rebuilds its optimizer and writes a checkpoint, so a resumed run
continues exactly; the signals, the probe trace and the splits are plain data in the checkpoint's
sharing state, and go to TensorBoard (``sharing/cross_cosine/<leaf>/<decision>`` per probe, text
``sharing/splits`` per split).
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from supernet.errors import SharenasError, check_fraction, check_int
from supernet.leaf import Leaf, decision_choices
from supernet.models import Macro
from supernet.sharing.base import SharingStrategy, SplitContext, register_strategy
from supernet.sharing.conflict import choice_similarity, min_normalized_cut
from supernet.spaces.base import Space


def leaf_label(leaf: Leaf) -> str:
    """A short readable name of a leaf for logs and TensorBoard tags (``root``: no constraint)."""
    if not leaf:
        return "root"
    return ",".join(f"{d}={'+'.join(map(str, c))}" for d, c in sorted(leaf.items()))


@register_strategy
class AdaptiveSharing(SharingStrategy):
    """Splits triggered by persistent gradient conflict, measured online, within a budget."""

    name = "adaptive"

    def __init__(
        self,
        space: Space,
        macro: Macro,
        probe_every: int = 15,
        samples_per_choice: int = 2,
        smoothing: float = 0.7,
        threshold: float = 0.45,
        patience: int = 3,
        max_supernets: int = 5,
        min_epoch: int = 1,
        max_epoch: int | None = None,
        decisions: Sequence[str] | None = None,
        train_all_leaves: bool = True,
    ) -> None:
        super().__init__(space, macro)
        choices = space.choices()
        for d in decisions or []:
            if d not in choices:
                raise SharenasError(
                    f"adaptive: unknown decision {d!r}; allowed: {', '.join(choices)}"
                )
        self.decisions = list(decisions) if decisions else list(choices)
        self.probe_every = check_int("sharing.probe_every", probe_every, 1)
        self.samples_per_choice = check_int("sharing.samples_per_choice", samples_per_choice, 1)
        example = "the weight of past probes, e.g. 0.7, or 0 for none"
        self.smoothing = smoothing and check_fraction("sharing.smoothing", smoothing, example)
        if not -1.0 <= float(threshold) <= 1.0:
            raise SharenasError(
                f"sharing.threshold is a cosine similarity in [-1, 1] (-1: never split), "
                f"got {threshold!r}"
            )
        self.threshold = float(threshold)
        self.patience = check_int("sharing.patience", patience, 1)
        self.max_supernets = check_int("sharing.max_supernets", max_supernets, 1)
        self.min_epoch = check_int("sharing.min_epoch", min_epoch, 1)
        self.max_epoch = None if max_epoch is None else check_int("sharing.max_epoch", max_epoch, 1)
        self.train_all_leaves = train_all_leaves
        self.signals: dict[str, dict] = {}  # "<leaf json>|<decision>" -> smoothed state
        self.trace: list[dict] = []  # one entry per probe: step, leaf, decision, raw, smoothed
        self.probes = 0

    # -- the signal -----------------------------------------------------------------------------
    def _targets(self) -> list[tuple[int, str, list[str]]]:
        """(leaf index, decision, allowed choices) of every pair that could still be split."""
        out = []
        for index, leaf in enumerate(self.leaves):
            allowed = decision_choices(leaf, self.space.choices())
            out += [(index, d, allowed[d]) for d in self.decisions if len(allowed[d]) >= 2]
        return out

    def probe(self, ctx: SplitContext) -> None:
        targets = self._targets()
        if not targets:
            return
        index, decision, allowed = targets[self.probes % len(targets)]
        leaf = self.leaves[index]
        rng = random.Random(ctx.rng_seed * 1_000_003 + self.probes)
        archs = [
            {d: rng.choice(c) for d, c in decision_choices(leaf, self.space.choices()).items()}
            for _ in range(self.samples_per_choice)
        ]
        raw = choice_similarity(
            self.supernets[index], decision, allowed, archs, ctx.batches, ctx.loss_fn
        )
        key = f"{json.dumps(leaf, sort_keys=True)}|{decision}"
        state = self.signals.get(key)
        sim = raw
        if state is not None:
            sim = self.smoothing * torch.tensor(state["sim"]) + (1 - self.smoothing) * raw
        a, b, cross = min_normalized_cut(sim.clone())
        below = (state["below"] if state else 0) + 1 if cross < self.threshold else 0
        self.signals[key] = {
            "leaf": copy.deepcopy(leaf),
            "decision": decision,
            "choices": list(allowed),
            "sim": sim.tolist(),
            "probes": (state["probes"] if state else 0) + 1,
            "below": below,
            "cross": cross,
            "groups": [[allowed[i] for i in a], [allowed[i] for i in b]],
        }
        raw_cross = raw[a][:, b].mean().item()
        label = f"{leaf_label(leaf)}/{decision}"
        self.trace.append(
            {"step": ctx.step, "leaf": label, "raw": raw_cross, "smoothed": cross, "below": below}
        )
        ctx.scalar(f"sharing/cross_cosine/{label}", cross, ctx.step)
        ctx.scalar(f"sharing/cross_cosine_raw/{label}", raw_cross, ctx.step)
        self.probes += 1

    # -- the decision ---------------------------------------------------------------------------
    def maybe_split(self, ctx: SplitContext) -> list[tuple[nn.Parameter, nn.Parameter]]:
        in_window = ctx.epoch >= self.min_epoch and (
            self.max_epoch is None or ctx.epoch <= self.max_epoch
        )
        if not in_window or self.num_supernets >= self.max_supernets:
            return []
        keys = {json.dumps(leaf, sort_keys=True): i for i, leaf in enumerate(self.leaves)}
        ready = [
            s
            for s in self.signals.values()
            if s["below"] >= self.patience and json.dumps(s["leaf"], sort_keys=True) in keys
        ]
        if not ready:
            return []
        chosen = min(ready, key=lambda s: (s["cross"], s["decision"]))
        leaf_key = json.dumps(chosen["leaf"], sort_keys=True)
        index, label = keys[leaf_key], leaf_label(chosen["leaf"])
        pairs = self.split(
            index,
            chosen["decision"],
            chosen["groups"],
            epoch=ctx.epoch,
            step=ctx.step,
            cross_similarity=chosen["cross"],
            probes=chosen["probes"],
        )
        self.signals = {k: s for k, s in self.signals.items() if not k.startswith(leaf_key + "|")}
        message = (
            f"adaptive: split leaf {label} on {chosen['decision']} into {chosen['groups']} at "
            f"epoch {ctx.epoch} (step {ctx.step}; smoothed cross-group gradient cosine "
            f"{chosen['cross']:.3f} < {self.threshold} for {chosen['below']} probes in a row); "
            f"{self.num_supernets} sub-supernets (budget {self.max_supernets})"
        )
        ctx.log(message)
        ctx.text("sharing/splits", message, ctx.step)
        ctx.scalar("sharing/num_supernets", float(self.num_supernets), ctx.step)
        return pairs

    # -- checkpoint state -------------------------------------------------------------------------
    def sharing_state(self) -> dict:
        return super().sharing_state() | {
            "signals": copy.deepcopy(self.signals),
            "trace": copy.deepcopy(self.trace),
            "probes": self.probes,
        }

    def load_sharing_state(self, state: Mapping) -> None:
        super().load_sharing_state(state)
        self.signals = copy.deepcopy(dict(state.get("signals", {})))
        self.trace = copy.deepcopy(list(state.get("trace", [])))
        self.probes = int(state.get("probes", 0))
