"""The real scripts, run as a user runs them: one-line errors, and train-then-search end to end."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from search.tables import DEFAULT_COLUMNS
from supernet.cli import check_group_overrides, group_options
from supernet.spaces import build_space
from tests.conftest import REPO

RESULT_FILES = ("results.json", "leaderboard.csv", "pareto.json")
EPOCH_LINE = re.compile(r"^epoch \d+/\d+", re.MULTILINE)


def run(script: str, *overrides: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, script, *overrides],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode != 0, proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{proc.stderr}"
    return lines[0]


def test_unknown_space_is_one_line():
    line = error_line(run("train.py", "space=foo"))
    assert "'foo'" in line and "nb201" in line


def test_unknown_searcher_lists_the_options():
    line = error_line(run("search.py", "searcher=bogus"))
    assert "'bogus'" in line
    options = group_options("searcher")
    assert {"optuna", "random", "nsga2"} <= set(options)
    for option in options:
        assert option in line


@pytest.mark.parametrize(
    "argv",
    [
        ["data=digits", "sharing=gm", "searcher=random"],
        ["-m", "sharing=full,fewshot,gm"],  # Hydra multirun sweep over a group
        ["--multirun", "sampler=uniform,sandwich", "seed=0,1,2"],
    ],
)
def test_group_override_check_accepts_valid_options(argv):
    check_group_overrides(argv)


def test_missing_checkpoint_is_one_line_and_writes_no_results(tmp_path):
    run_dir = tmp_path / "run"
    proc = run("search.py", "supernet.checkpoint=/nonexistent.pt", f"hydra.run.dir={run_dir}")
    line = error_line(proc)
    assert line.startswith("error:") and "/nonexistent.pt" in line
    for name in RESULT_FILES:
        assert not (run_dir / name).exists(), f"{name} written by a failed search"
    assert not (run_dir / "best").exists() and not (run_dir / "supernet.pt").exists()


def test_bad_searcher_setting_fails_before_training(tmp_path):
    """Boundary errors are raised early: a bad searcher setting must not cost a training run."""
    run_dir = tmp_path / "run"
    proc = run(
        "search.py",
        "searcher.n_trials=0",
        "space.macro.channels=4",
        "trainer.epochs=1",
        "trainer.steps_per_epoch=2",
        "trainer.progress=false",
        f"hydra.run.dir={run_dir}",
    )
    line = error_line(proc)
    assert line.startswith("error:") and "n_trials" in line
    assert not (run_dir / "supernet.pt").exists(), "a supernet was trained before the error"


def test_wrong_searcher_type_names_the_key():
    proc = run("search.py", "searcher.n_trials=abc")
    assert proc.returncode != 0
    assert "searcher.n_trials" in proc.stderr and "'abc'" in proc.stderr
    assert "Error in call to target" not in proc.stderr


def test_misspelt_key_names_the_key_and_lists_the_allowed_ones():
    proc = run("train.py", "trainer.epohs=3")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and len(lines) == 1
    assert "trainer.epohs" in lines[0] and "epochs" in lines[0] and "batch_size" in lines[0]


def test_wrong_type_names_the_key_and_value():
    proc = run("search.py", "searcher.n_trials=abc")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and len(lines) == 1
    assert "searcher.n_trials=abc" in lines[0] and "Integer" in lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "t"
    proc = run(
        "train.py",
        "data=digits",
        "trainer.epochs=2",
        "space.macro.channels=4",
        "trainer.progress=false",
        "trainer.num_threads=1",
        f"hydra.run.dir={out}",
    )
    assert proc.returncode == 0, proc.stderr
    assert len(EPOCH_LINE.findall(proc.stdout + proc.stderr)) == 2  # training does print epochs
    assert (out / "supernet.pt").is_file()
    return out


def test_search_trains_nothing_and_evaluates_30_distinct_archs(trained):
    ckpt = trained / "supernet.pt"
    digest = hashlib.sha256(ckpt.read_bytes()).hexdigest()
    out = trained.parent / "s"
    proc = run(
        "search.py",
        f"supernet.checkpoint={ckpt}",
        "searcher.n_trials=30",
        "verify=off",
        f"hydra.run.dir={out}",
    )
    assert proc.returncode == 0, proc.stderr
    log = (out / "search.log").read_text() if (out / "search.log").exists() else ""
    assert not EPOCH_LINE.search(proc.stdout + proc.stderr + log), "the search trained"
    assert "training a supernet first" not in proc.stderr
    assert not (out / "supernet.pt").exists()
    assert hashlib.sha256(ckpt.read_bytes()).hexdigest() == digest

    results = json.loads((out / "results.json").read_text())
    records = results["records"]
    archs = [r["arch"] for r in records]
    assert len(records) == 30 and len(set(archs)) == 30
    space = build_space("nb201")
    for r in records:
        assert str(space.parse(r["arch"])) == r["arch"]
        assert 0.0 <= r["val_acc"] <= 100.0
    assert [r["rank"] for r in records] == list(range(1, 31))
    assert results["meta"]["n_evaluated"] == 30
    assert results["meta"]["checkpoint"] == str(ckpt)

    with open(out / "leaderboard.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 30 and {row["arch"] for row in rows} == set(archs)
    assert (out / "pareto.json").is_file()
    assert list((out / "tb").rglob("events.out.tfevents.*"))
    assert (out / "best" / "arch.txt").read_text().strip() == records[0]["arch"]

    header = [line.split() for line in proc.stdout.splitlines() if line.startswith("rank")]
    # the default columns, then the ranking key (score) and any others, arch last
    assert header and header[0][:6] == list(DEFAULT_COLUMNS[:-1]), proc.stdout
    assert header[0][-1] == "arch" and "score" in header[0], proc.stdout
    assert records[0]["arch"] in proc.stdout
