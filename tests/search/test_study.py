"""The Study: one owner of a search's records, in memory or in any Optuna storage."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from search.liveness import OWNER_ATTR
from search.objective import Objective
from search.record import RECORD_FIELDS, Record, strict_dumps
from search.searchers import OptunaSearcher, RandomSearcher
from search.study import Study
from supernet.errors import SharenasError
from supernet.spaces import build_space
from supernet.spaces.base import Space
from tests.search.test_searchers import drive, record, score


@pytest.fixture(scope="module")
def nb201() -> Space:
    return build_space("nb201")


def dead_owner() -> dict:
    """The owner attrs of a process of this host that has exited (as after a kill -9)."""
    code = (
        "from search.liveness import this_process; import json; print(json.dumps(this_process()))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_record_is_the_one_schema() -> None:
    assert RECORD_FIELDS == (
        "arch", "score", "val_acc", "val_loss", "train_loss", "params", "flops", "latency_ms",
        "angle", "zero_cost", "raced", "trial", "supernet",
    )  # fmt: skip
    rec = Record.from_mapping({"arch": "x", "val_acc": float("nan"), "extra": 1, "params": 3})
    assert rec.non_finite() == ["val_acc"] and rec.params == 3
    assert strict_dumps({"a": [math.inf, 1.5]}) == '{"a": [null, 1.5]}'


def test_resume_continues_the_budget_and_keeps_every_field(nb201: Space, tmp_path: Path) -> None:
    storage = str(tmp_path / "study.journal")
    first = Study(OptunaSearcher(nb201, n_trials=10, storage=storage, study_name="resume"))
    told = drive(first, 4)
    again = Study(OptunaSearcher(nb201, n_trials=10, storage=storage, study_name="resume", seed=1))
    assert [r.arch for r in again.earlier] == [str(p.arch) for p in told]
    assert again.earlier[0].flops == record(told[0].arch)["flops"]
    resumed = drive(again)
    assert len(resumed) == 6 and min(p.trial for p in resumed) >= 4  # the study's budget
    assert not {str(p.arch) for p in told} & {str(p.arch) for p in resumed}
    assert len(again.records()) == 10


@pytest.mark.parametrize("name", ["random", "evolution", "exhaustive", "optuna"])
def test_every_searcher_resumes_from_a_storage(name: str, nb201: Space, tmp_path: Path) -> None:
    from search.searchers import SEARCHERS

    storage = str(tmp_path / "s.db")
    url = f"sqlite:///{storage}"
    make = SEARCHERS[name]
    drive(Study(make(nb201, n_trials=6, storage=url, study_name=name)), 3)
    second = Study(make(nb201, n_trials=6, storage=url, study_name=name))
    assert len(second.earlier) == 3 and len(drive(second)) == 3
    loaded = optuna.load_study(study_name=name, storage=url)  # Optuna's own API reads it back
    assert loaded.metric_names == ["val_acc"]
    done = [t for t in loaded.trials if "repeat_of" not in t.user_attrs]  # a seed replays
    assert len(done) == 6 and all(set(RECORD_FIELDS) - {"trial"} <= set(t.user_attrs) for t in done)


def test_stale_trial_of_a_killed_process_is_failed_on_resume(
    nb201: Space, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = str(tmp_path / "study.journal")
    first = Study(RandomSearcher(nb201, n_trials=5, storage=storage))
    drive(first, 2)
    crashed = first.ask()  # in flight when its process died
    first.close()
    first.storage.set_trial_system_attr(first.trial_id(crashed.trial), OWNER_ATTR, dead_owner())
    again = Study(RandomSearcher(nb201, n_trials=5, storage=storage))
    assert again.n_stale == 1 and "1 trials left running" in capsys.readouterr().err
    assert again.optuna.trials[crashed.trial].state.name == "FAIL"
    assert again.n_used() == 2 and len(drive(again)) == 3  # the crashed arch does not count


def test_live_trial_of_another_process_is_held(nb201: Space, tmp_path: Path) -> None:
    storage = str(tmp_path / "study.journal")
    first = Study(RandomSearcher(nb201, n_trials=3, storage=storage))
    running = first.ask()  # this process is alive: not stale, the arch is taken
    second = Study(RandomSearcher(nb201, n_trials=3, storage=storage))
    assert second.n_stale == 0 and second.n_used() == 1
    got = drive(second)
    assert len(got) == 2 and str(running.arch) not in {str(p.arch) for p in got}
    assert second.ask() is None
    first.tell(running, record(running.arch))
    assert len(second.records()) == 3
    first.close()


def test_non_finite_scores_are_failed_never_ranked(nb201: Space) -> None:
    study = Study(RandomSearcher(nb201, n_trials=4), Objective(["val_acc"]))
    for i in range(4):
        proposal = study.ask()
        bad = {**record(proposal.arch), "val_acc": math.nan if i % 2 else score(proposal.arch)}
        study.tell(proposal, bad)
    assert study.n_failed == 2 and len(study.records()) == 2 and len(study.failed()) == 2
    assert study.ask() is None  # failed archs were evaluated: they spent the budget
    states = [t.state.name for t in study.optuna.trials]
    assert states == ["COMPLETE", "FAIL", "COMPLETE", "FAIL"]
    assert study.optuna.trials[1].user_attrs["failed"] == "non-finite val_acc"


def test_listeners_get_each_record_as_it_is_stored(nb201: Space) -> None:
    study = Study(RandomSearcher(nb201, n_trials=3))
    seen: list[Record] = []
    study.add_listener(seen.append)
    drive(study)
    assert [r.trial for r in seen] == [0, 1, 2] and seen == study.records()


def test_dedupe_skips_archs_of_one_canonical_form(nb201: Space) -> None:
    if not hasattr(nb201, "canonical"):
        pytest.skip("this space defines no canonical form")
    study = Study(RandomSearcher(nb201, n_trials=40, dedupe=True))
    proposals = drive(study, 100)
    forms = {str(nb201.canonical(p.arch)) for p in proposals}
    assert len(proposals) == 40 and len(forms) == 40  # n_trials counts distinct networks
    repeats = [t for t in study.optuna.trials if "repeat_of" in t.user_attrs]
    plain = Study(RandomSearcher(nb201, n_trials=40))
    assert len({str(nb201.canonical(p.arch)) for p in drive(plain, 100)}) <= 40
    assert all(t.user_attrs["key"] in forms for t in repeats)


def test_bind_refuses_another_checkpoint(nb201: Space, tmp_path: Path) -> None:
    storage = str(tmp_path / "study.journal")
    ours, copy, theirs = tmp_path / "a.pt", tmp_path / "copy" / "a.pt", tmp_path / "b.pt"
    ours.write_bytes(b"supernet A")
    copy.parent.mkdir()
    copy.write_bytes(b"supernet A")
    theirs.write_bytes(b"supernet B")
    first = Study(OptunaSearcher(nb201, n_trials=5, storage=storage, study_name="bound"))
    first.bind(str(ours))
    drive(first, 2)
    again = Study(OptunaSearcher(nb201, n_trials=5, storage=storage, study_name="bound"))
    with pytest.raises(SharenasError) as err:
        again.bind(str(theirs))
    message = str(err.value)
    assert "\n" not in message and str(ours) in message and str(theirs) in message
    assert "searcher.study_name" in message and "searcher.storage" in message
    again.bind(str(copy))  # same bytes elsewhere: the same supernet (now named by its path)
    with pytest.raises(SharenasError, match=f"scored on supernet {copy}"):
        again.bind(str(theirs))
    with pytest.raises(SharenasError, match="supernet.checkpoint=null"):
        again.bind(None)
    Study(OptunaSearcher(nb201, n_trials=5, storage=storage, study_name="new")).bind(str(theirs))
    Study(OptunaSearcher(nb201, n_trials=5)).bind(str(theirs))  # in memory: nothing to mix


def test_a_study_keeps_its_directions(nb201: Space, tmp_path: Path) -> None:
    storage = str(tmp_path / "study.journal")
    drive(Study(RandomSearcher(nb201, n_trials=2, storage=storage)), 2)
    with pytest.raises(SharenasError, match=r"optimises \['maximize'\], not searcher.directions"):
        Study(RandomSearcher(nb201, n_trials=2, storage=storage, directions=["minimize"]))


class OneArchSampler(optuna.samplers.RandomSampler):
    """A sampler whose relative sampling proposes the first choice of every decision, always."""

    def __init__(self, space: Space) -> None:
        super().__init__(seed=0)
        self.space = {
            d: optuna.distributions.CategoricalDistribution(c) for d, c in space.choices().items()
        }
        self.params = {d: c[0] for d, c in space.choices().items()}

    def infer_relative_search_space(self, study, trial) -> dict:
        return dict(self.space)

    def sample_relative(self, study, trial, search_space) -> dict:
        return dict(self.params)


@pytest.mark.parametrize("space_name", ["nb201", "mbv3"])
def test_a_proposal_of_a_held_arch_moves_to_the_nearest_unseen_arch(space_name: str) -> None:
    space = build_space(space_name)
    study = Study(OptunaSearcher(space, seed=0, n_trials=12))
    study.sampler.inner = OneArchSampler(space)
    fixed = study.sampler.inner.params
    params = [t.params for t in (p.handle for p in drive(study, 12))]
    assert params[0] == fixed  # not held yet: kept
    assert len({study.key(space.make(p)) for p in params}) == 12  # every trial a new arch
    assert not [t for t in study.trials() if "repeat_of" in t.user_attrs]
    assert study.n_redirected == 11
    moved = [sum(p[d] != fixed[d] for d in fixed) for p in params[1:]]
    assert moved[0] == 1 and max(moved) <= 2  # the nearest unseen arch first
    again = Study(OptunaSearcher(space, seed=0, n_trials=12))
    again.sampler.inner = OneArchSampler(space)
    assert [t.params for t in (p.handle for p in drive(again, 12))] == params  # seeded


def test_without_redirects_a_repeated_proposal_is_told_as_a_repeat(nb201: Space) -> None:
    study = Study(OptunaSearcher(nb201, seed=0, n_trials=3))
    study.redirect_repeats = False
    study.sampler.inner = OneArchSampler(nb201)
    assert len(drive(study, 3)) == 3  # the steer still reaches unseen archs
    repeats = [t for t in study.trials() if "repeat_of" in t.user_attrs]
    assert len(repeats) == 2 * study.max_repeats and study.n_redirected == 0


def test_tpe_spends_no_trial_on_repeats(nb201: Space) -> None:
    study = Study(OptunaSearcher(nb201, seed=0, n_trials=80))
    drive(study, 80)
    assert len(study.trials()) == 80 and study.n_redirected > 0
