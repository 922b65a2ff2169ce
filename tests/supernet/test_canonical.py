"""Equivalent cells: ``space.canonical(arch)`` maps archs computing the same network to one string.

NAS-Bench-201's published count of unique cells is 6,466 of 15,625 (NATS-Bench, Dong et al.,
TPAMI 2021, Table 1 "6.5K unique"; the exact figure is what the maintainer's isomorphism notebook
in github.com/D-X-Y/NATS-Bench/notebooks prints from ``api.get_unique_str``, the genotype's
``to_unique_str(consider_zero=True)``). ``published_key`` re-implements that rule from its
definition, independently of the product code; ``canonical`` must give exactly its classes, and
``canonical(strict=True)`` goes further (every dead edge removed), so it merges some of them.
"""

from __future__ import annotations

import itertools
from collections import defaultdict

import pytest

from supernet.spaces import build_space
from supernet.spaces.nb201 import EDGES, NB201_OPS, edge_name

NB201_CELLS = 15_625
PUBLISHED_UNIQUE = 6_466  # NAS-Bench-201 / NATS-Bench topology space, isomorphism classes
DEAD_EDGES_REMOVED = 5_390  # strict classes: the published ones, merged across dead edges


@pytest.fixture(scope="module")
def nb201():
    return build_space("nb201")


def published_key(ops: dict[str, str]) -> str:
    """NAS-Bench-201's grouping rule: the output node as a string in which a sum's terms are
    sorted, ``skip_connect`` passes its input's string on, ``none`` (or an edge from a node whose
    string is exactly the zero mark ``#``) contributes ``#``, and other ops wrap their input."""
    node = {0: "0"}
    for j in range(1, 4):
        terms = []
        for i in range(j):
            op = ops[edge_name(j, i)]
            if op == "none" or node[i] == "#":
                terms.append("#")
            else:
                terms.append(node[i] if op == "skip_connect" else f"({node[i]})@{op}")
        node[j] = "+".join(sorted(terms))
    return node[3]


def all_cells():
    names = [edge_name(j, i) for j, i in EDGES]
    for combo in itertools.product(NB201_OPS, repeat=len(EDGES)):
        yield dict(zip(names, combo, strict=True))


EQUIVALENT = [
    # node 1 feeds nothing the output reads: its pooling is dead
    (
        "|avg_pool_3x3~0|+|none~0|none~1|+|nor_conv_1x1~0|none~1|none~2|",
        "|none~0|+|none~0|none~1|+|nor_conv_1x1~0|none~1|none~2|",
    ),
    # node 1 feeds nothing the output reads, whatever its op
    (
        "|skip_connect~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|",
        "|nor_conv_3x3~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|",
    ),
]
#: Equal only once every dead edge is removed (``strict``): NAS-Bench-201's rule keeps them apart.
STRICTLY_EQUIVALENT = [
    # a skip connection in front of a conv is the conv alone
    (
        "|skip_connect~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|skip_connect~2|",
        "|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|",
    ),
    # the two intermediate nodes swapped (isomorphic once node 2's dead input is dropped)
    (
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|none~0|skip_connect~1|skip_connect~2|",
        "|nor_conv_1x1~0|+|nor_conv_3x3~0|none~1|+|none~0|skip_connect~1|skip_connect~2|",
    ),
    # a conv fed only by a node no data reaches is dead
    (
        "|none~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|avg_pool_3x3~2|",
        "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|",
    ),
]
DISTINCT = [
    (
        "|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|",
        "|none~0|+|none~0|none~1|+|nor_conv_1x1~0|none~1|none~2|",
    ),
    (  # pooling is an op of its own, not the identity
        "|none~0|+|none~0|none~1|+|avg_pool_3x3~0|none~1|none~2|",
        "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|",
    ),
    (  # conv then pool is not pool then conv
        "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|none~0|none~1|skip_connect~2|",
        "|avg_pool_3x3~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|skip_connect~2|",
    ),
]


@pytest.mark.parametrize(("a", "b"), EQUIVALENT)
def test_known_equivalent_cells_share_one_form(nb201, a, b):
    assert nb201.canonical(nb201.parse(a)) == nb201.canonical(nb201.parse(b))
    assert nb201.canonical(nb201.parse(a), strict=True) == nb201.canonical(
        nb201.parse(b), strict=True
    )


@pytest.mark.parametrize(("a", "b"), STRICTLY_EQUIVALENT)
def test_dead_edges_merge_only_when_strict(nb201, a, b):
    assert nb201.canonical(nb201.parse(a)) != nb201.canonical(nb201.parse(b))
    assert nb201.canonical(nb201.parse(a), strict=True) == nb201.canonical(
        nb201.parse(b), strict=True
    )


@pytest.mark.parametrize(("a", "b"), DISTINCT)
def test_different_networks_keep_different_forms(nb201, a, b):
    assert nb201.canonical(nb201.parse(a)) != nb201.canonical(nb201.parse(b))


def test_published_rule_reproduces_the_published_count():
    assert len({published_key(ops) for ops in all_cells()}) == PUBLISHED_UNIQUE


def test_canonical_is_the_published_grouping(nb201):
    classes: dict[str, set[str]] = defaultdict(set)  # canonical form -> published keys
    for ops in all_cells():
        classes[nb201.canonical(nb201.make(ops))].add(published_key(ops))
    assert len(classes) == PUBLISHED_UNIQUE
    assert all(len(keys) == 1 for keys in classes.values())  # the same partition of the cells


def test_strict_canonical_merges_published_classes_and_never_splits_one(nb201):
    forms_of_class: dict[str, set[str]] = defaultdict(set)
    for ops in all_cells():
        forms_of_class[published_key(ops)].add(nb201.canonical(nb201.make(ops), strict=True))
    assert all(len(forms) == 1 for forms in forms_of_class.values())
    distinct = {next(iter(forms)) for forms in forms_of_class.values()}
    assert len(forms_of_class) == PUBLISHED_UNIQUE
    assert len(distinct) == DEAD_EDGES_REMOVED


@pytest.mark.parametrize("strict", [False, True])
def test_canonical_form_is_a_valid_arch_of_its_own_class(nb201, strict):
    seen = 0
    for arch in nb201.enumerate():
        form = nb201.canonical(arch, strict=strict)
        rep = nb201.parse(form)
        assert str(rep) == form and nb201.canonical(rep, strict=strict) == form
        assert sum(op != "none" for op in rep.values()) <= sum(op != "none" for op in arch.values())
        seen += 1
    assert seen == NB201_CELLS


def test_default_canonical_is_the_arch_string():
    space = build_space("mbv3")
    arch = space.largest()
    assert space.canonical(arch) == str(arch)
    assert space.canonical(str(arch)) == str(arch)  # its string is read as the arch


def test_canonical_takes_an_arch_string(nb201):
    text = "|none~0|+|avg_pool_3x3~0|skip_connect~1|+|none~0|nor_conv_1x1~1|avg_pool_3x3~2|"
    assert nb201.canonical(text) == nb201.canonical(nb201.parse(text))
    assert nb201.canonical(text) == (
        "|none~0|+|avg_pool_3x3~0|none~1|+|none~0|none~1|avg_pool_3x3~2|"
    )  # NAS-Bench-201's grouping: the conv fed by the zero node 1 counts as zero
