"""bench/ground_truth.py: standalone training of a few cells on a tiny split, cached and resumed."""

from __future__ import annotations

import dataclasses
import json
import statistics

import pytest

from bench import ground_truth
from bench.sample import uniform_sample
from supernet.data import load_splits
from supernet.spaces import build_space
from supernet.standalone import StandaloneRecipe


def test_measure_trains_each_seed_writes_the_cache_and_resumes(tmp_path):
    sample = dataclasses.replace(
        ground_truth.SAMPLES["uniform"], cache=tmp_path / "gt" / "cells.json", seeds=(0, 1)
    )
    splits = load_splits("digits", limit=200, seed=0)
    recipe = StandaloneRecipe(epochs=1, batch_size=64)
    archs = uniform_sample(build_space("nb201"), n=2, seed=0)
    logged: list[str] = []
    payload = ground_truth.measure(archs[:1], sample, splits, recipe, logged.append)
    assert len(logged) == 1 and json.loads(sample.cache.read_text()) == payload
    for arch in map(str, archs[:1]):
        accs = payload["per_seed"][arch]
        assert len(accs) == 2 and all(0.0 <= a <= 100.0 for a in accs)
        assert payload["mean"][arch] == pytest.approx(sum(accs) / 2)
        assert payload["params"][arch] > 0
    assert payload["seeds"] == [0, 1] and payload["recipe"]["epochs"] == 1
    assert payload["sample"] == {"kind": "uniform", "n": 300, "seed": 1}
    assert payload["command"] == "python -m bench.ground_truth --sample uniform"
    logged.clear()
    again = ground_truth.measure(archs, sample, splits, recipe, logged.append)
    assert len(logged) == 1 and str(archs[1]) in logged[0]  # only the new cell was trained
    assert {a: again["per_seed"][a] for a in payload["per_seed"]} == payload["per_seed"]


def test_shards_in_two_processes_share_one_cache(tmp_path):
    """Two shard processes write to one cache at once; the lock keeps every result."""
    import multiprocessing

    cache = tmp_path / "gt" / "cells.json"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_shard, args=(cache, k)) for k in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=300)
    assert [w.exitcode for w in workers] == [0, 0]
    archs = uniform_sample(build_space("nb201"), n=4, seed=0)
    payload = json.loads(cache.read_text())
    assert sorted(payload["per_seed"]) == sorted(map(str, archs))
    assert sorted(payload["mean"]) == sorted(payload["params"]) == sorted(map(str, archs))


def _shard(cache, k: int) -> None:
    import torch

    torch.set_num_threads(1)
    sample = dataclasses.replace(ground_truth.SAMPLES["uniform"], cache=cache, seeds=(0,))
    splits = load_splits("digits", limit=120, seed=0)
    archs = uniform_sample(build_space("nb201"), n=4, seed=0)
    recipe = StandaloneRecipe(epochs=1, batch_size=64)
    ground_truth.measure(archs, sample, splits, recipe, lambda s: None, shard=(k, 2))


def test_a_missing_cache_names_the_command_that_makes_it(tmp_path):
    sample = dataclasses.replace(ground_truth.SAMPLES["uniform"], cache=tmp_path / "absent.json")
    with pytest.raises(FileNotFoundError, match="python -m bench.ground_truth --sample uniform"):
        sample.load()


def test_the_samples_keep_their_caches_and_seeds():
    strat, uni = ground_truth.SAMPLES["stratified"], ground_truth.SAMPLES["uniform"]
    assert ground_truth.CACHE == strat.cache and strat.cache.name == "nb201_mnist5k14.json"
    assert uni.cache.name == "nb201_mnist5k14_uniform.json" and uni.seeds == (0, 1, 2, 3, 4)
    assert strat.estimates == "estimates.json" and uni.estimates != strat.estimates
    with pytest.raises(SystemExit):
        ground_truth.main(["--sample", "random"])
    with pytest.raises(SystemExit):
        ground_truth.main(["--sample", "uniform", "--shard", "2/2"])


def test_the_mbv3_sample_trains_mbv3_nets_in_its_own_macro(tmp_path):
    sample = dataclasses.replace(
        ground_truth.SAMPLES["mbv3"], cache=tmp_path / "mbv3.json", seeds=(0,)
    )
    splits = load_splits("digits", limit=120, seed=0)
    archs = sample.archs()[:1]
    payload = ground_truth.measure(
        archs, sample, splits, StandaloneRecipe(epochs=1, batch_size=64), lambda s: None
    )
    from supernet.models import Macro, count_params, standalone_from_scratch

    macro = Macro(**sample.macro, in_channels=1, num_classes=10)
    net = standalone_from_scratch(build_space("mbv3"), macro, archs[0])
    assert payload["params"] == {str(archs[0]): count_params(net)}
    assert payload["space"] == "mbv3" and payload["macro"] == {"channels": 4}
    assert payload["sample"] == {"kind": "mbv3", "n": 100, "seed": 1}


def test_a_pilot_prints_how_well_a_setting_separates_archs_and_writes_nothing(tmp_path, capsys):
    sample = dataclasses.replace(
        ground_truth.SAMPLES["mbv3"], cache=tmp_path / "mbv3.json", seeds=(0, 1)
    )
    splits = load_splits("digits", limit=120, seed=0)
    archs = sample.archs()[:3]
    recipe = StandaloneRecipe(epochs=1, batch_size=64)
    figures = ground_truth.pilot(archs, sample, splits, recipe, channels=2)
    out = capsys.readouterr().out
    accs = [
        [float(a) for a in line.split("[")[-1].rstrip("]").split(",")]
        for line in out.splitlines()
        if line.startswith("[")
    ]
    assert len(accs) == 3 and all(len(a) == 2 for a in accs)  # each arch once per seed
    means = [sum(a) / 2 for a in accs]
    assert figures["std_of_means"] == pytest.approx(statistics.pstdev(means))
    assert "pilot: C=2, 1 epochs, 3 archs x 2 seeds" in out
    assert not sample.cache.exists()
