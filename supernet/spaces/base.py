"""Space: a declared, finite set of named categorical decisions (data only, builds no modules)."""

from __future__ import annotations

import itertools
import math
import random
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping

from supernet.arch import Arch
from supernet.errors import InvalidArchError


class Space(ABC):
    """A search space: ordered decisions, each with an ordered list of allowed choices.

    Subclasses declare ``name``, ``choices()`` and the canonical string (``format`` / ``parse``).
    All randomness comes from the caller's seeded ``random.Random``.
    """

    name: str = ""
    enumerate_limit: int = 100_000

    @abstractmethod
    def choices(self) -> dict[str, list[str]]:
        """Decision name -> allowed choices, in a fixed order."""

    @abstractmethod
    def format(self, arch: Mapping[str, str]) -> str:
        """Canonical string of an already validated mapping."""

    @abstractmethod
    def parse(self, text: str) -> Arch:
        """Inverse of ``format``; raises ``InvalidArchError`` naming what is wrong."""

    # -- built on the above -------------------------------------------------------------------
    def make(self, arch: Mapping[str, str]) -> Arch:
        """Validate a mapping and return the canonical ``Arch``."""
        return self.validate(arch)

    def validate(self, arch: Mapping[str, str] | str) -> Arch:
        """Check every decision and choice; the error names the bad decision and allowed values."""
        if isinstance(arch, str):
            return self.parse(arch)
        choices = self.choices()
        unknown = [k for k in arch if k not in choices]
        if unknown:
            raise InvalidArchError(
                f"{self.name}: unknown decision {unknown[0]!r}; decisions are: {', '.join(choices)}"
            )
        ordered = {}
        for decision, allowed in choices.items():
            if decision not in arch:
                raise InvalidArchError(f"{self.name}: arch is missing decision {decision!r}")
            value = arch[decision]
            if value not in allowed:
                raise InvalidArchError(
                    f"{self.name}: decision {decision!r} has unknown choice {value!r}; "
                    f"allowed: {', '.join(allowed)}"
                )
            ordered[decision] = value
        return Arch(ordered, self.format(ordered))

    def active_decisions(self, arch: Mapping[str, str]) -> list[str]:
        """The decisions that change ``arch``'s network (all of them unless a space says
        otherwise: in ``mbv3`` the blocks a stage does not run do not count)."""
        return list(self.choices())

    def canonical(self, arch: Arch | str, strict: bool = False) -> str:
        """One string per class of archs that compute the same network (an arch or its string).

        By default every arch is its own class (the arch's string). Spaces with equivalent
        encodings (NB201's isomorphic cells; with ``strict`` also its dead edges) override this."""
        return str(self.parse(arch) if isinstance(arch, str) else arch)

    def sample(self, rng: random.Random) -> Arch:
        """Uniform random arch."""
        return self.make({d: rng.choice(c) for d, c in self.choices().items()})

    def mutate(self, arch: Arch, rng: random.Random) -> Arch:
        """Change one decision to a different choice."""
        choices = self.choices()
        active = self.active_decisions(arch)
        decision = rng.choice([d for d, c in choices.items() if len(c) > 1 and d in active])
        new = dict(arch)
        new[decision] = rng.choice([c for c in choices[decision] if c != arch[decision]])
        return self.make(new)

    def size(self) -> int:
        return math.prod(len(c) for c in self.choices().values())

    def enumerate(self) -> Iterator[Arch]:
        """Every arch, in a fixed order; refuses spaces larger than ``enumerate_limit``."""
        if self.size() > self.enumerate_limit:
            raise ValueError(
                f"{self.name} has {self.size():,} archs, above the enumeration limit "
                f"{self.enumerate_limit:,}"
            )
        names = list(self.choices())
        for combo in itertools.product(*self.choices().values()):
            yield self.make(dict(zip(names, combo, strict=True)))

    def extremes(self) -> list[Arch]:
        """The largest and smallest archs, where the space defines them: pools of random archs
        add them so the ends of the cost range are always represented."""
        out = []
        for end in (self.largest, self.smallest):
            try:
                out.append(end())
            except NotImplementedError:
                pass
        return out

    def largest(self) -> Arch:
        raise NotImplementedError(f"{self.name} defines no largest arch")

    def smallest(self) -> Arch:
        raise NotImplementedError(f"{self.name} defines no smallest arch")
