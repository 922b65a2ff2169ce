"""Tests for search.result_files: leaderboard.csv, results.json and pareto.json."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from search.ranking import leaderboard
from search.result_files import load_results, write_results
from tests.search.records import A_BEST, A_CHEAP, A_TIE1, A_TINY


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
    assert list(rows[0])[:3] == ["rank", "arch", "val_acc"] and list(rows[0])[-1] == "my_metric"
    assert rows[0]["my_metric"] == "0.5" and rows[1]["my_metric"] == ""

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


def test_move_earlier_outputs_keeps_caches_and_numbers_each_rerun(tmp_path, capsys):
    from search.result_files import move_earlier_outputs

    assert move_earlier_outputs(tmp_path) is None  # nothing there: nothing said
    assert capsys.readouterr().err == ""
    for name in ("results.json", "verify.json"):
        (tmp_path / name).write_text("{}")
    for folder in ("best", "top/rank_2", "tb", "verify"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "verify" / "standalone.json").write_text("{}")
    (tmp_path / "supernet.pt").write_bytes(b"x")
    dest = move_earlier_outputs(tmp_path, tensorboard=False)
    assert dest == tmp_path / "earlier" / "1"
    assert sorted(p.name for p in dest.iterdir()) == ["best", "results.json", "top", "verify.json"]
    assert (tmp_path / "tb").is_dir() and (tmp_path / "verify" / "standalone.json").is_file()
    assert (tmp_path / "supernet.pt").is_file()
    assert "moved results.json, verify.json, best/, top/" in capsys.readouterr().err
    (tmp_path / "best").mkdir()
    assert move_earlier_outputs(tmp_path) == tmp_path / "earlier" / "2"
    assert sorted(p.name for p in (tmp_path / "earlier" / "2").iterdir()) == ["best", "tb"]
