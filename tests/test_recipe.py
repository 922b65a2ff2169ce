"""Recipes (conf/recipe/), values derived from the run, and the pluggable estimators."""

from __future__ import annotations

import math

import pytest
import torch
from omegaconf import OmegaConf

from search.estimators import ESTIMATORS, REFERENCE_ARCHS, Scorer
from search.evaluate import Evaluator, calibration_batches
from search.pipeline import run as search_run
from supernet.builder import load_trained
from supernet.checkpoint import load_checkpoint
from supernet.cli import group_options
from supernet.derived import crop_pad_for, ema_decay_for, half
from supernet.errors import SharenasError
from supernet.training import train
from tests.conftest import compose_config, compose_tiny

TINY = ["trainer.epochs=2", "trainer.steps_per_epoch=3"]


def test_derived_values_match_the_benchmarked_recipe():
    assert ema_decay_for(1350) == 0.998  # 30 epochs x 45 steps, where 0.998 ranked best
    assert ema_decay_for(90) < ema_decay_for(1350) < ema_decay_for(10_000) < 1
    assert [crop_pad_for(s) for s in (8, 14, 28, 32)] == [1, 2, 4, 4]
    assert [half(e) for e in (1, 2, 15, 30)] == [1, 1, 7, 15]


def test_recipes_compose():
    assert set(group_options("recipe")) == {"default", "legacy", "cifar10_gpu"}
    default = compose_config("train", ["data=mnist5k", "trainer.epochs=30"])
    c = OmegaConf.to_container(default, resolve=True)
    assert c["sharing"]["_target_"].endswith("FewShotSharing")
    assert c["sharing"]["split_epoch"] == 15 and c["sharing"]["train_all_leaves"] is True
    assert c["sampler"]["_target_"].endswith("CostBinnedSampler")
    assert c["trainer"]["optimizer"]["lr"] == 0.02
    assert c["trainer"]["ema_decay"] == "auto" == c["trainer"]["augment"]["crop_pad"]
    legacy = OmegaConf.to_container(compose_config("search", ["recipe=legacy"]), resolve=True)
    assert legacy["sharing"]["_target_"].endswith("FullSharing")
    assert legacy["trainer"]["optimizer"]["lr"] == 0.05 and legacy["trainer"]["ema_decay"] is None
    assert legacy["evaluator"] == legacy["evaluator"] | {"calib_batches": 4, "estimator": "val_acc"}
    search = OmegaConf.to_container(compose_config("search"), resolve=True)
    assert search["evaluator"]["calib_batches"] == "all"
    assert search["evaluator"]["estimator"] == "auto" and search["results"]["key"] == "score"
    gm = OmegaConf.to_container(compose_config("train", ["sharing=gm"]), resolve=True)
    assert gm["sharing"]["_target_"].endswith("GradientMatchingSharing")  # the command line wins
    gpu = OmegaConf.to_container(compose_config("train", ["recipe=cifar10_gpu"]), resolve=True)
    assert gpu["data"]["name"] == "cifar10" and gpu["trainer"]["device"] == "cuda"


def test_default_recipe_derives_and_prints_its_values(tmp_path, capsys):
    cfg = compose_tiny("train", [*TINY, "recipe=default"])
    metrics = train(cfg, out_dir=tmp_path)
    out = capsys.readouterr().out
    assert f"trainer.ema_decay=auto -> {ema_decay_for(6)} " in out  # 2 epochs x 3 steps
    assert "trainer.augment.crop_pad=auto -> 1 " in out  # 8x8 digits
    payload = load_checkpoint(metrics["checkpoint"], space="nb201")
    assert payload["ema"]["decay"] == ema_decay_for(6)
    assert payload["sharing"]["name"] == "fewshot" and metrics["num_supernets"] == 5


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ("trainer.ema_decay=often", "trainer.ema_decay must be a number in (0, 1), null or 'auto'"),
        ("trainer.augment.crop_pad=wide", "trainer.augment.crop_pad must be an integer >= 0"),
    ],
)
def test_bad_auto_values_name_the_key(tmp_path, override, words):
    with pytest.raises(SharenasError) as err:
        train(compose_tiny("train", [override]), out_dir=tmp_path)
    assert words in str(err.value)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained")
    train(compose_tiny("train", TINY), out_dir=out)
    return load_trained(out / "supernet.pt")[0]


def test_calibration_all_covers_the_training_split(trained, capsys):
    n = len(trained.splits.train)
    assert calibration_batches("all", 64, n) == math.ceil(n / 64)
    assert f"all {n} training images" in capsys.readouterr().err
    ev = Evaluator(trained, calib_batches="all", count_flops=False)
    assert sum(len(b) for b in ev.calibrator.batches) == n
    with pytest.raises(SharenasError, match="evaluator.calib_batches must be.*'all', got 'most'"):
        calibration_batches("most", 64, n)


def test_every_estimator_scores_from_the_record(trained):
    arch = trained.space.largest()
    records = {
        name: Evaluator(trained, estimator=name, count_flops=False, seed=3)(arch)
        for name in ESTIMATORS
        if not ESTIMATORS[name].needs_initial  # the angle: tests/search/test_angle.py
    }
    assert records["val_acc"]["score"] == records["val_acc"]["val_acc"]
    assert records["val_loss"]["score"] == -records["val_loss"]["val_loss"]
    assert records["train_loss"]["score"] == -records["train_loss"]["train_loss"]
    fusion = Evaluator(trained, estimator="train_loss+params", count_flops=False, seed=3)
    record = fusion(arch)
    stats = fusion.scorer.reference()  # REFERENCE_ARCHS archs scored once, then reused
    assert len(fusion.memo) >= REFERENCE_ARCHS - 5  # a seeded sample may repeat an arch
    parts = (-record["train_loss"], math.log(record["params"]))
    expected = sum((v - m) / s for v, (m, s) in zip(parts, stats, strict=True))
    assert record["score"] == pytest.approx(expected)
    small = fusion(trained.space.smallest())
    assert small["score"] < record["score"]  # fewer parameters and a higher loss
    with pytest.raises(SharenasError, match="unknown evaluator.estimator 'oracle'; allowed: "):
        Scorer("oracle", fusion._measure, trained.space)


def test_default_search_ranks_by_the_estimator(tmp_path):
    cfg = compose_tiny("search", [*TINY, "recipe=default", "searcher.n_trials=4"])
    result = search_run(cfg, out_dir=tmp_path)
    board = result["leaderboard"]
    assert all(r["score"] == -r["train_loss"] for r in board)
    assert [r["score"] for r in board] == sorted((r["score"] for r in board), reverse=True)
    assert torch.load(result["checkpoint"], weights_only=True)["sharing"]["name"] == "fewshot"


def test_the_auto_estimator_is_the_benchmarks_best_for_the_space_and_says_so(capsys):
    from search.estimators import AUTO_BY_SPACE, AUTO_OTHER, resolve_estimator

    for space, name in AUTO_BY_SPACE.items():
        assert resolve_estimator("auto", space) == name in ESTIMATORS
        assert f"evaluator.estimator=auto -> {name} ({space} space" in capsys.readouterr().err
    assert resolve_estimator("auto", "unbenchmarked") == AUTO_OTHER
    assert "no benchmark of it" in capsys.readouterr().err
    assert resolve_estimator("val_acc", "mbv3") == "val_acc" and not capsys.readouterr().err
    with pytest.raises(SharenasError, match="unknown evaluator.estimator 'oracle'"):
        resolve_estimator("oracle", "nb201")


@pytest.mark.parametrize("space", ["nb201", "mbv3"])
def test_the_default_search_ranks_each_space_by_its_benchmarked_estimator(tmp_path, space, capsys):
    from search.estimators import AUTO_BY_SPACE, ESTIMATORS

    cfg = compose_tiny("search", [*TINY, "recipe=default", f"space={space}", "searcher.n_trials=4"])
    board = search_run(cfg, out_dir=tmp_path)["leaderboard"]
    name = AUTO_BY_SPACE[space]
    assert f"evaluator.estimator=auto -> {name} ({space} space" in capsys.readouterr().err
    field = {"train_loss": "train_loss", "angle": "angle"}[name]
    sign = -1.0 if ESTIMATORS[name].needs_train_loss else 1.0
    assert all(r["score"] == sign * r[field] for r in board) and len(board) == 4
