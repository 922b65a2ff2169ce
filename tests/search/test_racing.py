"""Racing (``evaluator.race``): the archs it lets through get exactly the full record, the ones it
stops get the first stage's figures and could not reach the top; bad settings are one line."""

from __future__ import annotations

import csv
import math
import random
import re

import pytest
import torch

from search import pipeline
from search.checks import check_search_config
from search.evaluate import Evaluator
from search.racing import PAUSE, PROBE_EVERY, Race, first_stage
from supernet.builder import build
from supernet.errors import SharenasError


def test_the_threshold_is_the_kth_best_full_feasible_score():
    race = Race(top_k=2, limits={"params": 100, "flops": None})
    assert race.threshold is None and not race.stops(-1e9)  # nothing to race against yet
    race.observe({"score": 1.0, "params": 50})
    assert race.threshold is None
    race.observe({"score": 5.0, "params": 500})  # infeasible: never the top
    race.observe({"score": 4.0, "params": 50, "raced": 64})  # a first stage's figure
    race.observe({"score": float("nan"), "params": 50})
    assert race.threshold is None
    race.observe_all([{"score": 3.0, "params": 10}, {"score": 2.0, "params": 10}])
    assert race.threshold == 2.0  # the best two: 3.0 and 2.0
    assert race.stops(1.99) and not race.stops(2.0)


def test_the_first_stage_is_made_hopeful_by_z_standard_errors():
    losses = torch.tensor([0.1, 0.3, 0.5, 2.1])
    correct = torch.tensor([True, True, False, False])
    point, hopeful = first_stage(losses, correct, z=1.0)
    assert point == pytest.approx({"val_loss": 0.75, "val_acc": 50.0})
    loss_se = float(losses.double().std()) / 2
    acc_se = float(correct.double().std()) / 2
    assert hopeful["val_loss"] == pytest.approx(0.75 - loss_se)
    assert hopeful["val_acc"] == pytest.approx(100 * (0.5 + acc_se))
    _, clipped = first_stage(losses, correct, z=100.0)
    assert clipped == {"val_loss": 0.0, "val_acc": 100.0}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"top_k": 0}, "evaluator.race_top_k must be an integer >= 1, got 0"),
        ({"images": 1}, "evaluator.race_images must be an integer >= 2, got 1"),
        ({"z": -1.0}, "evaluator.race_z must be a finite number >= 0, got -1.0"),
        ({"z": math.inf}, "evaluator.race_z must be a finite number >= 0, got inf"),
    ],
)
def test_bad_race_settings_are_one_line(settings, message):
    with pytest.raises(SharenasError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Race(**settings)


def _built(tiny_cfg, overrides=()):
    cfg = tiny_cfg("search", ["evaluator.count_flops=true", *overrides])
    torch.manual_seed(0)
    return cfg, build(cfg)


@pytest.mark.parametrize("estimator", ["val_loss", "val_loss+synflow", "val_acc"])
def test_raced_records_could_not_reach_the_top_and_the_others_are_exact(tiny_cfg, estimator):
    cfg, built = _built(tiny_cfg)
    settings = {**cfg.evaluator, "estimator": estimator, "calib_batches": 3}
    race = {"race": True, "race_top_k": 3, "race_z": 0.0, "race_images": 40}
    racing = Evaluator.from_config(built, settings | race, seed=0)
    full = Evaluator.from_config(built, settings, seed=0)
    rng = random.Random(1)
    archs = list(dict.fromkeys(built.space.sample(rng) for _ in range(40)))
    raced = 0
    for arch in archs:
        threshold = racing.race.threshold
        record = racing(arch)
        if record["raced"] is None:  # let through: exactly the record without racing
            assert record == full(arch)
            continue
        raced += 1
        assert record["raced"] == 40 and record["train_loss"] is None
        assert threshold is not None and record["score"] < threshold
        net = racing.calibrator(built.strategy.extract(arch), first=1)
        with torch.no_grad():
            x, y = built.splits.val.tensors[0][:40], built.splits.val.tensors[1][:40]
            logits = net(x)
        assert record["val_loss"] == pytest.approx(
            torch.nn.functional.cross_entropy(logits, y).item(), rel=1e-5
        )
        assert record["val_acc"] == pytest.approx(100 * (logits.argmax(1) == y).float().mean())
        assert {k: record[k] for k in ("params", "flops", "supernet")} == {
            k: full(arch)[k] for k in ("params", "flops", "supernet")
        }
    assert 0 < raced < len(archs) - 3
    assert (
        racing.race.threshold
        == sorted(
            (
                r["score"]
                for r in racing.memo.values()
                if r.get("raced") is None and r["score"] is not None
            ),
            reverse=True,
        )[2]
    )


def test_racing_refuses_what_it_cannot_race(tiny_cfg, tmp_path, capsys):
    cfg, built = _built(tiny_cfg)
    race = {"race": True, "race_top_k": 3, "race_z": 3.0, "race_images": 64}
    with pytest.raises(SharenasError, match="needs an estimator read from the validation split"):
        Evaluator.from_config(built, {**cfg.evaluator, **race, "estimator": "train_loss"}, seed=0)
    n_val = len(built.splits.val)  # known once the data is loaded: a warning, racing off
    ev = Evaluator.from_config(built, {**cfg.evaluator, **race, "race_images": n_val}, seed=0)
    assert ev.race is None
    assert f"race_images={n_val} is not below the {n_val} validation images" in (
        capsys.readouterr().err
    )
    refused = {
        "race a single-objective search that ranks and steers by score": (
            ["searcher=nsga2"],
            ["results.key=params"],
            ["results.key=val_acc", "evaluator.estimator=val_loss"],
            ["searcher.directions=[minimize]"],
            ["searcher.objectives=[val_loss]", "evaluator.estimator=val_loss"],
        ),
        "needs an estimator read from the validation split": (
            ["evaluator.estimator=train_loss", "results.key=score"],
            ["evaluator.estimator=train_loss+params", "results.key=score"],
        ),
        "evaluator.race_top_k=5 is below results.top_k=10": (["evaluator.race_top_k=5"],),
        "evaluator.race_z must be a finite number >= 0, got -1": (["evaluator.race_z=-1"],),
        "evaluator.race_images must be an integer >= 2, got 1": (["evaluator.race_images=1"],),
        "evaluator.race_top_k must be an integer >= 1, got 0": (["evaluator.race_top_k=0"],),
    }
    for message, cases in refused.items():
        for overrides in cases:
            bad = tiny_cfg("search", ["evaluator.race=true", "results.top_k=10", *overrides])
            with pytest.raises(SharenasError, match=re.escape(message)):
                pipeline.run(bad, out_dir=tmp_path / "run")
    assert not (tmp_path / "run" / "supernet.pt").exists()  # refused before any training
    good = [
        "searcher.objectives=[val_loss]",
        "searcher.directions=[minimize]",
        "evaluator.estimator=val_loss",
    ]
    check_search_config(tiny_cfg("search", ["evaluator.race=true", *good, "results.key=score"]))
    for exact in (["space=mbv3", "evaluator.estimator=auto"], ["evaluator.estimator=synflow"]):
        check_search_config(
            tiny_cfg("search", ["evaluator.race=true", *exact, "results.key=score"])
        )


def test_a_raced_search_writes_raced_records_and_says_how_many(tiny_cfg, tmp_path, capsys):
    overrides = [
        "searcher.n_trials=30",
        "evaluator.race=true",
        "evaluator.race_z=0",
        "results.top_k=3",
        "evaluator.estimator=val_loss",
        "results.key=score",
    ]
    out = pipeline.run(tiny_cfg("search", overrides), out_dir=tmp_path)
    rows = list(csv.DictReader((tmp_path / "leaderboard.csv").open()))
    raced = [r for r in rows if r["raced"]]
    assert raced and all(r["raced"] == "64" for r in raced)
    assert all(not r["raced"] for r in rows[:3])  # the top is scored in full
    said = (
        f"evaluator.race: {len(raced)} of the 30 archs this run evaluated stopped after the "
        "first stage (one calibration batch and 64 validation images; raced=64"
    )
    assert said in capsys.readouterr().err
    assert [r["arch"] for r in out["leaderboard"][:3]] == [r["arch"] for r in rows[:3]]
    from search.tensorboard_live import session_name
    from tests.search.test_tensorboard_live import hparam_value, runs, sessions

    found = sessions(runs(tmp_path / "tb"))  # each arch's HParams session says if it was raced
    by_session = {session_name(r["trial"]): r["raced"] is not None for r in out["records"]}
    assert {name: hparam_value(hp["raced"]) for name, hp in found.items()} == by_session


@pytest.mark.parametrize("estimator", ["angle", "synflow", "snip"])
def test_an_exact_race_stops_by_the_full_score_and_keeps_the_full_ranking(tiny_cfg, estimator):
    from supernet.builder import config_to_save, initial_strategy

    cfg, built = _built(tiny_cfg)
    settings = {**cfg.evaluator, "estimator": estimator, "calib_batches": 3}
    initial = initial_strategy(config_to_save(cfg)) if estimator == "angle" else None
    noise = torch.Generator().manual_seed(0)
    with torch.no_grad():  # "trained": the paths' weights turn by different angles
        for p in built.strategy.parameters():
            p.add_(0.5 * p.abs().mean() * torch.randn(p.shape, generator=noise))
    race = {"race": True, "race_top_k": 4, "race_z": 3.0, "race_images": 40}
    racing = Evaluator.from_config(built, settings | race, seed=0, initial=initial)
    full = Evaluator.from_config(built, settings, seed=0, initial=initial)
    assert racing.race.exact and not full.race
    rng = random.Random(4)
    archs = list(dict.fromkeys(built.space.sample(rng) for _ in range(40)))
    raced, records = 0, []
    for arch in archs:
        threshold = racing.race.threshold
        record, whole = racing(arch), full(arch)
        records.append((record, whole))
        assert record["score"] == whole["score"]  # exact: the score is the full record's
        if record["raced"] is None:
            assert record == whole
            continue
        raced += 1  # stopped: below the top by its own score, figures from the first stage
        assert threshold is not None and record["score"] < threshold
        assert record["raced"] == 40 and record["val_loss"] != whole["val_loss"]
        assert {k: record[k] for k in ("params", "flops", "angle", "zero_cost")} == {
            k: whole[k] for k in ("params", "flops", "angle", "zero_cost")
        }
    assert raced > len(archs) // 3  # never paused: every arch past the first top is checked
    ranked = sorted(records, key=lambda rw: rw[1]["score"], reverse=True)
    assert all(r["raced"] is None for r, _ in ranked[:4])  # the full top, scored in full


def test_racing_pauses_when_nothing_stops_and_resumes_at_the_next_stop(capsys):
    race = Race(top_k=1)
    assert not race.enter()  # no top yet
    race.observe({"score": 0.0})
    assert race.enter() and race.stops(-1.0)  # a stop resets the count
    for _ in range(PAUSE):
        assert race.enter() and not race.stops(1.0)
    assert f"none of the last {PAUSE} archs that ran the first stage" in capsys.readouterr().err
    entered = [race.enter() for _ in range(3 * PROBE_EVERY)]  # paused: one in PROBE_EVERY
    assert entered.count(True) == 3 and entered[PROBE_EVERY - 1]
    assert race.stops(-1.0)  # a probe that stops
    assert "racing resumed" in capsys.readouterr().err
    assert all(race.enter() for _ in range(5))


def test_an_arch_that_breaks_a_constraint_stops_at_the_first_stage(tiny_cfg):
    cfg, built = _built(tiny_cfg)
    rng = random.Random(2)
    archs = list(dict.fromkeys(built.space.sample(rng) for _ in range(40)))
    full = Evaluator.from_config(built, {**cfg.evaluator, "estimator": "val_loss"}, seed=0)
    params = sorted(full(a)["params"] for a in archs)
    limit = params[len(params) // 2]
    race = {"race": True, "race_top_k": 3, "race_z": 100.0}  # z 100: no arch stops on its score
    racing = Evaluator.from_config(
        built, {**cfg.evaluator, "estimator": "val_loss", **race}, seed=0, limits={"params": limit}
    )
    records, started = [], None
    for i, arch in enumerate(archs):
        if started is None and racing.race.threshold is not None:
            started = i  # the top formed: every arch runs the first stage from here
        records.append(racing(arch))
    late = records[started:]
    assert any(r["raced"] for r in late)
    assert all((r["raced"] is not None) == (r["params"] > limit) for r in late)


def test_a_resumed_study_races_against_the_records_it_holds(tiny_cfg, tmp_path, capsys):
    storage = tmp_path / "study.journal"
    common = [f"searcher.storage={storage}", "evaluator.estimator=val_loss", "results.key=score"]
    first = pipeline.run(tiny_cfg("search", [*common, "searcher.n_trials=20"]), tmp_path / "a")
    assert all(r["raced"] is None for r in first["records"])
    race = ["evaluator.race=true", "evaluator.race_top_k=15", "evaluator.race_z=0"]
    checkpoint = f"supernet.checkpoint={first['checkpoint']}"
    more = [*common, *race, checkpoint, "searcher.n_trials=30"]
    resumed = pipeline.run(tiny_cfg("search", more), tmp_path / "b")
    new = [r for r in resumed["records"] if r["trial"] >= 20]
    assert len(new) == 10  # fewer than race_top_k: only the stored records make a top to race
    assert any(r["raced"] == 64 for r in new)
    capsys.readouterr()
    longer = [*common, checkpoint, "searcher.n_trials=30", "results.top_k=30"]  # re-ranks only
    pipeline.run(tiny_cfg("search", longer), tmp_path / "c")
    err = capsys.readouterr().err
    raced = sum(r["raced"] is not None for r in resumed["records"])
    assert re.search(
        rf"warning: {raced} of the top 30 \(ranks [\d, ]+\) were stopped by racing", err
    )
    assert f"evaluator.race is off in this run; {raced} archs of earlier runs" in err


def test_a_higher_top_from_another_process_is_adopted_never_merged():
    race = Race(top_k=2)
    race.observe_all([{"score": 1.0}, {"score": 2.0}])
    race.adopt([9.0])  # too short to be a top
    assert race.threshold == 1.0
    race.adopt([0.5, 0.7, 0.2])  # a lower top: this one is the better bound
    assert race.threshold == 1.0
    race.adopt([2.0, 1.5, float("nan")])  # the driver's: it holds this process's 2.0 as well
    assert race.threshold == 1.5 and race.top() == [2.0, 1.5]  # replaced: 2.0 counts once
    race.observe({"score": 3.0})
    assert race.top() == [3.0, 2.0]
    for _ in range(PAUSE):  # paused ...
        assert race.enter() and not race.stops(1e9)
    race.adopt([5.0, 4.0])  # ... and still paused with a higher top (on Ray it rises often):
    assert race.threshold == 4.0  # the next probe that stops resumes racing
    assert [race.enter() for _ in range(PROBE_EVERY)].count(True) == 1


def test_a_ray_worker_races_against_the_top_its_config_carries(tiny_cfg):
    from ray import cloudpickle

    from search.backends.ray_backend import RACE_TOP, _evaluate

    cfg, built = _built(tiny_cfg)
    race = {"race": True, "race_top_k": 2, "race_z": 0.0}
    settings = {**cfg.evaluator, "estimator": "val_loss", **race}
    evaluator = Evaluator.from_config(built, settings, seed=0)
    blob = cloudpickle.dumps((evaluator, built.space))
    rng = random.Random(3)
    a, b = (dict(built.space.sample(rng)) for _ in range(2))
    alone = _evaluate(a, blob, "run-a")  # no top yet in this worker: scored in full
    assert alone["raced"] is None and RACE_TOP not in alone["arch"]
    record = _evaluate({**b, RACE_TOP: [1e9, 1e9]}, blob, "run-a")  # the driver's top
    assert record["raced"] == 64 and record["arch"] == str(built.space.make(b))


@pytest.mark.parametrize(
    ("settings", "said"),
    [
        (["evaluator.race_top_k=40"], "racing starts once 40 archs are scored in full (20 were)"),
        (["evaluator.race_top_k=3", "evaluator.race_z=1000"], "none could be told below the top"),
    ],
)
def test_a_race_that_stopped_nothing_says_why(tiny_cfg, tmp_path, capsys, settings, said):
    overrides = ["searcher.n_trials=20", "evaluator.race=true", "results.top_k=3"]
    common = ["evaluator.estimator=val_loss", "results.key=score", "verify=off"]
    pipeline.run(tiny_cfg("search", [*overrides, *common, *settings]), out_dir=tmp_path)
    err = capsys.readouterr().err
    assert "evaluator.race: 0 of the 20 archs this run evaluated stopped" in err
    assert said in err


def test_an_mbv3_search_races_its_default_angle_exactly(tiny_cfg, tmp_path, capsys):
    storage = f"searcher.storage={tmp_path / 'study.journal'}"
    common = ["space=mbv3", "searcher.n_trials=24", storage, "verify=off"]
    auto = ["evaluator.estimator=auto", "results.key=score"]
    raced_run = [*common, *auto, "evaluator.race=true", "results.top_k=3"]
    out = pipeline.run(tiny_cfg("search", raced_run), out_dir=tmp_path / "a")
    err = capsys.readouterr().err
    assert "evaluator.estimator=auto -> angle" in err
    records = out["records"]
    raced = [r for r in records if r["raced"] is not None]
    assert raced and all(r["raced"] == 64 for r in raced)
    assert (
        f"evaluator.race: {len(raced)} of the 24 archs this run evaluated stopped below the top "
        "by their exact score (or by a constraint), so the top and the order by score are the "
        "full evaluator's; their val_acc and val_loss come from a first stage (one calibration "
        "batch and 64 validation images"
    ) in err
    assert all(r.get("raced") is None for r in out["leaderboard"][:3])
    for r in raced:  # stopped by the angle alone: below the top it met, whatever its val figures
        assert r["score"] == r["angle"] and r["val_acc"] is not None
    checkpoint = f"supernet.checkpoint={out['checkpoint']}"
    longer = [*common, *auto, checkpoint, "results.top_k=24"]  # re-ranks the stored study
    again = pipeline.run(tiny_cfg("search", longer), out_dir=tmp_path / "b")
    assert [r["arch"] for r in again["leaderboard"]] == [r["arch"] for r in out["leaderboard"]]
    assert re.search(
        rf"warning: {len(raced)} of the top 24 \(ranks [\d, ]+\) were stopped by racing: their "
        "scores are exact, their val_acc and val_loss first-stage figures",
        capsys.readouterr().err,
    )
