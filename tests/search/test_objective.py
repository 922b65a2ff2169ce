"""Tests for search.objective (key directions, feasibility, best value) and the local backend."""

from __future__ import annotations

import pytest

from search.backends import LocalBackend
from search.objective import KEY_DIRECTIONS, RECORD_KEYS, Objective, descending, direction
from search.searchers import RandomSearcher
from search.study import Study
from supernet.errors import SharenasError
from supernet.spaces import build_space


def test_key_directions() -> None:
    assert KEY_DIRECTIONS == {
        "score": "max",
        "val_acc": "max",
        "val_loss": "min",
        "params": "min",
        "flops": "min",
        "latency_ms": "min",
        "train_loss": "min",
        "angle": "max",
        "zero_cost": "max",
    }
    assert descending("score") and descending("val_acc") and descending("angle")
    higher = ("score", "val_acc", "angle", "zero_cost")
    assert not any(descending(k) for k in RECORD_KEYS if k not in higher)
    with pytest.raises(SharenasError) as err:
        direction("acc")
    assert str(err.value) == (
        "unknown results.key 'acc'; allowed: score, val_acc, val_loss, params, flops, latency_ms, "
        "train_loss, angle, zero_cost"
    )


def test_best_follows_the_key_and_skips_infeasible() -> None:
    records = [
        {"val_acc": 90.0, "val_loss": 0.5, "params": 300},
        {"val_acc": 80.0, "val_loss": 0.7, "params": 100},
        {"val_acc": 95.0, "val_loss": 0.2, "params": 900},  # infeasible below
    ]
    limits = {"params": 500}
    assert Objective(["val_acc"], limits).best(records) == 90.0
    assert Objective(["val_acc"], limits, key="val_loss").best(records) == 0.5
    assert Objective(["val_acc"], limits, key="params").best(records) == 100
    assert Objective(["val_acc"], key="val_loss").best(records) == 0.2
    assert Objective(["val_acc"], {"params": 1}).best(records) is None


def fake_evaluate(interrupt_at: int | None = None):
    calls: list[str] = []

    def evaluate(arch) -> dict:
        calls.append(str(arch))
        if len(calls) == interrupt_at:
            raise KeyboardInterrupt
        return {"arch": str(arch), "val_acc": float(len(calls)), "params": 10 * len(calls)}

    return evaluate


def test_local_backend_keeps_results_on_ctrl_c(capsys: pytest.CaptureFixture[str]) -> None:
    study = Study(RandomSearcher(build_space("nb201"), seed=0, n_trials=10))
    LocalBackend(progress=False).run(study, fake_evaluate(interrupt_at=3))
    assert [r.val_acc for r in study.records()] == [1.0, 2.0]
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["interrupted: keeping the 2 archs evaluated so far"]
    interrupted = study.optuna.trials[2]  # failed, not left running; its arch may come again
    assert interrupted.state.name == "FAIL" and "interrupted" in interrupted.user_attrs["error"]
    assert study.n_used() == 2


def test_local_backend_progress_shows_the_ranking_key(monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[str] = []
    monkeypatch.setattr("tqdm.std.tqdm.set_postfix", lambda self, **kw: shown.append(kw["best"]))
    searcher = RandomSearcher(build_space("nb201"), seed=0, n_trials=4)
    study = Study(searcher, Objective(["val_acc"], {"params": 25}, key="params"))
    LocalBackend(progress=True).run(study, fake_evaluate())
    assert len(study.records()) == 4
    assert shown == ["10", "10", "10", "10"]  # smallest params, feasible (<= 25) only
    searcher = RandomSearcher(build_space("nb201"), seed=0, n_trials=4)
    LocalBackend(progress=True).run(
        Study(searcher, Objective(["val_acc"], {"params": 25})), fake_evaluate()
    )
    assert shown[4:] == ["1", "2", "2", "2"]  # highest val_acc among the feasible
