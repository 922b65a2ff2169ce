"""NAS-Bench-201 cell space (Dong & Yang, ICLR 2020): 6 edges of a 4-node DAG, 5 ops each."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping, Sequence

from supernet.arch import Arch
from supernet.errors import InvalidArchError
from supernet.spaces.base import Space
from supernet.spaces.registry import register_space

NB201_OPS = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
NUM_NODES = 4
# Edges in NAS-Bench-201 string order: node j receives from nodes 0..j-1.
EDGES = [(j, i) for j in range(1, NUM_NODES) for i in range(j)]


def edge_name(j: int, i: int) -> str:
    return f"edge_{j}_{i}"


def cell_function(ops: Mapping[str, str], strict: bool = False) -> str | None:
    """The output node as an expression of the input node ``0``: cells with one expression
    compute the same network.

    A node is the sum of its incoming edges, ``skip_connect`` is the identity, any other op is
    written ``(x)@op``, and the terms of a sum are sorted, so cells that differ by the order of a
    node's inputs, or by relabelling the intermediate nodes, give one expression.

    By default this is NAS-Bench-201's own grouping (its API's ``get_unique_str``, the genotype's
    ``to_unique_str(consider_zero=True)``): a ``none`` edge, or an edge leaving a node that is
    exactly zero, adds a zero term ``#``; it gives NAS-Bench-201's published 6,466 unique cells of
    15,625. ``strict=True`` goes further: every dead edge (``none``, or leaving a node no data
    reaches) is dropped and a node without live input is no data, so cells whose only difference is
    such dead edges merge too (5,390 classes); the result is None when no data reaches the output.
    """
    nodes: list[str | None] = ["0"]
    for j in range(1, NUM_NODES):
        terms = []
        for i in range(j):
            op, src = ops[edge_name(j, i)], nodes[i]
            if op == "none" or src is None or (not strict and src == "#"):
                if not strict:
                    terms.append("#")
                continue
            terms.append(src if op == "skip_connect" else f"({src})@{op}")
        nodes.append("+".join(sorted(terms)) if terms else None)
    return nodes[-1]


@functools.cache
def _representatives(strict: bool = False) -> dict[tuple[str, ...], str]:
    """Every cell's ops (in edge order) -> the string of its class's representative: the member
    with the fewest live edges (``none`` elsewhere), then the first string in sort order."""
    names = [edge_name(j, i) for j, i in EDGES]
    best: dict[str | None, tuple[int, str]] = {}
    members: dict[tuple[str, ...], str | None] = {}
    for combo in itertools.product(NB201_OPS, repeat=len(EDGES)):
        ops = dict(zip(names, combo, strict=True))
        key = cell_function(ops, strict)
        members[combo] = key
        text = _format(ops)
        rank = (sum(op != "none" for op in combo), text)
        if key not in best or rank < best[key]:
            best[key] = rank
    return {combo: best[key][1] for combo, key in members.items()}


def _format(arch: Mapping[str, str]) -> str:
    nodes = []
    for j in range(1, NUM_NODES):
        nodes.append("|" + "|".join(f"{arch[edge_name(j, i)]}~{i}" for i in range(j)) + "|")
    return "+".join(nodes)


def ops_in_edge_order(arch: Mapping[str, str]) -> Sequence[str]:
    return tuple(arch[edge_name(j, i)] for j, i in EDGES)


@register_space
class NB201Space(Space):
    """The NB201 cell space; the string form is exactly NAS-Bench-201's
    (``|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...~0|...~1|...~2|``)."""

    name = "nb201"

    def choices(self) -> dict[str, list[str]]:
        return {edge_name(j, i): list(NB201_OPS) for j, i in EDGES}

    def format(self, arch: Mapping[str, str]) -> str:
        return _format(arch)

    def canonical(self, arch: Arch | str, strict: bool = False) -> str:
        """The NB201 string of the simplest cell of ``arch``'s class (an arch or its string):
        isomorphic cells merged as NAS-Bench-201 groups them (6,466 forms), or with ``strict``
        every dead edge removed as well (5,390 forms; see ``cell_function``). It is itself a valid
        arch of this space, and ``canonical`` of it is itself. The grouping is NAS-Bench-201's,
        not exact: a conv edge leaving a node that is exactly zero counts as zero, though its
        BatchNorm adds a constant shift and its weights are parameters of the net."""
        if isinstance(arch, str):
            arch = self.parse(arch)
        return _representatives(strict)[tuple(ops_in_edge_order(arch))]

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
