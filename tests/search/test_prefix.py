"""The evaluator's prefix cache (``search.prefix``): paths that begin with the same parts reuse
their activations, and every record is bit for bit the one of a full pass."""

from __future__ import annotations

import pickle
import random
import re

import pytest
import torch

from search import pipeline, prefix
from search.evaluate import Evaluator
from supernet.builder import build
from supernet.errors import SharenasError
from supernet.spaces.mbv3 import block_keys


def _built(tiny_cfg, overrides):
    cfg = tiny_cfg("search", overrides)
    torch.manual_seed(0)
    built = build(cfg)
    built.strategy.train()
    with torch.no_grad():  # BN buffers that are not any path's calibrated ones
        x = built.splits.train.tensors[0][:32]
        rng = random.Random(1)
        for _ in range(3):
            built.strategy(x, built.space.sample(rng))
    return cfg, built


def _neighbours(space, rng: random.Random, n: int) -> list:
    """Random mbv3 archs and variants that differ from one of them in one late block only: they
    share every part before it, so the cache is hit deep as well as at the stem."""
    archs = []
    while len(archs) < n:
        base = dict(space.sample(rng))
        archs.append(space.make(base))
        for kernel in ("3", "5", "7"):
            stage = 3 if rng.random() < 0.5 else 4
            base[block_keys(stage, 1)[0]] = kernel
            archs.append(space.make(base))
    return archs[:n]


def _after_the_first(built, archs) -> int:
    """Distinct archs with an earlier distinct arch of the same sub-supernet (whose stem is
    the same part)."""
    seen, routes, count = set(), set(), 0
    for arch in archs:
        if str(arch) in seen:
            continue
        seen.add(str(arch))
        route = built.strategy.route(arch)
        count += route in routes
        routes.add(route)
    return count


@pytest.mark.parametrize(
    "evaluator",
    [[], ["evaluator.train_loss=true"], ["evaluator.estimator=train_loss", "data.limit=300"]],
)
def test_mbv3_paths_that_share_parts_get_the_records_of_full_passes(tiny_cfg, evaluator):
    """Also with the training split scored, and calibrated on all of it (``train_loss``)."""
    overrides = ["space=mbv3", "space.macro.channels=4", *evaluator]
    cfg, built = _built(tiny_cfg, overrides)
    archs = _neighbours(built.space, random.Random(0), 16)
    settings = {**cfg.evaluator, "count_flops": True}
    full = Evaluator.from_config(built, {**settings, "prefix_cache_mb": 0}, seed=0)
    cached = Evaluator.from_config(built, settings, seed=0)
    for arch in archs:
        assert cached(arch) == full(arch)
    assert full.prefix.hits == 0 and not full.prefix.entries
    assert cached.prefix.hits == _after_the_first(built, archs)  # each shares its stem
    assert cached.prefix.reused > 3 * cached.prefix.hits  # the neighbours share many blocks
    assert 0 < cached.prefix.nbytes <= cached.prefix.budget


def test_nb201_paths_share_the_stem_only(tiny_cfg):
    """Cells are assembled per arch, not memoised: the stem is the only shared prefix."""
    cfg, built = _built(tiny_cfg, ["space=nb201", "space.macro.cells_per_stage=2"])
    ev = Evaluator.from_config(built, cfg.evaluator, seed=0)
    full = Evaluator.from_config(built, {**cfg.evaluator, "prefix_cache_mb": 0}, seed=0)
    rng = random.Random(0)
    archs = [built.space.sample(rng) for _ in range(6)]
    for arch in archs:
        assert ev(arch) == full(arch)
    routes = len({built.strategy.route(a) for a in archs})
    assert routes < len(archs)
    assert ev.prefix.hits == ev.prefix.reused == len(archs) - routes
    assert len(ev.prefix.entries) == routes


def test_the_budget_bounds_the_cache_and_keeps_the_shallow_prefixes(tiny_cfg):
    cfg, built = _built(tiny_cfg, ["space=mbv3", "space.macro.channels=4"])
    full = Evaluator.from_config(built, {**cfg.evaluator, "prefix_cache_mb": 0}, seed=0)
    probe = Evaluator.from_config(built, cfg.evaluator, seed=0)
    archs = _neighbours(built.space, random.Random(2), 12)
    probe(archs[0])
    per_path = probe.prefix.nbytes  # every depth of one path
    ev = Evaluator.from_config(
        built, {**cfg.evaluator, "prefix_cache_mb": 1.5 * per_path / 2**20}, seed=0
    )
    for arch in archs:
        assert ev(arch) == full(arch)
        assert ev.prefix.nbytes <= ev.prefix.budget
        assert ev.prefix.nbytes == sum(e.nbytes for e in ev.prefix.entries.values())
    assert len(ev.prefix.entries) < len(probe.prefix.entries) + 12  # some were evicted
    stem = (id(ev._parts[built.strategy.route(archs[-1])]["stem"]),)
    assert stem in ev.prefix.entries  # used by many paths: not the least recently used
    assert ev.prefix.hits == _after_the_first(built, archs)


def test_what_a_path_holds_while_it_is_scored_stays_within_the_budget(tiny_cfg, monkeypatch):
    """Outputs are kept only at the depths whose entries fit: a budget below the smallest one
    keeps none while scoring, not only none after it."""
    cfg, built = _built(tiny_cfg, ["space=mbv3", "space.macro.channels=4"])
    archs = _neighbours(built.space, random.Random(5), 4)
    probe = Evaluator.from_config(built, cfg.evaluator, seed=0)
    probe(archs[0])
    smallest = min(e.nbytes for e in probe.prefix.entries.values())
    held = []
    collect = prefix._Run.collect

    def spy(run):
        out = collect(run)
        held.append(sum(t.untyped_storage().nbytes() for ts in out for t in ts))
        return out

    monkeypatch.setattr(prefix._Run, "collect", spy)
    for budget, kept in ((0.9 * smallest, False), (3 * smallest, True)):
        held.clear()
        ev = Evaluator.from_config(built, {**cfg.evaluator, "prefix_cache_mb": budget / 2**20}, 0)
        full = Evaluator.from_config(built, {**cfg.evaluator, "prefix_cache_mb": 0}, seed=0)
        for arch in archs:
            assert ev(arch) == full(arch)
        assert bool(ev.prefix.entries) == kept
        assert max(held) <= ev.prefix.budget and (max(held) > 0) == kept


def test_a_pickled_evaluator_starts_with_an_empty_cache(tiny_cfg):
    """Ray ships the evaluator: the cache's keys are module ids of the process that made it."""
    cfg, built = _built(tiny_cfg, ["space=mbv3", "space.macro.channels=4"])
    ev = Evaluator.from_config(built, cfg.evaluator, seed=0)
    archs = _neighbours(built.space, random.Random(4), 4)
    records = [ev(a) for a in archs]
    assert ev.prefix.entries
    twin = pickle.loads(pickle.dumps(ev))
    assert not twin.prefix.entries and twin.prefix.nbytes == 0
    twin.memo.clear()
    assert [twin(a) for a in archs] == records
    assert twin.prefix.entries


def test_a_negative_budget_is_one_line_before_training(tiny_cfg, tmp_path):
    bad = tiny_cfg("search", ["evaluator.prefix_cache_mb=-1"])
    message = "evaluator.prefix_cache_mb must be a finite number >= 0, got -1"
    with pytest.raises(SharenasError, match=re.escape(message)):
        pipeline.run(bad, out_dir=tmp_path / "run")
    assert not (tmp_path / "run" / "supernet.pt").exists()
