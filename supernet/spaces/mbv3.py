"""MobileNetV3-style elastic space (Once-for-All, Cai et al. ICLR 2020): per-stage depth and
per-block kernel size and expand ratio.

Four stages; each runs its first 2, 3 or 4 inverted-residual blocks, and every block picks a
depthwise kernel (3, 5, 7) and an expand ratio (3, 4, 6). The decisions of blocks a stage does
not run change nothing, so ``make`` sets them to the first choice: every network has exactly one
``Arch`` and one string, and searchers never spend budget on a copy.

String: one group per stage, ``|``-separated; one ``k<kernel>e<expand>`` token per block that
runs, ``-``-separated, e.g. ``k3e4-k5e6|k7e3-k3e3-k5e4|k3e3-k3e3|k5e6-k5e6-k5e6-k5e6``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from supernet.arch import Arch
from supernet.errors import InvalidArchError
from supernet.spaces.base import Space
from supernet.spaces.registry import register_space

STAGES = 4
DEPTHS = ["2", "3", "4"]
KERNELS = ["3", "5", "7"]
EXPANDS = ["3", "4", "6"]
MAX_DEPTH = int(DEPTHS[-1])
_BLOCK = re.compile(r"k(\d+)e(\d+)")


def depth_key(stage: int) -> str:
    return f"stage{stage}_depth"


def block_keys(stage: int, block: int) -> tuple[str, str]:
    """(kernel decision, expand decision) of ``block`` (1-based) in ``stage`` (1-based)."""
    return f"stage{stage}_block{block}_kernel", f"stage{stage}_block{block}_expand"


@register_space
class MobileNetV3Space(Space):
    """OFA's MobileNetV3 space (without squeeze-and-excitation): 3^4 depth settings x 9 block
    settings per running block."""

    name = "mbv3"

    def choices(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for s in range(1, STAGES + 1):
            out[depth_key(s)] = list(DEPTHS)
            for b in range(1, MAX_DEPTH + 1):
                kernel, expand = block_keys(s, b)
                out[kernel], out[expand] = list(KERNELS), list(EXPANDS)
        return out

    def active_decisions(self, arch: Mapping[str, str]) -> list[str]:
        """The decisions that change the network: depths, and the blocks that run."""
        keys = []
        for s in range(1, STAGES + 1):
            keys.append(depth_key(s))
            for b in range(1, int(arch[depth_key(s)]) + 1):
                keys.extend(block_keys(s, b))
        return keys

    def make(self, arch: Mapping[str, str]) -> Arch:
        checked = self.validate(arch)
        active = set(self.active_decisions(checked))
        choices = self.choices()
        canonical = {d: (v if d in active else choices[d][0]) for d, v in checked.items()}
        return Arch(canonical, self.format(canonical))

    def size(self) -> int:
        """Distinct networks: per stage, sum over depths d of 9^d."""
        per_stage = sum((len(KERNELS) * len(EXPANDS)) ** int(d) for d in DEPTHS)
        return per_stage**STAGES

    def format(self, arch: Mapping[str, str]) -> str:
        stages = []
        for s in range(1, STAGES + 1):
            blocks = []
            for b in range(1, int(arch[depth_key(s)]) + 1):
                kernel, expand = block_keys(s, b)
                blocks.append(f"k{arch[kernel]}e{arch[expand]}")
            stages.append("-".join(blocks))
        return "|".join(stages)

    def parse(self, text: str) -> Arch:
        if not isinstance(text, str):
            raise InvalidArchError(f"mbv3: arch must be a string, got {type(text).__name__}")
        stages = text.strip().split("|")
        if len(stages) != STAGES:
            raise InvalidArchError(
                f"mbv3: {text!r} has {len(stages)} stage groups; expected {STAGES} like "
                "'k3e4-k5e6|k7e3-k3e3-k5e4|k3e3-k3e3|k5e6-k5e6-k5e6-k5e6'"
            )
        arch = {d: c[0] for d, c in self.choices().items()}
        for s, group in enumerate(stages, start=1):
            blocks = group.split("-")
            if str(len(blocks)) not in DEPTHS:
                raise InvalidArchError(
                    f"mbv3: stage {s} ({group!r}) has {len(blocks)} blocks; allowed depths: "
                    f"{', '.join(DEPTHS)}"
                )
            arch[depth_key(s)] = str(len(blocks))
            for b, token in enumerate(blocks, start=1):
                match = _BLOCK.fullmatch(token)
                if not match:
                    raise InvalidArchError(
                        f"mbv3: block {b} of stage {s} is {token!r}; expected 'k<kernel>e<expand>'"
                        " like 'k5e6'"
                    )
                kernel, expand = block_keys(s, b)
                arch[kernel], arch[expand] = match.group(1), match.group(2)
        return self.make(arch)

    def largest(self) -> Arch:
        return self.make(
            {d: c[-1] for d, c in self.choices().items()}  # depth 4, kernel 7, expand 6
        )

    def smallest(self) -> Arch:
        return self.make({d: c[0] for d, c in self.choices().items()})
