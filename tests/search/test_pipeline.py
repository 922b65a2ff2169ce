"""search.run end to end on a tiny trained supernet: ranking direction, constraints, early
config checks, interrupts, multi-objective output, checkpoint overrides and the exported model."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from hydra.errors import ConfigCompositionException

import search
from search.evaluate import Evaluator
from supernet.errors import SharenasError
from supernet.spaces import build_space
from supernet.training import train
from tests.conftest import compose_config, compose_tiny


def quick(*overrides: str) -> list[str]:
    """Random search over 6 archs unless ``overrides`` pick another searcher."""
    searcher = [] if any(o.startswith("searcher=") for o in overrides) else ["searcher=random"]
    return [*searcher, "searcher.n_trials=6", *overrides]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pipeline") / "train"
    return Path(train(compose_tiny("train"), out_dir=out)["checkpoint"])


def search_run(checkpoint: Path, out: Path, *overrides: str) -> dict:
    cfg = compose_tiny("search", quick(f"supernet.checkpoint={checkpoint}", *overrides))
    return search.run(cfg, out_dir=out)


def results(out: Path) -> list[dict]:
    return json.loads((out / "results.json").read_text())["records"]


@pytest.mark.parametrize(("key", "pick"), [("val_loss", min), ("params", min), ("val_acc", max)])
def test_ranking_follows_the_key_direction(checkpoint, tmp_path, key, pick) -> None:
    out = search_run(checkpoint, tmp_path, f"results.key={key}")
    records = results(tmp_path)
    best = pick(r[key] for r in records)
    assert records[0][key] == best and out["leaderboard"][0][key] == best
    values = [r[key] for r in records]
    assert values == sorted(values, reverse=pick is max)
    assert (tmp_path / "best" / "arch.txt").read_text().strip() == records[0]["arch"]
    assert out["interrupted"] is False  # a finished search


def test_train_loss_is_scored_on_the_training_split_and_ranks(checkpoint, tmp_path, capsys):
    search_run(checkpoint, tmp_path, "evaluator.train_loss=true", "results.key=train_loss")
    header = capsys.readouterr().out.split("ranked by train_loss")[1].splitlines()[1]
    assert header.split()[-3:] == ["train_loss", "score", "arch"], header  # objective: score
    records = results(tmp_path)
    losses = [r["train_loss"] for r in records]
    assert all(isinstance(v, float) and v > 0 for v in losses)
    assert losses == sorted(losses)
    assert any(r["train_loss"] != r["val_loss"] for r in records)
    plain = tmp_path / "plain"
    search_run(checkpoint, plain)
    assert all(r["train_loss"] is None for r in results(plain))


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        (["results.key=accuracy"], ["results.key", "'accuracy'", "val_acc, val_loss, params"]),
        (["results.key=latency_ms"], ["latency_ms", "evaluator.measure_latency=true"]),
        (["results.key=train_loss"], ["train_loss", "evaluator.train_loss=true"]),
        (["searcher=nsga2", "evaluator.count_flops=false"], ["evaluator.count_flops=true"]),
        (["constraints.flops=1e6", "evaluator.count_flops=false"], ["evaluator.count_flops=true"]),
        (["evaluator.device=gpu"], ["'gpu'", "allowed: cpu, cuda"]),
        (["evaluator.device=cuda"], ["torch.cuda.is_available() is False"]),
        (["evaluator.calib_batches=0"], ["evaluator.calib_batches must be an integer >= 1, got 0"]),
        (["constraints.params=nan"], ["constraints.params", "finite number > 0", "nan"]),
        (["constraints.flops=-5"], ["constraints.flops", "finite number > 0", "-5"]),
        (["constraints.params=inf"], ["constraints.params", "finite number > 0", "inf"]),
        (["results.top_k=0"], ["results.top_k must be an integer >= 1, got 0"]),
        (["results.top_k=-1"], ["results.top_k must be an integer >= 1, got -1"]),
    ],
)
def test_bad_settings_fail_before_training(tmp_path, monkeypatch, overrides, words) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = compose_tiny("search", quick(*overrides))
    with pytest.raises(SharenasError) as err:
        search.run(cfg, out_dir=tmp_path)
    message = str(err.value)
    assert "\n" not in message and all(w in message for w in words), message
    assert not (tmp_path / "supernet.pt").exists(), "trained before failing"


@pytest.mark.parametrize(
    "override",
    ["constraints.params=abc", "searcher.n_trials=abc", "searcher.population=many"],
)
def test_wrong_types_fail_at_compose_naming_the_key(override) -> None:
    key, _, value = override.partition("=")
    group = ["searcher=evolution"] if "population" in override else []
    with pytest.raises(ConfigCompositionException) as err:
        compose_config("search", [*group, override])
    text = f"{err.value} {err.value.__cause__}"
    assert key in text and value in text


def test_numeric_constraint_is_a_float() -> None:
    assert compose_config("search", ["constraints.params=1e5"]).constraints.params == 1e5


def test_no_feasible_arch_warns_and_exports_the_best(checkpoint, tmp_path, capsys) -> None:
    search_run(checkpoint, tmp_path, "constraints.params=1")
    err = capsys.readouterr().err.splitlines()
    warnings = [line for line in err if line.startswith("warning: no evaluated arch met")]
    assert len(warnings) == 1 and "params <= 1" in warnings[0]
    assert "smallest params seen" in warnings[0]
    records = results(tmp_path)
    assert not any(r["feasible"] for r in records)
    assert (tmp_path / "best" / "arch.txt").read_text().strip() == records[0]["arch"]


def test_infeasible_archs_are_marked_and_never_best(checkpoint, tmp_path, capsys) -> None:
    free = results_of(checkpoint, tmp_path / "free")
    params = sorted(r["params"] for r in free)
    limit = max(p for p in params if p < params[-1])  # the largest archs are infeasible
    by_acc = sorted(free, key=lambda r: -r["val_acc"])
    out = tmp_path / "limited"
    search_run(checkpoint, out, f"constraints.params={limit}")
    stdout = capsys.readouterr().out
    n_bad = sum(p > limit for p in params)
    assert f"{n_bad} of {len(free)} archs infeasible" in stdout
    assert any(line.split()[-2:] == ["feasible", "arch"] for line in stdout.splitlines())
    records = results(out)
    flags = [r["feasible"] for r in records]
    assert flags == sorted(flags, reverse=True)  # feasible first
    best = next(r for r in by_acc if r["params"] <= limit)
    assert (out / "best" / "arch.txt").read_text().strip() == best["arch"]


def results_of(checkpoint: Path, out: Path) -> list[dict]:
    search_run(checkpoint, out)
    return results(out)


def test_interrupt_keeps_what_was_evaluated(checkpoint, tmp_path, monkeypatch, capsys) -> None:
    calls = []
    real = Evaluator.__call__

    def flaky(self, arch):
        calls.append(arch)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, arch)

    monkeypatch.setattr(Evaluator, "__call__", flaky)
    out = search_run(checkpoint, tmp_path)
    assert "interrupted: keeping the 2 archs evaluated so far" in capsys.readouterr().err
    assert len(out["records"]) == 2 and len(results(tmp_path)) == 2 and out["interrupted"]
    assert (tmp_path / "leaderboard.csv").is_file() and (tmp_path / "best" / "arch.txt").is_file()
    # search.py's body exits with the shell's code for SIGINT after writing the results
    from search.cli import search_main

    calls.clear()
    again = tmp_path / "cli"
    again.mkdir()
    monkeypatch.chdir(again)
    cfg = compose_tiny("search", quick(f"supernet.checkpoint={checkpoint}"))
    with pytest.raises(SystemExit) as stop:
        search_main(cfg)
    assert stop.value.code == 130 and len(results(again)) == 2


def test_multi_objective_prints_the_pareto_front(checkpoint, tmp_path, capsys) -> None:
    out = search_run(checkpoint, tmp_path, "searcher=nsga2", "evaluator.count_flops=true")
    captured = capsys.readouterr()
    assert "Pareto front" in captured.out and "(score max, flops min)" in captured.out
    assert "effectively random search" in captured.err  # 6 trials < population_size 20
    meta = json.loads((tmp_path / "results.json").read_text())["meta"]
    assert meta["searcher"] == "OptunaSearcher(nsga2)"
    front = {r["arch"] for r in out["pareto"]}
    assert front and all(r["arch"] in captured.out for r in out["pareto"])
    assert front == {r["arch"] for r in json.loads((tmp_path / "pareto.json").read_text())}


def test_tables_show_every_objective_and_how_many_rows(checkpoint, tmp_path, capsys) -> None:
    objectives = ("searcher.objectives=[val_acc,latency_ms]", "evaluator.measure_latency=true")
    search_run(checkpoint, tmp_path, "searcher=nsga2", *objectives, "results.top_k=10")
    out = capsys.readouterr().out
    assert "all 6 evaluated archs" in out and "top 10 of 6" not in out
    headers = [line.split() for line in out.splitlines() if line.startswith("rank")]
    assert len(headers) == 2  # the leaderboard and the Pareto front
    assert all(h[-2:] == ["latency_ms", "arch"] for h in headers), headers
    search_run(checkpoint, tmp_path / "k", "results.top_k=4")
    assert "top 4 of 6 evaluated archs" in capsys.readouterr().out


def test_checkpoint_overrides_are_named(checkpoint, tmp_path, capsys) -> None:
    search_run(checkpoint, tmp_path / "a")
    assert "warning" not in capsys.readouterr().err
    search_run(checkpoint, tmp_path / "b", "space.macro.channels=8", "sharing=fewshot")
    lines = [line for line in capsys.readouterr().err.splitlines() if "checkpoint" in line]
    assert len(lines) == 2 and all(line.startswith("warning: ") for line in lines)
    assert "space.macro.channels=8 (checkpoint: 4)" in lines[0] and "sharing." in lines[1]
    assert all("the checkpoint's values are used" in line for line in lines)
    assert json.loads((tmp_path / "b" / "results.json").read_text())["meta"]["sharing"] == "full"


def test_exported_model_takes_any_batch_size(checkpoint, tmp_path) -> None:
    search_run(checkpoint, tmp_path)
    record = json.loads((tmp_path / "best" / "record.json").read_text())
    shape = tuple(record["input_shape"])
    assert len(shape) == 3
    assert set(record) >= {"normalize", "val_acc", "arch"}
    if record["normalize"] is not None:
        assert set(record["normalize"]) == {"mean", "std"}
    assert record["classes"] == [str(d) for d in range(10)]  # digits: logit i is digit i
    module = torch.export.load(tmp_path / "best" / "model.pt2").module()
    x = torch.randn(4, *shape)
    with torch.no_grad():
        four, one = module(x), module(x[:1])
    assert four.shape[0] == 4 and one.shape[0] == 1
    torch.testing.assert_close(one, four[:1], rtol=1e-4, atol=1e-5)


def test_onnx_export_matches_the_torch_export_program(checkpoint, tmp_path) -> None:
    import onnxruntime as ort  # a dev dependency (setup.sh installs it), not a run-time one

    search_run(checkpoint, tmp_path, "results.onnx=true")
    shape = tuple(json.loads((tmp_path / "best" / "record.json").read_text())["input_shape"])
    module = torch.export.load(tmp_path / "best" / "model.pt2").module()
    session = ort.InferenceSession(str(tmp_path / "best" / "model.onnx"))
    assert [i.name for i in session.get_inputs()] == ["x"]
    assert [o.name for o in session.get_outputs()] == ["logits"]
    assert session.get_inputs()[0].shape == ["batch", *shape]
    assert session.get_outputs()[0].shape[0] == "batch"
    meta = session.get_modelmeta().custom_metadata_map
    record = json.loads((tmp_path / "best" / "record.json").read_text())
    assert meta["arch"] == record["arch"] and json.loads(meta["input_shape"]) == list(shape)
    norm = record["normalize"]
    assert norm is not None  # digits: mean and std of the training pixels
    assert float(meta["normalize_mean"]) == norm["mean"]
    assert float(meta["normalize_std"]) == norm["std"]
    assert json.loads(meta["classes"]) == record["classes"]
    for batch in (1, 5):  # the batch dimension stays dynamic
        x = torch.randn(batch, *shape)
        (onnx_out,) = session.run(None, {"x": x.numpy()})
        with torch.no_grad():
            torch.testing.assert_close(torch.from_numpy(onnx_out), module(x), rtol=1e-4, atol=1e-5)


def test_top_k_best_archs_are_exported_in_rank_order(checkpoint, tmp_path) -> None:
    out = search_run(checkpoint, tmp_path, "results.top_k=3")
    ranked = out["leaderboard"]
    assert (tmp_path / "best" / "arch.txt").read_text().strip() == ranked[0]["arch"]
    folders = sorted(p.name for p in (tmp_path / "top").iterdir())
    assert folders == ["rank_2", "rank_3"]
    for n in (2, 3):
        folder = tmp_path / "top" / f"rank_{n}"
        assert (folder / "arch.txt").read_text().strip() == ranked[n - 1]["arch"]
        assert json.loads((folder / "record.json").read_text())["rank"] == n
        assert (folder / "model.pt2").is_file()


def test_a_rerun_in_the_same_directory_moves_the_earlier_outputs_aside(
    checkpoint, tmp_path, capsys
) -> None:
    first = search_run(checkpoint, tmp_path, "results.top_k=3")
    earlier_events = sorted(p.name for p in (tmp_path / "tb").glob("events.*"))
    capsys.readouterr()
    second = search_run(checkpoint, tmp_path, "results.top_k=1", "seed=1")
    err = capsys.readouterr().err
    assert "held the outputs of an earlier search" in err and "earlier/1" in err
    assert not (tmp_path / "top").exists()  # top_k=1 exports best/ only: no stale rank_2, rank_3
    assert len(list((tmp_path / "tb").glob("events.*"))) == 1  # this run's own events only
    moved = tmp_path / "earlier" / "1"
    assert sorted(p.name for p in (moved / "top").iterdir()) == ["rank_2", "rank_3"]
    assert sorted(p.name for p in (moved / "tb").glob("events.*")) == earlier_events
    assert (moved / "best" / "arch.txt").read_text().strip() == first["leaderboard"][0]["arch"]
    assert (tmp_path / "best" / "arch.txt").read_text().strip() == second["leaderboard"][0]["arch"]
    assert len(results(moved)) == 6 and len(results(tmp_path)) == 6


def test_a_checkpoint_is_searched_in_the_space_it_was_trained_on(tmp_path, capsys) -> None:
    """No space= typed: an mbv3 checkpoint is searched as mbv3 (the config says nb201)."""
    ckpt = train(compose_tiny("train", ["space=mbv3"]), out_dir=tmp_path / "t")["checkpoint"]
    cfg = compose_tiny("search", quick(f"supernet.checkpoint={ckpt}", "searcher.n_trials=3"))
    assert cfg.space.name == "nb201"
    out = search.run(cfg, out_dir=tmp_path / "s")
    assert "space=mbv3: the space the checkpoint was trained on" in capsys.readouterr().err
    assert len(out["records"]) == 3
    space = build_space("mbv3")
    assert all(space.parse(r["arch"]) for r in out["records"])
    typed = ["space=nb201"]  # typed beside the checkpoint: its own space is not taken
    cfg = compose_tiny("search", quick(f"supernet.checkpoint={ckpt}", *typed))
    with pytest.raises(SharenasError, match="was trained on space 'mbv3'.*pass space=mbv3"):
        search.run(cfg, out_dir=tmp_path / "typed", overrides=typed)


def test_onnx_without_its_packages_fails_before_searching(tmp_path, monkeypatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a)
    )
    cfg = compose_tiny("search", quick("results.onnx=true"))
    with pytest.raises(SharenasError, match=r"results.onnx=true needs the packages onnx: pip"):
        search.run(cfg, out_dir=tmp_path)
    assert not (tmp_path / "supernet.pt").exists(), "trained before failing"


def optuna_run(checkpoint: Path, out: Path, storage: Path, n_trials: int, *extra: str) -> dict:
    """A TPE search of ``n_trials`` for the whole study kept in the journal ``storage``."""
    overrides = [
        f"supernet.checkpoint={checkpoint}",
        "searcher=optuna",
        f"searcher.n_trials={n_trials}",
        f"searcher.storage={storage}",
        "results.export_best=false",
        *extra,
    ]
    return search.run(compose_tiny("search", overrides), out_dir=out)


def test_resumed_study_ranks_every_trial_of_the_study(checkpoint, tmp_path, capsys) -> None:
    storage = tmp_path / "study.journal"
    optuna_run(checkpoint, tmp_path / "a", storage, 3)
    first = {r["arch"]: r for r in results(tmp_path / "a")}
    capsys.readouterr()
    out = optuna_run(checkpoint, tmp_path / "b", storage, 5)
    stdout = capsys.readouterr().out
    second = {r["arch"]: r for r in results(tmp_path / "b")}
    assert len(second) == 5 and set(first) <= set(second)
    for arch, record in first.items():  # the earlier trials keep their scores and numbers
        assert second[arch]["val_acc"] == record["val_acc"]
        assert second[arch]["trial"] == record["trial"]
    assert len(out["leaderboard"]) == 5
    assert "5 evaluated archs, 3 of them from earlier runs of the study" in stdout
    meta = json.loads((tmp_path / "b" / "results.json").read_text())["meta"]
    assert meta["n_from_earlier_runs"] == 3 and meta["n_evaluated"] == 5
    lines = (tmp_path / "b" / "leaderboard.csv").read_text().splitlines()
    assert len(lines) == 1 + 5


def test_spent_study_re_ranks_its_stored_trials(checkpoint, tmp_path, capsys) -> None:
    storage = tmp_path / "study.journal"
    optuna_run(checkpoint, tmp_path / "a", storage, 3)
    capsys.readouterr()
    optuna_run(checkpoint, tmp_path / "again", storage, 3)  # once failed: "evaluated no arch"
    captured = capsys.readouterr()
    spent = [line for line in captured.err.splitlines() if "already spent" in line]
    assert len(spent) == 1 and "searcher.n_trials=3" in spent[0], captured.err
    assert results(tmp_path / "again") == results(tmp_path / "a")


def test_study_refuses_another_supernet(checkpoint, tmp_path) -> None:
    storage = tmp_path / "study.journal"
    optuna_run(checkpoint, tmp_path / "a", storage, 2)
    other = Path(train(compose_tiny("train", ["seed=1"]), out_dir=tmp_path / "other")["checkpoint"])
    with pytest.raises(SharenasError) as err:
        optuna_run(other, tmp_path / "b", storage, 4)
    message = str(err.value)
    assert "\n" not in message, message
    assert str(checkpoint.resolve()) in message and str(other.resolve()) in message
    assert "searcher.study_name" in message and "searcher.storage" in message
    assert not (tmp_path / "b" / "results.json").exists()
    with pytest.raises(SharenasError, match="supernet.checkpoint=null trains a new supernet"):
        cfg = compose_tiny("search", ["searcher=optuna", f"searcher.storage={storage}"])
        search.run(cfg, out_dir=tmp_path / "c")
    assert not (tmp_path / "c" / "supernet.pt").exists(), "trained before failing"


def test_study_refuses_other_evaluator_settings(checkpoint, tmp_path) -> None:
    storage = tmp_path / "study.journal"
    optuna_run(checkpoint, tmp_path / "a", storage, 2)
    changed = r"other settings \(evaluator.train_loss: False -> True\)"
    with pytest.raises(SharenasError, match=changed):
        optuna_run(
            checkpoint,
            tmp_path / "b",
            storage,
            4,
            "evaluator.train_loss=true",
            "results.key=train_loss",
        )
    optuna_run(checkpoint, tmp_path / "c", storage, 3)  # the same settings resume
    assert len(results(tmp_path / "c")) == 3


def test_study_of_another_space_refuses_this_supernet(checkpoint, tmp_path) -> None:
    storage = tmp_path / "study.journal"
    optuna_run(checkpoint, tmp_path / "a", storage, 2)  # nb201 trials
    train(compose_tiny("train", ["space=mbv3"]), out_dir=tmp_path / "mbv3")
    with pytest.raises(SharenasError, match="was scored on supernet"):
        optuna_run(tmp_path / "mbv3" / "supernet.pt", tmp_path / "b", storage, 3, "space=mbv3")
