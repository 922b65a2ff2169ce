"""The verify stage end to end on a tiny trained supernet: resume after a kill, the exported
winner and its weights, the report files, bad values, and the Ray path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import search
from search.verify import distinct, select
from search.verify_jobs import KILL_AFTER_ENV
from supernet.cli import check_key_overrides
from supernet.data import load_splits
from supernet.errors import SharenasError
from supernet.models import Macro, standalone_from_scratch
from supernet.spaces import build_space
from supernet.standalone import accuracy
from supernet.training import train
from tests.conftest import REPO, compose_tiny, tiny_overrides

VERIFY = (
    "verify=default",
    "searcher=random",
    "searcher.n_trials=6",
    "verify.top_k=2",
    "verify.control=2",
    "verify.recipe.epochs=1",
    "verify.recipe.batch_size=64",
    "verify.bootstrap=200",
    "verify.workers=2",
)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("verify") / "train"
    return Path(train(compose_tiny("train"), out_dir=out)["checkpoint"])


def overrides(checkpoint: Path, *extra: str) -> list[str]:
    return tiny_overrides("search", [*VERIFY, f"supernet.checkpoint={checkpoint}", *extra])


def strict_json(path: Path) -> dict:
    def refuse(name: str) -> None:
        raise ValueError(f"{path} holds {name}")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_killed_verify_resumes_without_retraining(checkpoint: Path, tmp_path: Path) -> None:
    command = [sys.executable, "search.py", *overrides(checkpoint), f"hydra.run.dir={tmp_path}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", KILL_AFTER_ENV: "2"}
    killed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr[-2000:]
    stored = strict_json(tmp_path / "verify" / "standalone.json")["results"]
    assert len(stored) == 2
    weights = {p.name: p.read_bytes() for p in (tmp_path / "verify" / "weights").glob("*.pt")}
    assert len(weights) == 2 and not (tmp_path / "verify.json").exists()
    env.pop(KILL_AFTER_ENV)
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "verify: 2 of 4 archs already trained" in done.stderr
    trained_now = [ln for ln in done.stderr.splitlines() if ln.startswith("verify [")]
    assert len(trained_now) == 2 and all(a not in "".join(trained_now) for a in stored)
    after = strict_json(tmp_path / "verify" / "standalone.json")["results"]
    assert len(after) == 4 and all(after[a] == r for a, r in stored.items())
    for name, data in weights.items():
        assert (tmp_path / "verify" / "weights" / name).read_bytes() == data
    report = strict_json(tmp_path / "verify.json")
    assert (report["trained_now"], report["reused"], report["n"]) == (2, 2, 4)


def test_best_is_the_best_verified_arch_with_its_trained_weights(checkpoint, tmp_path, capsys):
    out = search.run(compose_tiny("search", overrides(checkpoint)), out_dir=tmp_path)
    printed = capsys.readouterr().out
    report = strict_json(tmp_path / "verify.json")
    rows = report["archs"]
    assert [r["role"] for r in rows] == ["top", "top", "control", "control"]
    best = max(rows, key=lambda r: (r["standalone_acc"], r["arch"][::-1]))
    top = max(r["standalone_acc"] for r in rows)
    assert report["best"]["standalone_acc"] == top == best["standalone_acc"]
    arch = (tmp_path / "best" / "arch.txt").read_text().strip()
    assert arch == report["best"]["arch"]
    assert (tmp_path / "best_supernet" / "arch.txt").read_text().strip() == out["leaderboard"][0][
        "arch"
    ]
    record = strict_json(tmp_path / "best" / "record.json")
    assert record["standalone_acc"] == top and "test split" in record["test_acc_note"]
    assert "val_acc" in record["estimates_note"] and "inherited weights" in record["estimates_note"]
    built_cfg = torch.load(checkpoint, weights_only=True)["config"]
    splits = load_splits(**{k: v for k, v in built_cfg["data"].items() if k != "_target_"})
    space = build_space("nb201")
    macro = Macro(4, 1, splits.in_channels, splits.num_classes)
    net = standalone_from_scratch(space, macro, space.parse(arch))
    net.load_state_dict(torch.load(tmp_path / "best" / "model.pt", weights_only=True))
    assert accuracy(net, splits.val) == pytest.approx(record["standalone_acc_these_weights"])
    assert accuracy(net, splits.test) == pytest.approx(record["test_acc"])
    exported = torch.export.load(tmp_path / "best" / "model.pt2").module()
    x, y = splits.val.tensors
    exported_acc = 100.0 * (exported(x).argmax(1) == y).float().mean().item()
    assert exported_acc == pytest.approx(record["standalone_acc_these_weights"])
    header = (tmp_path / "leaderboard.csv").read_text().splitlines()[0].split(",")
    assert "standalone_acc" in header
    assert "Kendall tau" in printed and "parameter count" in printed
    rank = report["best"]["rank"]
    assert f"best/ holds the best verified arch (leaderboard rank {rank})" in printed
    for part in ("supernet", "params"):
        low, high = report[part]["kendall_tau_interval"]
        assert -1 <= low <= high <= 1
    assert 1 <= report["supernet_pick"]["standalone_rank"] <= 4
    assert report["supernet_pick"]["regret_points"] >= 0
    # the standalone accuracy joins the verified archs' HParams sessions (tb/trials/trial_<n>)
    from tests.search.test_tensorboard_live import runs

    loaded = runs(tmp_path / "tb")
    with_acc = [n for n, acc in loaded.items() if "hparam/standalone_acc" in acc.Tags()["scalars"]]
    assert with_acc and all(n.startswith("trials/trial_") for n in with_acc)


def test_each_result_is_also_stored_in_a_persistent_study(checkpoint, tmp_path) -> None:
    import optuna

    from search.storage import open_storage

    journal = tmp_path / "study.journal"
    extra = ("verify.top_k=1", "verify.control=1", f"searcher.storage={journal}")
    out = search.run(compose_tiny("search", overrides(checkpoint, *extra)), tmp_path / "run")
    study = optuna.load_study(study_name="sharenas", storage=open_storage(str(journal)))
    stored = {k: v for k, v in study.user_attrs.items() if k.startswith("verify:")}
    assert len(stored) == 2
    by_arch = {v["arch"]: v["standalone_acc"] for v in stored.values()}
    assert by_arch == {r["arch"]: r["standalone_acc"] for r in out["verify"]["archs"]}


def test_a_killed_verify_resumes_from_the_study_in_a_new_run_directory(checkpoint, tmp_path):
    """Hydra gives every run a new directory: the study is what carries finished results over."""
    journal = tmp_path / "study.journal"
    extra = ("verify.top_k=1", "verify.control=1", f"searcher.storage={journal}")
    first = tmp_path / "first"
    command = [sys.executable, "search.py", *overrides(checkpoint, *extra)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", KILL_AFTER_ENV: "1"}
    killed = subprocess.run(
        [*command, f"hydra.run.dir={first}"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert killed.returncode == -9, killed.stderr[-2000:]
    done_first = strict_json(first / "verify" / "standalone.json")["results"]
    assert len(done_first) == 1
    ((arch, result),) = done_first.items()

    second = tmp_path / "second"
    cfg = compose_tiny("search", overrides(checkpoint, *extra))
    out = search.run(cfg, out_dir=second)
    report = out["verify"]
    assert (report["trained_now"], report["reused"]) == (1, 1)
    reused = next(r for r in report["archs"] if r["arch"] == arch)
    assert reused["standalone_acc_per_seed"] == result["standalone_acc_per_seed"]
    third = (
        tmp_path / "third"
    )  # every result in the study: nothing trained, winner's weights redone
    out = search.run(cfg, out_dir=third)
    report = out["verify"]
    assert (report["trained_now"], report["reused"]) == (0, 2)
    assert report["winner_weights_retrained"]
    record = strict_json(third / "best" / "record.json")
    winner = next(r for r in report["archs"] if r["arch"] == record["arch"])
    assert record["arch"] == report["best"]["arch"]
    # CPU training is reproducible: the weights trained again score what the study holds
    assert record["standalone_acc_these_weights"] == winner["standalone_acc_per_seed"][0]
    built_cfg = torch.load(checkpoint, weights_only=True)["config"]
    splits = load_splits(**{k: v for k, v in built_cfg["data"].items() if k != "_target_"})
    space = build_space("nb201")
    macro = Macro(4, 1, splits.in_channels, splits.num_classes)
    net = standalone_from_scratch(space, macro, space.parse(record["arch"]))
    net.load_state_dict(torch.load(third / "best" / "model.pt", weights_only=True))
    assert accuracy(net, splits.val) == pytest.approx(record["standalone_acc_these_weights"])


def test_chance_level_standalone_training_is_warned_about() -> None:
    from search.verify import _at_chance

    recipe = {"epochs": 2}
    rows = [{"standalone_acc": a} for a in (10.9, 10.9, 11.5, 80.0)]
    warning = _at_chance(rows, num_classes=10, recipe=recipe)
    assert warning and "3 of 4 verified archs" in warning and "verify.recipe.epochs=2" in warning
    assert _at_chance(rows[2:] + [{"standalone_acc": 90.0}], 10, recipe) is None


def test_the_pick_tied_with_the_best_shares_its_rank() -> None:
    from search.verify_report import agreement_report

    rows = [
        {"arch": a, "rank": rank, "score": -rank, "params": 1, "standalone_acc": acc, "role": "top"}
        for a, rank, acc in (("a", 2, 98.05), ("b", 1, 98.05), ("c", 3, 99.0), ("d", 4, 90.0))
    ]
    pick = agreement_report(rows, "score", True, 10, 0)["supernet_pick"]
    assert pick["arch"] == "b" and pick["standalone_rank"] == 2  # only "c" beats it, not "a"
    rows[2]["standalone_acc"] = 97.0  # now "a" and "b" tie at the top
    report = agreement_report(rows, "score", True, 10, 0)
    assert report["supernet_pick"]["standalone_rank"] == 1
    assert report["best"]["arch"] == "b"  # a tie goes to the better leaderboard rank


def test_a_lead_within_the_validation_noise_is_called_a_tie() -> None:
    from search.verify_report import _tie_note, noise_points

    assert noise_points(98.0, 359) == pytest.approx(100 * (2 * 0.98 * 0.02 / 359) ** 0.5)
    assert noise_points(100.0, 359) > 0  # a perfect score still has a noise floor

    def report(pick: float, best: float, n: int | None = 359) -> dict:
        return {
            "supernet_pick": {"arch": "a", "standalone_acc": pick, "regret_points": best - pick},
            "best": {"arch": "b" if best != pick else "a"},
            "val_images": n,
        }

    (note,) = _tie_note(report(98.05, 98.33))  # one image of 359 apart
    assert "0.28 points" in note and "359 validation images" in note and "tied" in note
    assert _tie_note(report(90.0, 96.0)) == []  # a real lead
    assert _tie_note(report(98.0, 98.0)) == []  # the pick is the best
    assert _tie_note(report(98.05, 98.33, None)) == []  # an older report: nothing to say


def test_select_trains_each_network_once() -> None:
    """Leaderboard rows that are the same network (same canonical form) are verified once."""
    ranked = [
        {"arch": "a1", "canonical": "A"},
        {"arch": "a2", "canonical": "A"},
        {"arch": "b1", "canonical": "B"},
        {"arch": "a3", "canonical": "A"},
        {"arch": "c1", "canonical": "C"},
        {"arch": "d1", "canonical": "D"},
        {"arch": "d2", "canonical": "D"},
    ]
    assert [r["arch"] for r in distinct(ranked)] == ["a1", "b1", "c1", "d1"]
    picks = select(ranked, top_k=2, control=5, seed=0)
    assert [(r["arch"], role) for r, role in picks[:2]] == [("a1", "top"), ("b1", "top")]
    assert sorted(r["arch"] for r, _ in picks[2:]) == ["c1", "d1"]
    with pytest.raises(SharenasError, match="4 distinct networks .7 archs, 3 of them"):
        select(ranked, top_k=5, control=0, seed=0)


def test_calibrated_ranking_reaches_every_result_file(checkpoint, tmp_path, capsys) -> None:
    extra = ("verify.calibrate_min=3", "verify.calibrate_features=counts")
    out = search.run(compose_tiny("search", overrides(checkpoint, *extra)), out_dir=tmp_path)
    calibration = strict_json(tmp_path / "verify.json")["calibration"]
    assert calibration["fitted"] and calibration["n"] == 4 and calibration["features"] == "counts"
    records = strict_json(tmp_path / "results.json")["records"]
    assert len(records) == 6 and all(0 <= r["calibrated_acc"] <= 100 for r in records)
    accs = [r["standalone_acc"] for r in out["verify"]["archs"]]
    assert all(min(accs) <= r["calibrated_acc"] <= max(accs) for r in records)
    header = (tmp_path / "leaderboard.csv").read_text().splitlines()[0].split(",")
    assert "calibrated_acc" in header
    assert "calibrated ranking: standalone accuracy predicted" in capsys.readouterr().out


def test_verify_off_exports_the_supernet_pick(checkpoint, tmp_path) -> None:
    out = search.run(compose_tiny("search", overrides(checkpoint, "verify=off")), tmp_path)
    assert out["verify"] is None and not (tmp_path / "verify.json").exists()
    assert (tmp_path / "best" / "arch.txt").read_text().strip() == out["leaderboard"][0]["arch"]
    assert not (tmp_path / "best_supernet").exists()


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["verify.top_k=7"], ["verify.top_k=7 is larger than the leaderboard (6 archs"]),
        (["verify.control=-1"], ["verify.control must be an integer >= 0, got -1"]),
        (["verify.mode=retrain"], ["unknown verify.mode 'retrain'; allowed: scratch, finetune"]),
        (["verify.recipe.lr=0"], ["verify.recipe.lr must be a number > 0"]),
        (["verify.seeds=[0,1,0]"], ["verify.seeds=[0, 1, 0] repeats 0: the same seed trains"]),
        (
            ["verify.calibrate_features=onehot"],
            ["unknown verify.calibrate_features 'onehot'; allowed: none, counts, decisions"],
        ),
    ],
)
def test_bad_values_fail_in_one_line_before_training(tmp_path, extra, words) -> None:
    cfg = compose_tiny("search", [*VERIFY, *extra])
    with pytest.raises(SharenasError) as err:
        search.run(cfg, out_dir=tmp_path)
    message = str(err.value)
    assert "\n" not in message and all(w in message for w in words), message
    assert not (tmp_path / "supernet.pt").exists()  # refused before training


def test_unknown_recipe_key_is_one_line() -> None:
    with pytest.raises(SharenasError) as err:
        check_key_overrides("search", ["verify.recipe.epoch=3"])
    message = str(err.value)
    assert "\n" not in message and "'verify.recipe.epoch'" in message
    assert "batch_size, epochs, lr, momentum, weight_decay" in message


@pytest.mark.ray
def test_ray_path_trains_as_ray_tasks(checkpoint, tmp_path) -> None:
    cfg = compose_tiny("search", overrides(checkpoint, "verify.backend=ray"))
    out = search.run(cfg, out_dir=tmp_path)
    report = out["verify"]
    assert report["backend"] == "ray" and report["trained_now"] == 4
    stored = strict_json(tmp_path / "verify" / "standalone.json")["results"]
    assert sorted(stored) == sorted(r["arch"] for r in report["archs"])
    assert all(r["device"] == "cpu" for r in stored.values())
