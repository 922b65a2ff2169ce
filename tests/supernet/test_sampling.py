"""Conformance suite for every path sampler, plus each sampler's own rule."""

from __future__ import annotations

import pytest

from supernet.leaf import PARAMS_KEY
from supernet.sampling import SAMPLERS, CostBinnedSampler, PathSampler
from supernet.spaces import build_space

SPACE = build_space("nb201")
LEAF = {"edge_1_0": ["nor_conv_3x3", "avg_pool_3x3"], "edge_3_2": ["none"]}


def n_conv(arch) -> float:
    return sum(op.startswith("nor_conv") for op in arch.values())


def make(name: str, seed: int = 0) -> PathSampler:
    cls = SAMPLERS[name]
    if cls is CostBinnedSampler:
        return cls(SPACE, seed=seed, pool_size=300, cost_fn=n_conv)
    return cls(SPACE, seed=seed)


def run(sampler: PathSampler, steps: int = 20, leaf=None) -> list[list[str]]:
    return [[str(a) for a in sampler.paths(leaf)] for _ in range(steps)]


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_paths_are_valid_archs(name):
    for step in run(make(name)):
        assert step and all(str(SPACE.parse(a)) == a for a in step)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_same_seed_same_paths_and_state_round_trip(name):
    assert run(make(name, 3)) == run(make(name, 3))
    sampler = make(name, 3)
    run(sampler, 5)
    state = sampler.state_dict()
    expected = run(sampler, 10)
    again = make(name, 3)  # a resumed run rebuilds the sampler from the same config ...
    run(again, 7)  # ... in another RNG state, which load_state_dict must replace
    again.load_state_dict(state)
    assert run(again, 10) == expected


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_paths_inside_a_leaf_respect_it(name):
    for step in run(make(name), 30, leaf=LEAF):
        for text in step:
            arch = SPACE.parse(text)
            assert all(arch[d] in allowed for d, allowed in LEAF.items()), (name, text)


def test_fair_trains_every_choice_of_every_decision_once_per_step():
    for step in run(make("fair"), 10):
        archs = [SPACE.parse(a) for a in step]
        for decision, choices in SPACE.choices().items():
            assert sorted(a[decision] for a in archs) == sorted(choices)


def test_sandwich_trains_largest_and_smallest_every_step():
    sampler = SAMPLERS["sandwich"](SPACE, seed=0, n_random=2)
    for step in run(sampler, 5):
        assert step[:2] == [str(SPACE.largest()), str(SPACE.smallest())] and len(step) == 4


def test_progressive_warms_up_on_the_largest_path():
    sampler = SAMPLERS["progressive"](SPACE, seed=0, warmup_epochs=2)
    sampler.set_epoch(1)
    assert {a for step in run(sampler, 5) for a in step} == {str(SPACE.largest())}
    sampler.set_epoch(2)
    assert len({a for step in run(sampler, 20) for a in step}) > 10


def test_cost_binned_draws_every_cost_level_alike():
    sampler = make("cost_binned")  # cost = number of conv edges: bins 0, 1, 2, 3, 4-6
    costs = [n_conv(SPACE.parse(step[0])) for step in run(sampler, 1000)]
    shares = [sum(min(c, 4) == level for c in costs) / len(costs) for level in range(5)]
    assert all(0.12 < share < 0.28 for share in shares), shares  # ~0.2 each
    uniform = [n_conv(SPACE.sample(sampler.rng)) for _ in range(1000)]
    # uniform sampling draws conv-free cells with p = 0.6**6 ~ 0.05; the bins draw them ~0.2
    assert shares[0] > 2 * sum(c == 0 for c in uniform) / len(uniform)


def test_cost_binned_paths_per_step_draws_distinct_bins():
    sampler = CostBinnedSampler(SPACE, seed=0, pool_size=300, cost_fn=n_conv, paths_per_step=5)
    for step in run(sampler, 20):
        levels = sorted(min(n_conv(SPACE.parse(a)), 4) for a in step)
        assert levels == [0, 1, 2, 3, 4], step


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_paths_inside_a_cost_leaf_respect_it(name):
    """``costsplit`` leaves hold a parameter-count range instead of allowed choices."""
    kwargs = {"pool_size": 300} if SAMPLERS[name] is CostBinnedSampler else {}
    sampler = SAMPLERS[name](SPACE, seed=0, cost_fn=n_conv, **kwargs)
    leaf = {PARAMS_KEY: [4, 7]}  # 4 to 6 conv edges: rare under uniform sampling
    for step in run(sampler, 15, leaf=leaf):
        assert all(4 <= n_conv(SPACE.parse(a)) < 7 for a in step), (name, step)


def test_stratified_flattens_every_choice_count():
    """Each op's count on the 6 edges is drawn far more evenly than under uniform sampling, and
    every op still lands on every edge about equally often."""
    sampler = make("stratified")
    archs = [SPACE.parse(step[0]) for step in run(sampler, 3500)]
    same = sum(len(set(a.values())) == 1 for a in archs) / len(archs)
    assert 0.10 < same < 0.19, same  # 1/7 ("k = 6"), vs 5 * 5**-6 ~ 0.0003 under uniform draws
    for op in SPACE.choices()["edge_1_0"]:
        counts = [sum(v == op for v in a.values()) for a in archs]
        assert all(c in counts for c in range(7)), op  # every count of every op appears
        assert sum(c >= 5 for c in counts) / len(counts) > 0.03, op  # uniform: ~0.002
        shares = [sum(a[e] == op for a in archs) / len(archs) for e in SPACE.choices()]
        assert all(0.17 < s < 0.23 for s in shares), (op, shares)  # 1/5 on every edge


def test_cost_binned_inside_a_leaf_draws_as_filtering_every_step_would():
    """The bins a leaf restricts are filtered once per leaf; the draws are those of filtering
    them again at every step (same archs, same random stream), and stay inside the leaf."""
    leaves = [{"edge_1_0": ["nor_conv_3x3"]}, {"edge_2_1": ["none", "skip_connect"]}, {}]
    kept, fresh = (make("cost_binned", seed=4) for _ in range(2))
    for step in range(60):
        leaf = leaves[step % 3]
        fresh._leaf_bins.clear()
        drawn = kept.paths(leaf)
        assert drawn == fresh.paths(leaf)
        assert all(arch[d] in allowed for arch in drawn for d, allowed in leaf.items())
    assert len(kept._leaf_bins) == 2  # one entry per non-empty leaf
