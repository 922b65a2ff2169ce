"""NAS-Bench-201 cell space (Dong & Yang, ICLR 2020): 6 edges of a 4-node DAG, 5 ops each."""

from __future__ import annotations

from collections.abc import Mapping

from supernet.arch import Arch
from supernet.errors import InvalidArchError
from supernet.spaces import register_space
from supernet.spaces.base import Space

NB201_OPS = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
NUM_NODES = 4
# Edges in NAS-Bench-201 string order: node j receives from nodes 0..j-1.
EDGES = [(j, i) for j in range(1, NUM_NODES) for i in range(j)]


def edge_name(j: int, i: int) -> str:
    return f"edge_{j}_{i}"


@register_space("nb201")
class NB201Space(Space):
    """The NB201 cell space; the string form is exactly NAS-Bench-201's
    (``|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...~0|...~1|...~2|``)."""

    def choices(self) -> dict[str, list[str]]:
        return {edge_name(j, i): list(NB201_OPS) for j, i in EDGES}

    def format(self, arch: Mapping[str, str]) -> str:
        nodes = []
        for j in range(1, NUM_NODES):
            nodes.append("|" + "|".join(f"{arch[edge_name(j, i)]}~{i}" for i in range(j)) + "|")
        return "+".join(nodes)

    def parse(self, text: str) -> Arch:
        if not isinstance(text, str):
            raise InvalidArchError(f"nb201: arch must be a string, got {type(text).__name__}")
        nodes = text.strip().split("+")
        if len(nodes) != NUM_NODES - 1:
            raise InvalidArchError(
                f"nb201: {text!r} has {len(nodes)} node groups; expected {NUM_NODES - 1} "
                "like '|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...~0|...~1|...~2|'"
            )
        arch = {}
        for j, node in enumerate(nodes, start=1):
            if not (node.startswith("|") and node.endswith("|")):
                raise InvalidArchError(f"nb201: node group {node!r} must be wrapped in '|'")
            parts = node[1:-1].split("|")
            if len(parts) != j:
                raise InvalidArchError(
                    f"nb201: node {j} group {node!r} has {len(parts)} edges; expected {j}"
                )
            for i, part in enumerate(parts):
                op, sep, src = part.rpartition("~")
                if not sep or src != str(i):
                    raise InvalidArchError(f"nb201: edge {part!r} of node {j} must be 'OP~{i}'")
                if op not in NB201_OPS:
                    raise InvalidArchError(
                        f"nb201: unknown op {op!r} on edge {edge_name(j, i)}; "
                        f"allowed: {', '.join(NB201_OPS)}"
                    )
                arch[edge_name(j, i)] = op
        return self.make(arch)

    def largest(self) -> Arch:
        return self.make({d: "nor_conv_3x3" for d in self.choices()})

    def smallest(self) -> Arch:
        # All-'none' would output a constant; the cheapest *working* cell is all skip connections.
        return self.make({d: "skip_connect" for d in self.choices()})
