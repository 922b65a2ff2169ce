"""Same seed, same results: the whole pipeline (train a tiny supernet, search, rank) twice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import search
from tests.conftest import compose_tiny

FILES = ("results.json", "leaderboard.csv", "pareto.json")


def run_in(base: Path, monkeypatch, searcher: str, seed: int) -> dict[str, bytes]:
    """``search.run`` into ``<base>/run`` given as the relative ``run`` (so the checkpoint path
    recorded in the results' meta is the same for every run)."""
    base.mkdir(parents=True)
    monkeypatch.chdir(base)
    cfg = compose_tiny(
        "search",
        [
            f"searcher={searcher}",
            "searcher.n_trials=10",
            f"seed={seed}",
            "evaluator.count_flops=true",
        ],
    )
    out = search.run(cfg, out_dir="run")
    assert len(out["records"]) == 10
    assert (base / "run" / "supernet.pt").is_file()  # it trained its own supernet
    return {name: (base / "run" / name).read_bytes() for name in FILES}


def records(files: dict[str, bytes]) -> list[dict]:
    return json.loads(files["results.json"])["records"]


@pytest.mark.parametrize("searcher", ["random", "optuna"])
def test_same_seed_same_bytes_other_seed_other_records(searcher, tmp_path, monkeypatch):
    a = run_in(tmp_path / "a", monkeypatch, searcher, seed=0)
    b = run_in(tmp_path / "b", monkeypatch, searcher, seed=0)
    for name in FILES:
        assert a[name] == b[name], f"{name} differs between two runs with the same seed"
    assert len({r["arch"] for r in records(a)}) == 10
    c = run_in(tmp_path / "c", monkeypatch, searcher, seed=1)
    assert records(c) != records(a)
    assert [r["arch"] for r in records(c)] != [r["arch"] for r in records(a)]
