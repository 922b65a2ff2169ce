"""bench/sample.py: the two fixed samples are the cells their committed caches hold."""

from __future__ import annotations

import json
from collections import Counter

from bench.ground_truth import SAMPLES
from bench.sample import stratified_sample, uniform_sample
from supernet.spaces import build_space
from supernet.spaces.nb201 import NB201_OPS


def test_the_stratified_sample_has_every_op_at_every_count_and_is_the_cached_one():
    space = build_space("nb201")
    archs = stratified_sample(space, per_stratum=7, seed=2026)
    assert archs == stratified_sample(space, per_stratum=7, seed=2026)
    assert len(set(archs)) == len(archs) == 215
    counts = {(op, list(a.values()).count(op)) for a in archs for op in NB201_OPS}
    assert counts == {(op, k) for op in NB201_OPS for k in range(7)}
    per_stratum = Counter(list(a.values()).count("nor_conv_3x3") for a in archs)
    assert per_stratum[6] == 1 and per_stratum[0] >= 7  # one cell has 3x3 on all six edges
    cached = json.loads(SAMPLES["stratified"].cache.read_text())["mean"]
    assert set(map(str, archs)) == set(cached)


def test_the_uniform_sample_is_distinct_seeded_and_holds_the_cached_cells():
    space = build_space("nb201")
    archs = uniform_sample(space, n=300, seed=1)
    assert len(set(archs)) == 300 and archs == uniform_sample(space, n=300, seed=1)
    assert archs[:20] != uniform_sample(space, n=20, seed=2)
    assert archs[:20] == uniform_sample(space, n=20, seed=1)  # a prefix: a cache can grow
    cached = json.loads(SAMPLES["uniform"].cache.read_text())["mean"]  # possibly still partial
    assert cached and set(cached) <= set(map(str, archs))
