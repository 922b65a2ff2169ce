"""The fixed, seeded NB201 arch samples of the fidelity benchmark: stratified and uniform."""

from __future__ import annotations

import random

from supernet.arch import Arch
from supernet.spaces.nb201 import NB201_OPS, NB201Space


def stratified_sample(space: NB201Space, per_stratum: int = 7, seed: int = 2026) -> list[Arch]:
    """For every op and every count 0..6 of that op, ``per_stratum`` archs with exactly that count
    (other edges uniform over the remaining ops). Duplicates are dropped; order is fixed."""
    rng = random.Random(seed)
    decisions = list(space.choices())
    seen: dict[Arch, None] = {}
    for op in NB201_OPS:
        others = [o for o in NB201_OPS if o != op]
        for count in range(len(decisions) + 1):
            made, attempts = 0, 0
            while made < per_stratum and attempts < 1000:  # strata like "6 x op" hold 1 arch
                attempts += 1
                chosen = set(rng.sample(decisions, count))
                arch = space.make({d: op if d in chosen else rng.choice(others) for d in decisions})
                if arch not in seen:
                    seen[arch] = None
                    made += 1
    return list(seen)


def uniform_sample(space: NB201Space, n: int = 300, seed: int = 1) -> list[Arch]:
    """``n`` distinct archs drawn uniformly at random from the whole space; order is fixed."""
    rng = random.Random(seed)
    seen: dict[Arch, None] = {}
    while len(seen) < n:
        seen.setdefault(space.sample(rng), None)
    return list(seen)
