"""Faults of a study's storage: damaged files, killed processes, processes sharing one study."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from search.searchers import RandomSearcher
from search.study import Study
from supernet.errors import SharenasError
from supernet.spaces import build_space
from tests.reliability import postgres
from tests.search.test_searchers import drive

ROOT = Path(__file__).resolve().parents[2]


def study(storage: str, n_trials: int = 8) -> Study:
    """The study the workers share (``tests/reliability/study_worker.py``)."""
    space = build_space("nb201")
    return Study(RandomSearcher(space, n_trials=n_trials, storage=storage, study_name="shared"))


def worker(storage: str, log: Path, n_trials: int, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "tests.reliability.study_worker", storage, str(log), str(n_trials)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([*cmd, *extra], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)


@pytest.mark.fault("study journal cut short mid-record (crash or full disk)", outcome="recovered")
@pytest.mark.parametrize("cut", [1, 17, -1])
def test_truncated_journal_is_repaired(
    cut: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "study.journal"
    first = worker(str(path), tmp_path / "log", 4)  # a process that has exited since
    assert first.wait(timeout=300) == 0
    whole = path.read_bytes()
    lines = whole.splitlines(keepends=True)
    damaged = b"".join(lines[:-1]) + lines[-1][: cut if cut > 0 else len(lines[-1]) - 1]
    path.write_bytes(damaged)
    capsys.readouterr()
    resumed = study(str(path))
    err = capsys.readouterr().err
    if cut == -1:  # only the newline was lost: the record is whole, nothing dropped
        assert path.read_bytes().startswith(whole) and "partial" not in err
        assert len(resumed.records()) == 4
    else:
        assert "dropped 1 partial record" in err and f"kept {len(lines) - 1} complete" in err
        backups = list(tmp_path.glob("study.journal.damaged-*"))
        assert len(backups) == 1 and backups[0].read_bytes() == damaged
        assert path.read_bytes().startswith(b"".join(lines[:-1]))  # then what resuming wrote
        # the last line told the 4th trial: it is left running by a process that is gone
        assert len(resumed.records()) == 3 and resumed.n_stale == 1
    drive(resumed)
    assert resumed.n_used() == 8
    assert len(study(str(path)).records()) == 8  # the repaired journal reads back


@pytest.mark.fault("study storage that is not a study (garbage bytes)", outcome="refused clearly")
@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("study.journal", b"\x00\xffnot json\n", "is not an Optuna journal (line 1"),
        ("study.journal", b'{"op_code": 0}\nrandom words', "its last line is not a journal"),
        ("study.db", b"SQLite format 2 but not really", "is not an SQLite database"),
        ("study.db", b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "is not an SQLite database"),
    ],
)
def test_garbage_storage_is_refused_in_one_line(
    name: str, content: bytes, words: str, tmp_path: Path
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    url = f"sqlite:///{path}" if name.endswith(".db") else str(path)
    with pytest.raises(SharenasError) as err:
        study(url)
    message = str(err.value)
    assert "\n" not in message and str(path) in message and words in message
    assert path.read_bytes() == content  # nothing appended to the broken file
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


@pytest.mark.parametrize("text", ["study.db", "mystudy"])
def test_a_storage_that_is_neither_a_journal_nor_a_url_names_the_allowed_forms(
    text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SharenasError) as err:
        study(text)
    message = str(err.value)
    assert "\n" not in message and f"searcher.storage={text} is neither" in message
    assert ".journal" in message and "sqlite:///" in message and "postgresql://" in message
    assert ("sqlite:///study.db" in message) == text.endswith(".db")
    assert not list(tmp_path.iterdir())  # nothing created


@pytest.mark.fault("search process killed (SIGKILL) mid-evaluation", outcome="recovered")
@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_killed_search_leaves_no_trial_running(kind: str, tmp_path: Path) -> None:
    url = str(tmp_path / "s.journal") if kind == "journal" else f"sqlite:///{tmp_path / 's.db'}"
    killed = worker(url, tmp_path / "log", 10, "--kill-at", "3")
    killed.communicate(timeout=300)
    assert killed.returncode == -9
    shared = optuna.load_study(study_name="shared", storage=study(url).storage)
    states = [t.state.name for t in shared.trials]
    assert states.count("COMPLETE") == 2  # the kill fell on the 3rd evaluation
    resumed = study(url, 10)
    assert resumed.optuna.trials[2].state.name == "FAIL"  # was RUNNING: stale, failed on resume
    assert resumed.n_stale == 0  # the first Study(...) above already failed it
    assert len(drive(resumed)) == 8 and len(resumed.records()) == 10


def shared_search(url: str, tmp_path: Path, n_trials: int = 20, processes: int = 3) -> None:
    """``processes`` searches on one study at once; the study must evaluate each arch once and
    exactly ``n_trials`` archs in all."""
    logs = [tmp_path / f"log{i}" for i in range(processes)]
    ready = ("--together", str(tmp_path / "ready"), str(processes))  # start-up speeds differ
    procs = [worker(url, log, n_trials, *ready) for log in logs]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    evaluated = [line for log in logs if log.exists() for line in log.read_text().splitlines()]
    assert len(evaluated) == n_trials and len(set(evaluated)) == n_trials  # no duplicates
    records = study(url, n_trials).records()
    assert sorted(r.arch for r in records) == sorted(evaluated)
    assert sum(log.exists() for log in logs) >= 2, "the processes did not share the work"


@pytest.mark.fault("3 search processes on one study (budget and archs shared)", outcome="recovered")
@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_processes_share_one_study_on_files(kind: str, tmp_path: Path) -> None:
    url = str(tmp_path / "s.journal") if kind == "journal" else f"sqlite:///{tmp_path / 's.db'}"
    shared_search(url, tmp_path)


@pytest.mark.fault("3 search processes on one study (budget and archs shared)", outcome="recovered")
def test_processes_share_one_study_on_postgresql(tmp_path: Path) -> None:
    pytest.importorskip("psycopg2", reason="pip install psycopg2-binary (a dev dependency)")
    if reason := postgres.missing():
        pytest.skip(reason)
    with postgres.server() as url:
        shared_search(url, tmp_path)
        killed = worker(url, tmp_path / "killed", 24, "--kill-at", "2")
        killed.communicate(timeout=300)
        assert killed.returncode == -9
        resumed = study(url, 24)
        assert sum(t.state.name == "RUNNING" for t in resumed.trials()) == 0
        assert len(drive(resumed, 100)) + 21 == 24  # 20 shared + 1 by the killed process


def test_sqlite_check_accepts_a_real_database(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()  # a valid (empty) database file
    drive(study(f"sqlite:///{path}", 2))
    assert len(study(f"sqlite:///{path}", 2).records()) == 2
