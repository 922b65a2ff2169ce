"""Recipes (conf/recipe/), values derived from the run, and the pluggable estimators."""

from __future__ import annotations

import math
import random

import pytest
import torch
from omegaconf import OmegaConf

from search.estimators import ESTIMATORS, FUSIONS, REFERENCE_ARCHS, Scorer
from search.evaluate import Evaluator, calibration_batches
from search.pipeline import run as search_run
from search.zero_cost import synflow
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
    assert search["evaluator"]["calib_batches"] == "auto"
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
    with pytest.raises(SharenasError, match="calib_batches must be.*'all' or 'auto', got 'most'"):
        calibration_batches("most", 64, n)


def test_auto_calibration_follows_the_estimator(trained, capsys):
    from search.estimators import AUTO_CALIB_BATCHES, resolve_calibration

    assert resolve_calibration("auto", "train_loss") == "all"
    assert resolve_calibration("auto", "train_loss+params") == "all"
    assert "evaluator.calib_batches=auto -> all (train_loss: " in capsys.readouterr().err
    for name in ("val_loss", "val_loss+params", "val_acc", "angle", "synflow"):
        assert resolve_calibration("auto", name) == AUTO_CALIB_BATCHES
    assert (
        resolve_calibration(7, "train_loss") == 7 and resolve_calibration("all", "val_acc") == "all"
    )
    ev = Evaluator(trained, calib_batches="auto", estimator="auto", count_flops=False)
    assert len(ev.calibrator.batches) == AUTO_CALIB_BATCHES  # nb201 -> val_loss+synflow
    ev = Evaluator(trained, calib_batches="auto", estimator="train_loss", count_flops=False)
    assert sum(len(b) for b in ev.calibrator.batches) == len(trained.splits.train)


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
    for name, (loss, cost) in FUSIONS.items():
        fusion = Evaluator(trained, estimator=name, count_flops=False, seed=3)
        record = fusion(arch)
        stats = fusion.scorer.reference()  # REFERENCE_ARCHS archs scored once, then reused
        assert len(fusion.memo) >= REFERENCE_ARCHS - 5  # a seeded sample may repeat an arch
        value = record["params"] if cost == "params" else record["zero_cost"]
        assert cost == "params" or value == records["synflow"]["zero_cost"]  # the same proxy
        parts = (-record[loss], math.log(value))
        expected = sum((v - m) / s for v, (m, s) in zip(parts, stats, strict=True))
        assert record["score"] == pytest.approx(expected)
        assert stats[0][1] > 0 and stats[1][1] > 0  # the reference archs differ in both parts
        small = fusion(trained.space.smallest())
        assert small["score"] < record["score"]  # fewer parameters and a higher loss
    with pytest.raises(SharenasError, match="unknown evaluator.estimator 'oracle'; allowed: "):
        Scorer("oracle", fusion._measure, trained.space)


def test_default_search_ranks_by_the_estimator(tmp_path, capsys):
    overrides = [*TINY, "recipe=default", "searcher.n_trials=4", "evaluator.calib_batches=auto"]
    result = search_run(compose_tiny("search", overrides), out_dir=tmp_path)
    captured = capsys.readouterr()
    err = captured.err
    assert "(ranked by score = val_loss+synflow: z(minus the validation loss)" in captured.out
    assert "evaluator.estimator=auto -> val_loss+synflow (nb201 space" in err
    assert "evaluator.calib_batches=auto -> 4 (val_loss+synflow: " in err
    board = result["leaderboard"]
    built, _ = load_trained(result["checkpoint"])
    ev = Evaluator(built, estimator="val_loss+synflow", seed=0)
    for r in board:  # z(-val loss) + z(log synflow) over the seeded reference archs
        (m_loss, s_loss), (m_s, s_s) = ev.scorer.reference()
        flow = synflow(built.strategy.extract(built.space.parse(r["arch"])), ev._proxy_batch)
        assert r["zero_cost"] == pytest.approx(flow, rel=1e-9) and r["zero_cost"] > 0
        want = (-r["val_loss"] - m_loss) / s_loss + (math.log(r["zero_cost"]) - m_s) / s_s
        assert r["score"] == pytest.approx(want, rel=1e-6) and r["train_loss"] is None
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
    if name == "angle":
        assert all(r["score"] == r["angle"] for r in board) and len(board) == 4
    else:  # a fusion: the better of two archs with equal params has the lower val loss
        assert ESTIMATORS[name].proxy == "synflow" and len(board) == 4
        assert all(r["score"] is not None and r["val_loss"] is not None for r in board)


def test_a_prepared_fusion_ships_its_reference_to_copies(trained, capsys):
    import pickle

    ev = Evaluator(trained, estimator="val_loss+params", count_flops=False, seed=1)
    ev.prepare()
    assert "scoring 64 seeded reference archs once" in capsys.readouterr().err
    clone = pickle.loads(pickle.dumps(ev))  # what a Ray worker gets
    assert clone.scorer._reference == ev.scorer._reference
    arch = trained.space.sample(random.Random(5))
    assert clone(arch)["score"] == pytest.approx(ev(arch)["score"])
    assert "reference archs" not in capsys.readouterr().err  # neither scored them again


def test_cpu_epochs_follow_the_dataset_and_say_so(tmp_path, capsys):
    from supernet.derived import DATA_EPOCHS, OTHER_EPOCHS

    mnist = compose_config("train", ["data=mnist5k"])
    assert mnist.trainer.epochs == DATA_EPOCHS["mnist5k"] == 30 and mnist.sharing.split_epoch == 15
    assert compose_config("search", ["data=digits"]).trainer.epochs == OTHER_EPOCHS == 15
    assert compose_config("train", ["data=mnist5k", "trainer.epochs=4"]).trainer.epochs == 4
    assert compose_config("train", ["data=mnist5k", "recipe=legacy"]).trainer.epochs == 15
    assert compose_config("train", ["recipe=cifar10_gpu"]).trainer.epochs == 50  # the GPU trainer's
    train(
        compose_tiny("train", ["trainer.epochs=1", "trainer.steps_per_epoch=2"]), out_dir=tmp_path
    )
    assert "trainer.epochs=" not in capsys.readouterr().out  # given: nothing derived to print
    quick = ["trainer.steps_per_epoch=1", "trainer.stop_after=1", "trainer.progress=false"]
    cfg = compose_config("train", ["space.macro.channels=4", "trainer.num_threads=1", *quick])
    train(cfg, out_dir=tmp_path / "derived")  # 1 of the derived 15 epochs (a time slice)
    assert (
        "trainer.epochs=15 (the CPU default for data=digits: no benchmark"
        in capsys.readouterr().out
    )
