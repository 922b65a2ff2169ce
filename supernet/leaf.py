"""Leaves of a sharing partition: which archs one sub-supernet owns.

A leaf is a JSON-like dict (it is saved in checkpoints and loaded with ``weights_only=True``):

- ``decision -> [allowed choices]``: the arch's choice for that decision must be listed
  (``fewshot`` and ``gm`` split on decisions);
- ``PARAMS_KEY -> [low, high]``: the arch's parameter count must lie in ``[low, high)``
  (``costsplit`` splits along cost).

An empty leaf owns every arch. ``contains`` is the one membership test that routing, samplers and
the evaluator share.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

Leaf = dict[str, list]
PARAMS_KEY = "@params"  # not a valid decision name, so it never collides with one


def contains(
    arch: Mapping[str, str], leaf: Leaf | None, cost_fn: Callable[[Mapping[str, str]], float] | None
) -> bool:
    """Whether ``leaf`` owns ``arch``; ``cost_fn`` (parameter count) is needed for cost leaves."""
    if not leaf:
        return True
    for key, allowed in leaf.items():
        if key == PARAMS_KEY:
            if cost_fn is None:
                raise ValueError(f"a leaf with {PARAMS_KEY} needs a cost_fn (parameter count)")
            low, high = allowed
            if not low <= cost_fn(arch) < high:
                return False
        elif arch[key] not in allowed:
            return False
    return True


def decision_choices(leaf: Leaf | None, choices: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """Allowed choices of every decision inside ``leaf`` (cost ranges are not decisions)."""
    return {d: list((leaf or {}).get(d, c)) for d, c in choices.items()}
