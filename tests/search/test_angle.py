"""The angle estimator: the initial supernet rebuilt from a checkpoint, and the angle each path's
weights turned through in training (Hu et al., ECCV 2020)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import search
from search.evaluate import Evaluator
from supernet.builder import build, config_to_save, initial_strategy, load_trained
from supernet.errors import SharenasError
from supernet.training import train
from tests.conftest import compose_tiny


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("angle")
    return Path(
        train(compose_tiny("train", ["trainer.steps_per_epoch=6"]), out_dir=out)["checkpoint"]
    )


def test_initial_strategy_is_the_supernet_training_started_from():
    cfg = compose_tiny("train", ["seed=3"])
    torch.manual_seed(3)  # as supernet.train_setup.set_up does before building
    started = build(cfg).strategy.state_dict()
    before = torch.random.get_rng_state()
    rebuilt = initial_strategy(config_to_save(cfg)).state_dict()
    assert torch.equal(torch.random.get_rng_state(), before)  # the global RNG is left alone
    assert started.keys() == rebuilt.keys()
    assert all(torch.equal(started[k], rebuilt[k]) for k in started)


def test_angle_is_zero_before_training_and_positive_after(checkpoint):
    built, state = load_trained(checkpoint)
    initial = initial_strategy(state.config)
    arch = built.space.sample(__import__("random").Random(0))
    trained = Evaluator(built, count_flops=False, estimator="angle", initial=initial)(arch)
    assert 0.0 < trained["angle"] < math.pi and trained["score"] == trained["angle"]
    built.strategy.load_state_dict(initial.state_dict())  # the same path, untrained
    untouched = Evaluator(built, count_flops=False, initial=initial)(arch)
    assert untouched["angle"] == pytest.approx(0.0, abs=1e-6)


def test_angle_without_the_initial_supernet_is_one_line(checkpoint):
    built, _ = load_trained(checkpoint)
    with pytest.raises(SharenasError, match="needs the supernet's initial weights"):
        Evaluator(built, estimator="angle")


def test_a_search_ranks_by_angle(checkpoint, tmp_path):
    overrides = [
        f"supernet.checkpoint={checkpoint}",
        "evaluator.estimator=angle",
        "results.key=score",
        "searcher=random",
        "searcher.n_trials=5",
    ]
    out = search.run(compose_tiny("search", overrides), out_dir=tmp_path)
    ranked = out["leaderboard"]
    assert [r["score"] for r in ranked] == sorted((r["angle"] for r in ranked), reverse=True)
    assert all(0.0 < r["angle"] < math.pi for r in ranked)
