"""Backend conformance: the same cases over the local backend and Ray (a real local Ray instance).

Both backends only drive the study's ask/tell, so a seeded search proposes the same archs and the
study holds the same records whichever backend evaluated them."""

from __future__ import annotations

import hashlib
import math
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from search.backends import LocalBackend
from search.objective import Objective
from search.record import Record
from search.searchers import OptunaSearcher, RandomSearcher
from search.study import Study
from supernet.arch import Arch
from supernet.spaces import build_space


class SyntheticEvaluator:
    """Scores an arch from its string alone (picklable, so Ray workers can run it); the archs
    listed in ``broken`` score NaN, as a diverged supernet would."""

    def __init__(self, broken: frozenset[str] = frozenset()) -> None:
        self.broken = broken

    def __call__(self, arch: Arch) -> dict:
        noise = int(hashlib.sha256(str(arch).encode()).hexdigest()[:8], 16) / 2**32
        acc = sum(op == "nor_conv_3x3" for op in arch.values()) + noise
        return {
            "arch": str(arch),
            "val_acc": math.nan if str(arch) in self.broken else acc,
            "val_loss": 1.0 - noise,
            "params": 100 + int(1000 * noise),
            "pid": os.getpid(),
        }


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[None]:
    ray = pytest.importorskip("ray")
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers need not import tests
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(params=["local", pytest.param("ray", marks=pytest.mark.ray)])
def backend(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "local":
        return LocalBackend(progress=False)
    request.getfixturevalue("ray_instance")
    from search.backends import RayBackend

    return RayBackend(num_workers=2, progress=False, storage_path=str(tmp_path / "ray"))


def test_a_seeded_search_gives_the_same_records(backend) -> None:
    space = build_space("nb201")
    study = Study(RandomSearcher(space, seed=0, n_trials=6))
    seen: list[Record] = []
    study.add_listener(seen.append)
    backend.run(study, SyntheticEvaluator())
    records = study.records()
    assert len(records) == 6 and len({r.arch for r in records}) == 6
    reference = Study(RandomSearcher(space, seed=0, n_trials=6))
    LocalBackend(progress=False).run(reference, SyntheticEvaluator())
    assert sorted(r.arch for r in records) == sorted(r.arch for r in reference.records())
    assert sorted(r.val_acc for r in records) == sorted(r.val_acc for r in reference.records())
    assert sorted(r.trial for r in seen) == [r.trial for r in records]  # live, one per record


def test_resume_spends_only_what_is_left(backend, tmp_path: Path) -> None:
    space, storage = build_space("nb201"), str(tmp_path / "study.journal")
    first = Study(OptunaSearcher(space, n_trials=3, storage=storage))
    LocalBackend(progress=False).run(first, SyntheticEvaluator())
    first.close()
    earlier = [r.arch for r in first.records()]
    again = Study(OptunaSearcher(space, n_trials=5, storage=storage, seed=1))
    backend.run(again, SyntheticEvaluator())
    again.close()
    records = again.records()
    assert len(records) == 5 and len({r.arch for r in records}) == 5
    assert [r.arch for r in records[:3]] == earlier and len(again.earlier) == 3


def test_non_finite_scores_are_recorded_as_failed(backend) -> None:
    space = build_space("nb201")
    probe = Study(RandomSearcher(space, seed=0, n_trials=4))
    LocalBackend(progress=False).run(probe, SyntheticEvaluator())
    broken = frozenset(r.arch for r in probe.records()[:2])
    study = Study(RandomSearcher(space, seed=0, n_trials=4), Objective(["val_acc"]))
    backend.run(study, SyntheticEvaluator(broken))
    assert {r.arch for r in study.failed()} == broken and study.n_failed == 2
    assert len(study.records()) == 2 and not broken & {r.arch for r in study.records()}
