"""Tests for search.ranking: leaderboard, Pareto front, tables, result files and TensorBoard."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from search import ranking
from search.ranking import (
    format_table,
    human,
    leaderboard,
    load_results,
    log_to_tensorboard,
    pareto_front,
    write_results,
)


def nb201(*ops: str) -> str:
    """An NB-201 cell string from its six edge ops, in canonical order."""
    a, b, c, d, e, f = ops
    return f"|{a}~0|+|{b}~0|{c}~1|+|{d}~0|{e}~1|{f}~2|"


C3, C1, SK, AP, NO = "nor_conv_3x3", "nor_conv_1x1", "skip_connect", "avg_pool_3x3", "none"
A_BEST = nb201(C3, C3, C3, SK, C3, C3)
A_TIE1 = nb201(C3, C1, C3, SK, C1, C3)  # ties with A_TIE2 on val_acc; sorts first ("1" < "3")
A_TIE2 = nb201(C3, C3, C1, SK, C3, C1)
A_CHEAP = nb201(SK, C1, SK, SK, AP, C1)
A_WORSE = nb201(C1, AP, SK, SK, NO, C1)  # dominated by A_CHEAP: less accurate and costlier
A_TINY = nb201(SK, NO, SK, SK, NO, SK)


def rec(arch: str, acc: float, flops: int, trial: int, **extra: object) -> dict:
    """A record as the evaluator produces it."""
    base = {
        "arch": arch,
        "val_acc": acc,
        "val_loss": round(2.0 - acc / 60, 4),
        "params": flops // 100,
        "flops": flops,
        "latency_ms": None,
        "trial": trial,
        "supernet": trial % 2,
    }
    return {**base, **extra}


@pytest.fixture
def records() -> list[dict]:
    return [
        rec(A_TIE2, 91.5, 120_000_000, 0, latency_ms=3.25),
        rec(A_WORSE, 84.0, 60_000_000, 1),
        rec(A_BEST, 93.75, 180_000_000, 2, zero_cost=0.5),
        rec(A_CHEAP, 88.0, 40_000_000, 3),
        rec(A_TIE1, 91.5, 110_000_000, 4),
        rec(A_TINY, 70.25, 10_000_000, 5),
    ]


def test_leaderboard_order_ties_and_ranks(records: list[dict]) -> None:
    board = leaderboard(records)
    assert [r["arch"] for r in board] == [A_BEST, A_TIE1, A_TIE2, A_CHEAP, A_WORSE, A_TINY]
    assert [r["rank"] for r in board] == [1, 2, 3, 4, 5, 6]
    assert all("rank" not in r for r in records)  # inputs untouched
    assert leaderboard(list(reversed(records))) == board  # independent of input order
    by_loss = leaderboard(records, key="val_loss", descending=False)
    assert by_loss[0]["arch"] == A_BEST and by_loss[-1]["arch"] == A_TINY


def test_leaderboard_names_missing_key(records: list[dict]) -> None:
    with pytest.raises(ValueError, match="latency_ms"):
        leaderboard(records, key="latency_ms")


def test_pareto_front_drops_dominated_and_duplicates(records: list[dict]) -> None:
    dup = dict(records[2])  # A_BEST scored again with the same numbers
    same_acc_costlier = rec(nb201(C3, C3, C3, C3, C3, C3), 93.75, 200_000_000, 6)
    front = pareto_front([*records, dup, same_acc_costlier])
    assert [r["arch"] for r in front] == [A_BEST, A_TIE1, A_CHEAP, A_TINY]
    assert A_WORSE not in {r["arch"] for r in front}
    # params as the cost, and a third objective (lower loss) that adds nothing new here
    three = pareto_front(records, (("val_acc", "max"), ("params", "min"), ("val_loss", "min")))
    assert [r["arch"] for r in three] == [A_BEST, A_TIE1, A_CHEAP, A_TINY]
    assert [r["arch"] for r in pareto_front(records, (("val_acc", "max"),))] == [A_BEST]


def test_pareto_front_rejects_bad_direction(records: list[dict]) -> None:
    with pytest.raises(ValueError, match="'max' or 'min'"):
        pareto_front(records, (("val_acc", "up"),))


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0"), (950, "950"), (1234, "1.23K"), (1_230_000, "1.23M"), (45_600_000, "45.6M")]
    + [(999_999, "1.00M"), (123_456_789, "123M"), (2.5e9, "2.50G")],
)
def test_human(n: float, text: str) -> None:
    assert human(n) == text


def test_format_table_header_separator_and_k_rows(records: list[dict]) -> None:
    lines = format_table(leaderboard(records), k=3).splitlines()
    assert lines[0].split() == ["rank", "val_acc", "val_loss", "params", "flops", "trial", "arch"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert len(lines) == 2 + 3
    assert lines[2].split()[:5] == ["1", "93.75", "0.44", "1.80M", "180M"]
    assert lines[2].endswith(A_BEST)
    assert len(format_table(records, k=10).splitlines()) == 2 + len(records)  # ranks unranked rows
    header_cols = [lines[0].index("arch")] * 3
    assert [line.index("|") for line in lines[2:]] == header_cols  # arch column aligned


def test_write_results_files(tmp_path: Path, records: list[dict]) -> None:
    meta = {"seed": 0, "space": "nb201", "checkpoint": tmp_path / "supernet.pt"}
    paths = write_results(tmp_path / "run", records, meta)
    assert set(paths) == {"leaderboard", "results", "pareto"}
    names = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert names == ["leaderboard.csv", "pareto.json", "results.json"]  # no temp files left

    with paths["leaderboard"].open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["arch"] for r in rows] == [r["arch"] for r in leaderboard(records)]
    assert [r["rank"] for r in rows] == [str(i) for i in range(1, len(records) + 1)]
    assert list(rows[0])[:3] == ["rank", "arch", "val_acc"] and list(rows[0])[-1] == "zero_cost"
    assert rows[0]["zero_cost"] == "0.5" and rows[1]["zero_cost"] == ""

    assert load_results(paths["results"]) == leaderboard(records)
    assert load_results(tmp_path / "run") == leaderboard(records)
    assert json.loads(paths["results"].read_text())["meta"]["checkpoint"].endswith("supernet.pt")
    front = json.loads(paths["pareto"].read_text())
    assert [r["arch"] for r in front] == [A_BEST, A_TIE1, A_CHEAP, A_TINY]


def test_results_json_is_byte_identical(tmp_path: Path, records: list[dict]) -> None:
    meta = {"seed": 3, "searcher": "random"}
    first = write_results(tmp_path / "a", records, meta)["results"].read_bytes()
    again = write_results(tmp_path / "a", records, dict(reversed(meta.items())))
    shuffled = write_results(tmp_path / "b", list(reversed(records)), meta)
    assert again["results"].read_bytes() == first == shuffled["results"].read_bytes()


def test_params_is_the_cost_when_flops_are_missing(tmp_path: Path, records: list[dict]) -> None:
    no_flops = [{k: v for k, v in r.items() if k != "flops"} for r in records]
    paths = write_results(tmp_path, no_flops, {})
    front = json.loads(paths["pareto"].read_text())
    assert [r["arch"] for r in front] == [A_BEST, A_TIE1, A_CHEAP, A_TINY]


def test_load_results_rejects_other_json(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text('{"meta": {}}')
    with pytest.raises(ValueError, match="records"):
        load_results(tmp_path)


def _log(tmp_path: Path, records: list[dict]) -> Path:
    from torch.utils.tensorboard import SummaryWriter

    logdir = tmp_path / "tb"
    with SummaryWriter(log_dir=str(logdir)) as writer:
        log_to_tensorboard(writer, records, top_k=3)
    return logdir


def test_log_to_tensorboard_reads_back(tmp_path: Path, records: list[dict]) -> None:
    from tensorboard.backend.event_processing import event_accumulator, event_multiplexer
    from tensorboard.plugins.hparams import plugin_data_pb2

    logdir = _log(tmp_path, records)
    acc = event_accumulator.EventAccumulator(str(logdir), size_guidance={"tensors": 0})
    acc.Reload()
    tags = acc.Tags()

    text = acc.Tensors("leaderboard/text_summary")[0].tensor_proto.string_val[0].decode()
    assert A_BEST in text and A_TINY not in text  # top 3 only
    assert text.count("\n") == 1 + 3

    best = [e.value for e in acc.Scalars("search/best_val_acc")]
    assert len(best) == len(records)
    assert best == sorted(best) and best[-1] == pytest.approx(93.75)
    assert [e.step for e in acc.Scalars("search/best_val_acc")] == sorted(
        r["trial"] for r in records
    )

    assert "pareto" in tags["images"]
    image = acc.Images("pareto")[0]
    assert image.width > 100 and image.height > 100

    # Every record is a point of the leaderboard curves (step = rank) in the root run ...
    board = leaderboard(records)
    curve = acc.Scalars("leaderboard/val_acc")
    assert [e.step for e in curve] == [r["rank"] for r in board]
    assert [e.value for e in curve] == pytest.approx([r["val_acc"] for r in board])
    assert len(acc.Scalars("leaderboard/flops")) == len(records)
    # ... but only the top_k (3) archs get an hparams session folder, not one per record.
    runs = sorted(p.name for p in logdir.iterdir() if p.is_dir())
    assert runs == sorted(f"trial_{r['trial']:05d}" for r in board[:3])
    mux = event_multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(str(logdir))
    mux.Reload()
    sessions = mux.PluginRunToTagToContent("hparams")
    assert sorted(sessions) == runs  # one hparams session per top arch, none in the root run
    by_trial = {f"trial_{r['trial']:05d}": r for r in records}
    for run, contents in sessions.items():
        start = plugin_data_pb2.HParamsPluginData.FromString(
            contents["_hparams_/session_start_info"]
        ).session_start_info
        assert start.hparams["arch"].string_value == by_trial[run]["arch"]
        assert start.hparams["supernet"].number_value == by_trial[run]["supernet"]
        metrics = mux.GetAccumulator(run).Tags()["scalars"]
        assert {"hparam/val_acc", "hparam/val_loss", "hparam/params", "hparam/flops"} <= set(
            metrics
        )


def test_log_to_tensorboard_many_records_few_folders(tmp_path: Path) -> None:
    many = [rec(A_BEST, 50.0 + i / 10, 1000 + i, i) for i in range(40)]
    many = [{**r, "arch": f"{r['arch']}#{i}"} for i, r in enumerate(many)]
    logdir = _log(tmp_path, many)
    assert len([p for p in logdir.iterdir() if p.is_dir()]) == 3  # top_k=3, not 40


def test_log_to_tensorboard_same_trial_twice(tmp_path: Path) -> None:
    twice = [rec(A_BEST, 93.0, 1, 7, supernet=0), rec(A_BEST, 92.0, 1, 7, supernet=1)]
    logdir = _log(tmp_path, twice)
    assert sorted(p.name for p in logdir.iterdir() if p.is_dir()) == [
        "trial_00007",
        "trial_00007_2",
    ]


def test_log_to_tensorboard_without_matplotlib(
    tmp_path: Path, records: list[dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tensorboard.backend.event_processing import event_accumulator

    def no_matplotlib(*args: object, **kwargs: object) -> None:
        raise ImportError("No module named 'matplotlib'")

    monkeypatch.setattr(ranking, "_pareto_figure", no_matplotlib)
    acc = event_accumulator.EventAccumulator(str(_log(tmp_path, records)))
    acc.Reload()
    assert "pareto" not in acc.Tags()["images"]
    note = acc.Tensors("pareto/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "matplotlib" in note


def test_leaderboard_breaks_accuracy_ties_by_lower_loss() -> None:
    a = "|skip_connect~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|"
    z = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|"
    rows = [
        {"arch": a, "val_acc": 90.0, "val_loss": 0.5},
        {"arch": z, "val_acc": 90.0, "val_loss": 0.3},
    ]
    assert [r["arch"] for r in leaderboard(rows)] == [z, a]


def test_leaderboard_ties_by_rounded_loss_then_params_then_arch() -> None:
    big = nb201(C3, C3, C3, C3, C3, C3)
    small = nb201(SK, SK, SK, SK, SK, SK)  # sorts after `big` as a string, but is smaller
    rows = [
        {"arch": big, "val_acc": 90.0, "val_loss": 0.300001, "params": 2000},
        {"arch": small, "val_acc": 90.0, "val_loss": 0.300004, "params": 100},  # same at 4 dp
        {"arch": A_TINY, "val_acc": 90.0, "val_loss": 0.2999, "params": 5000},  # lower loss
    ]
    assert [r["arch"] for r in leaderboard(rows)] == [A_TINY, small, big]
    same = [{**r, "val_loss": 0.3, "params": 100} for r in rows]
    assert [r["arch"] for r in leaderboard(same)] == sorted(r["arch"] for r in rows)
    # Ranking by params: equal params fall back to the loss.
    by_params = leaderboard(rows[:2] + [{**rows[2], "params": 100}], "params", descending=False)
    assert [r["arch"] for r in by_params] == [A_TINY, small, big]


def test_infeasible_records_rank_last(records: list[dict]) -> None:
    marked = [{**r, "feasible": r["arch"] != A_BEST} for r in records]
    board = leaderboard(marked)
    assert board[-1]["arch"] == A_BEST and board[0]["arch"] == A_TIE1
    assert [r["arch"] for r in leaderboard(records)][1:] == [r["arch"] for r in board][:-1]


def test_lower_is_better_keys_in_files(tmp_path: Path, records: list[dict]) -> None:
    paths = write_results(tmp_path, records, {}, key="val_loss", descending=False)
    ranked = load_results(paths["results"])
    assert ranked[0]["arch"] == A_BEST  # lowest loss
    losses = [r["val_loss"] for r in ranked]
    assert losses == sorted(losses)
    front = json.loads(paths["pareto"].read_text())  # (val_loss min, flops min)
    assert [r["arch"] for r in front] == [A_BEST, A_TIE1, A_CHEAP, A_TINY]
    by_params = write_results(tmp_path / "p", records, {}, key="params", descending=False)
    assert load_results(by_params["results"])[0]["arch"] == A_TINY


def test_pareto_file_holds_feasible_records_only(tmp_path: Path, records: list[dict]) -> None:
    marked = [{**r, "feasible": r["arch"] != A_BEST} for r in records]
    front = json.loads(write_results(tmp_path, marked, {})["pareto"].read_text())
    assert [r["arch"] for r in front] == [A_TIE1, A_CHEAP, A_TINY]
    nothing = [{**r, "feasible": False} for r in records]
    front = json.loads(write_results(tmp_path, nothing, {})["pareto"].read_text())
    assert [r["arch"] for r in front] == [A_BEST, A_TIE1, A_CHEAP, A_TINY]


def test_format_table_shows_feasibility(records: list[dict]) -> None:
    marked = [{**r, "feasible": r["arch"] != A_BEST} for r in records]
    columns = [*ranking.DEFAULT_COLUMNS[:-1], "feasible", "arch"]
    lines = format_table(leaderboard(marked), k=10, columns=columns).splitlines()
    assert lines[0].split()[-2:] == ["feasible", "arch"]
    assert lines[-1].split()[-2:] == ["no", A_BEST] and lines[2].split()[-2:] == ["yes", A_TIE1]


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640)])
def test_result_files_get_the_mode_of_normal_files(
    tmp_path: Path, records: list[dict], umask: int, mode: int
) -> None:
    old = os.umask(umask)
    try:
        paths = write_results(tmp_path, records, meta={})
    finally:
        os.umask(old)
    assert {name: p.stat().st_mode & 0o777 for name, p in paths.items()} == dict.fromkeys(
        ("leaderboard", "pareto", "results"), mode
    )
