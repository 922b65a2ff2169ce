"""EMA of the supernet weights (``trainer.ema_decay``): the average, splits, checkpoints, resume."""

from __future__ import annotations

import json

import pytest
import torch

import search
from search.evaluate import Evaluator
from supernet.builder import build, load_trained
from supernet.checkpoint import load_checkpoint
from supernet.ema import WeightEMA
from supernet.errors import CheckpointError, SharenasError
from supernet.training import train
from tests.conftest import compose_tiny

FEWSHOT = ["sharing=fewshot", "sharing.split_epoch=1", "trainer.ema_decay=0.9"]


def test_average_and_split_hand_children_their_parents_average():
    strategy = build(compose_tiny("train", ["sharing=fewshot"])).strategy
    ema = WeightEMA(strategy, 0.75)
    ema.update(strategy)  # the first update copies
    start = [p.detach().clone() for p in strategy.parameters()]
    with torch.no_grad():
        for p in strategy.parameters():
            p.add_(1.0)
    ema.update(strategy)
    for avg, p0 in zip(ema.module.parameters(), start, strict=True):
        torch.testing.assert_close(avg, p0 + 0.25)  # 0.75 * p0 + 0.25 * (p0 + 1)
    decision, choices = next(iter(strategy.space.choices().items()))
    pairs = strategy.split(0, decision, [[c] for c in choices])
    ema.after_split(strategy, pairs)
    assert strategy.num_supernets == len(choices)
    averages = dict(zip(map(id, strategy.parameters()), ema.module.parameters(), strict=True))
    for child, parent in pairs:
        assert torch.equal(averages[id(child)], averages[id(parent)])
    for p, p0 in zip(strategy.supernets[0].parameters(), start, strict=True):
        torch.testing.assert_close(averages[id(p)], p0 + 0.25)  # the parent kept its average
    child = pairs[0][0]
    before = averages[id(child)].clone()
    ema.update(strategy)  # an update after the split blends, it does not copy again
    torch.testing.assert_close(averages[id(child)], 0.75 * before + 0.25 * child.detach())
    assert int(ema.avg.n_averaged) == 3


def test_resume_continues_the_average_and_search_loads_it(tmp_path):
    straight, halves = tmp_path / "straight", tmp_path / "halves"
    train(compose_tiny("train", [*FEWSHOT, "trainer.epochs=2"]), out_dir=straight)
    train(compose_tiny("train", [*FEWSHOT, "trainer.epochs=2", "trainer.stop_after=1"]), halves)
    train(compose_tiny("train", [*FEWSHOT, "trainer.epochs=2", "trainer.resume=true"]), halves)
    ref, resumed = (load_checkpoint(d / "supernet.pt") for d in (straight, halves))
    assert ref["ema"]["params"].keys() == resumed["ema"]["params"].keys()
    for name, value in ref["ema"]["params"].items():
        assert torch.equal(value, resumed["ema"]["params"][name]), name
    assert ref["ema"]["n_averaged"] == resumed["ema"]["n_averaged"] == 6  # 2 epochs x 3 steps
    assert len(ref["sharing"]["leaves"]) > 1  # the average went through a split
    averaged, _ = load_trained(straight / "supernet.pt")
    raw, _ = load_trained(straight / "supernet.pt", ema=False)
    moved = 0
    for name, p in averaged.strategy.named_parameters():
        assert torch.equal(p, ref["ema"]["params"][name])
        moved += not torch.equal(p, dict(raw.strategy.named_parameters())[name])
    assert moved > 0


def test_search_scores_with_the_average_and_says_so(tmp_path, capsys):
    ckpt = train(compose_tiny("train", ["trainer.ema_decay=0.5"]), out_dir=tmp_path / "t")
    scores = {}
    for ema in (True, False):
        overrides = [f"supernet.checkpoint={ckpt['checkpoint']}", f"supernet.ema={ema}"]
        cfg = compose_tiny("search", [*overrides, "searcher=random", "searcher.n_trials=4"])
        out = search.run(cfg, out_dir=tmp_path / f"s{ema}")
        said = "scoring with the checkpoint's EMA weights (decay 0.5)" in capsys.readouterr().err
        assert said == ema
        meta = json.loads((tmp_path / f"s{ema}" / "results.json").read_text())["meta"]
        assert meta["ema_decay"] == (0.5 if ema else None)
        built, _ = load_trained(ckpt["checkpoint"], ema=ema)
        evaluate = Evaluator.from_config(built, cfg.evaluator, seed=int(cfg.seed))
        archs = [r["arch"] for r in out["records"]]
        assert [r["val_loss"] for r in out["records"]] == [
            evaluate(built.space.parse(a))["val_loss"] for a in archs
        ]
        scores[ema] = {a: r["val_loss"] for a, r in zip(archs, out["records"], strict=True)}
    shared = scores[True].keys() & scores[False].keys()
    assert shared and any(scores[True][a] != scores[False][a] for a in shared)


def test_resume_says_what_happens_to_the_average(tmp_path, capsys):
    train(compose_tiny("train", ["trainer.epochs=2", "trainer.stop_after=1"]), out_dir=tmp_path)
    resumed = ["trainer.epochs=3", "trainer.stop_after=1", "trainer.resume=true"]
    train(compose_tiny("train", [*resumed, "trainer.ema_decay=0.5"]), out_dir=tmp_path)
    assert "the checkpoint has no EMA of its weights; the average starts now" in (
        capsys.readouterr().out
    )
    assert load_checkpoint(tmp_path / "supernet.pt")["ema"]["n_averaged"] == 3
    train(compose_tiny("train", [*resumed[1:], "trainer.epochs=3"]), out_dir=tmp_path)
    assert "trainer.ema_decay=null drops the checkpoint's EMA" in capsys.readouterr().out
    assert "ema" not in load_checkpoint(tmp_path / "supernet.pt")


def test_a_run_too_short_for_the_decay_is_warned_about(tmp_path, capsys):
    train(compose_tiny("train", ["trainer.ema_decay=0.999"]), out_dir=tmp_path)
    assert "keeps 100% of the first step's weights after 3 optimizer steps" in (
        capsys.readouterr().err
    )


def test_auto_on_a_very_short_run_does_not_warn_about_its_own_choice(tmp_path, capsys):
    train(compose_tiny("train", ["trainer.ema_decay=auto"]), out_dir=tmp_path)
    out, err = capsys.readouterr()
    assert "trainer.ema_decay=auto -> 0.5 (time constant 37% of the run's 3 optimizer steps)" in out
    assert "first step's weights" not in err


def test_an_ema_that_does_not_match_its_supernet_is_a_checkpoint_error(tmp_path):
    ckpt = train(compose_tiny("train", ["trainer.ema_decay=0.5"]), out_dir=tmp_path)["checkpoint"]
    payload = load_checkpoint(ckpt)
    payload["ema"]["params"].pop(next(iter(payload["ema"]["params"])))
    torch.save(payload, ckpt)
    with pytest.raises(CheckpointError, match="the checkpoint's EMA does not match its supernet"):
        load_trained(ckpt)


@pytest.mark.parametrize("decay", ["1.5", "0", "abc"])
def test_a_bad_decay_names_the_key_and_value(tmp_path, decay):
    with pytest.raises(
        SharenasError, match=rf"trainer.ema_decay must be (a number )?in \(0, 1\).*{decay}"
    ):
        train(compose_tiny("train", [f"trainer.ema_decay={decay}"]), out_dir=tmp_path)


def test_the_average_module_shares_the_averages_and_reads_live_bn_statistics():
    strategy = build(compose_tiny("train", ["sharing=fewshot"])).strategy
    ema = WeightEMA(strategy, 0.5)
    ema.update(strategy)
    with torch.no_grad():
        for p in strategy.parameters():
            p.add_(2.0)
        for b in strategy.buffers():
            if b.is_floating_point():
                b.add_(3.0)
    ema.update(strategy)
    module = ema.module
    for avg, live in zip(module.parameters(), strategy.parameters(), strict=True):
        torch.testing.assert_close(avg, live - 1.0)  # 0.5 * (p - 2) + 0.5 * p
    for mine, live in zip(module.buffers(), strategy.buffers(), strict=True):
        assert torch.equal(mine, live)  # BN statistics are not averaged: the trained ones
    with pytest.raises(ValueError, match="not the strategy"):
        ema.update(build(compose_tiny("train", ["sharing=fewshot"])).strategy)
