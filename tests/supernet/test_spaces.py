"""Registry-parametrized space contract, and the NAS-Bench-201 string form."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from supernet.arch import Arch
from supernet.errors import InvalidArchError, UnknownNameError
from supernet.spaces import build_space, list_spaces
from supernet.spaces.base import Space
from supernet.spaces.nb201 import NB201_OPS

NB201_JSON = Path(__file__).resolve().parents[2].parent / "shared/data/nb201/cifar10_test_acc.json"
EXAMPLE = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_3x3~2|"


def one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert msg and "\n" not in msg, f"error message is not one line: {msg!r}"
    return msg


@pytest.fixture(params=list_spaces())
def space(request) -> Space:
    return build_space(request.param)


def test_registry_is_not_empty():
    assert "nb201" in list_spaces()


# -- the contract every registered space satisfies ---------------------------------------------
def test_choices_are_named_finite_categoricals(space):
    choices = space.choices()
    assert choices and all(isinstance(d, str) for d in choices)
    for decision, allowed in choices.items():
        assert allowed, decision
        assert len(set(allowed)) == len(allowed), f"{decision} repeats a choice: {allowed}"
    assert space.choices() == choices  # fixed, not random


def test_sample_is_seeded_and_valid(space):
    a = [space.sample(random.Random(3)) for _ in range(2)]
    assert a[0] == a[1] and str(a[0]) == str(a[1])
    rng = random.Random(0)
    archs = [space.sample(rng) for _ in range(200)]
    assert len(set(archs)) > 1
    for arch in archs:
        assert isinstance(arch, Arch)
        assert list(arch) == list(space.choices())
        assert space.validate(arch) == arch
        assert space.validate(dict(arch)) == arch
        assert space.validate(str(arch)) == arch
        assert space.parse(str(arch)) == arch


def test_arch_is_immutable_and_hashable(space):
    arch = space.sample(random.Random(0))
    same = space.make(dict(arch))
    assert arch == same and hash(arch) == hash(same) and len({arch, same}) == 1
    with pytest.raises(TypeError):
        arch[next(iter(arch))] = "x"  # type: ignore[index]


def test_validate_names_bad_decision_and_allowed_values(space):
    arch = dict(space.sample(random.Random(0)))
    decision, allowed = next(iter(space.choices().items()))
    with pytest.raises(InvalidArchError) as err:
        space.validate({**arch, decision: "no_such_choice"})
    msg = one_line(err)
    assert decision in msg and "no_such_choice" in msg
    assert all(c in msg for c in allowed)
    with pytest.raises(InvalidArchError) as err:
        space.validate({**arch, "no_such_decision": allowed[0]})
    assert "no_such_decision" in one_line(err)
    missing = dict(arch)
    del missing[decision]
    with pytest.raises(InvalidArchError) as err:
        space.validate(missing)
    assert decision in one_line(err)


def test_mutate_changes_exactly_one_decision_that_matters(space):
    rng = random.Random(0)
    for _ in range(200):
        arch = space.sample(rng)
        child = space.mutate(arch, rng)
        assert space.make(child) == child and str(child) != str(arch)
        both = set(space.active_decisions(arch)) & set(space.active_decisions(child))
        changed = [d for d in arch if arch[d] != child[d]]
        # one decision both networks use; any other difference is one of them not using it
        assert len([d for d in changed if d in both]) == 1, (str(arch), str(child))
        assert all(child[d] in space.choices()[d] for d in changed)


def test_mutate_is_seeded(space):
    arch = space.sample(random.Random(0))
    assert space.mutate(arch, random.Random(5)) == space.mutate(arch, random.Random(5))


def test_size_counts_distinct_networks(space):
    product = math.prod(len(c) for c in space.choices().values())
    always_active = all(
        len(space.active_decisions(a)) == len(space.choices())
        for a in (space.largest(), space.smallest())
    )
    # every combination is a network, unless some decisions can be idle (mbv3's unused blocks)
    assert space.size() == product if always_active else space.size() < product
    if space.size() <= space.enumerate_limit:
        archs = list(space.enumerate())
        assert len(archs) == len(set(archs)) == len(set(map(str, archs))) == space.size()


def test_largest_and_smallest(space):
    try:
        largest, smallest = space.largest(), space.smallest()
    except NotImplementedError:
        pytest.skip(f"{space.name} defines no largest/smallest")
    assert space.validate(largest) == largest
    assert space.validate(smallest) == smallest
    assert largest != smallest


# -- NAS-Bench-201 ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def nb201() -> Space:
    return build_space("nb201")


def test_nb201_shape(nb201):
    assert nb201.size() == 5**6 == 15_625
    for allowed in nb201.choices().values():
        assert allowed == NB201_OPS
    assert NB201_OPS == ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
    assert set(nb201.largest().values()) == {"nor_conv_3x3"}


def test_nb201_string_is_nas_bench_201s(nb201):
    arch = nb201.parse(EXAMPLE)
    assert dict(arch) == {
        "edge_1_0": "nor_conv_3x3",
        "edge_2_0": "none",
        "edge_2_1": "skip_connect",
        "edge_3_0": "nor_conv_1x1",
        "edge_3_1": "avg_pool_3x3",
        "edge_3_2": "nor_conv_3x3",
    }
    assert str(arch) == EXAMPLE
    assert str(nb201.make(dict(arch))) == EXAMPLE
    assert repr(arch) == f"Arch({EXAMPLE!r})"


def test_nb201_round_trips_the_whole_space(nb201):
    seen = set()
    for arch in nb201.enumerate():
        text = str(arch)
        parsed = nb201.parse(text)
        assert parsed == arch, text
        assert str(parsed) == text
        seen.add(text)
    assert len(seen) == 15_625


def test_nb201_round_trips_the_published_table(nb201):
    if not NB201_JSON.is_file():
        pytest.skip(f"{NB201_JSON} not present")
    keys = list(json.loads(NB201_JSON.read_text()))
    assert len(keys) == 15_625
    for text in keys:
        assert str(nb201.parse(text)) == text


def test_nb201_unknown_op_is_one_line_naming_op_and_allowed(nb201):
    bad = EXAMPLE.replace("avg_pool_3x3~1", "conv_5x5~1")
    with pytest.raises(InvalidArchError) as err:
        nb201.parse(bad)
    msg = one_line(err)
    assert "conv_5x5" in msg
    for op in NB201_OPS:
        assert op in msg


@pytest.mark.parametrize(
    "text",
    [
        "|nor_conv_3x3~0|+|none~0|skip_connect~1|",  # 2 node groups
        EXAMPLE + "+|none~0|",  # 4 node groups
        # node 2 with one edge
        "|nor_conv_3x3~0|+|none~0|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_3x3~2|",
        "|nor_conv_3x3|+|none~0|skip_connect~1|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_3x3~2|",
        "|nor_conv_3x3~1|+|none~0|skip_connect~1|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_3x3~2|",
        "|nor_conv_3x3~0|+|none~0|skip_connect~0|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_3x3~2|",
        "nor_conv_3x3~0+|none~0|skip_connect~1|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_3x3~2|",
        "",
    ],
    ids=[
        "2-nodes",
        "4-nodes",
        "edge-count",
        "no-index",
        "index-1",
        "index-swap",
        "no-bars",
        "empty",
    ],
)
def test_nb201_malformed_strings(nb201, text):
    with pytest.raises(InvalidArchError) as err:
        nb201.parse(text)
    one_line(err)


def test_build_unknown_space_lists_registered(nb201):
    with pytest.raises(UnknownNameError) as err:
        build_space("foo")
    msg = one_line(err)
    assert "foo" in msg and "nb201" in msg
    for name in list_spaces():
        assert name in msg
