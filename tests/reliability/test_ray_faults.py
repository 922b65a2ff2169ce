"""Ray backend faults: a worker killed with SIGKILL, a node lost, Ray Client, token auth."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import ray
from optuna.trial import TrialState
from ray.cluster_utils import Cluster

from search.backends.ray_backend import RayBackend
from search.searchers.optuna_searcher import OptunaSearcher
from search.study import ERROR_ATTR, Study
from supernet.spaces import build_space
from tests.conftest import REPO, TINY_TRAIN
from tests.reliability.procs import error_line
from tests.reliability.ray_faults import KillingEvaluator, NodeLosingEvaluator
from tests.reliability.ray_head import RAY_ENV, Head, ray_head

pytestmark = pytest.mark.ray

N_TRIALS = 6


def _study() -> Study:
    return Study(OptunaSearcher(build_space("nb201"), seed=0, n_trials=N_TRIALS))


def _accounted(study: Study, marks: Path) -> None:
    """Every trial of the budget evaluated and ranked; the killed arch among them."""
    records = study.records()
    assert len({r.arch for r in records}) == N_TRIALS, [r.arch for r in records]
    assert all(r.trial is not None for r in records)
    errors = [t for t in study.trials() if ERROR_ATTR in t.user_attrs]
    assert not errors, [t.user_attrs[ERROR_ATTR] for t in errors]
    assert not [t for t in study.trials() if t.state == TrialState.RUNNING]
    if (marks / "victim").exists():
        assert (marks / "victim").read_text() in {r.arch for r in records}


@pytest.mark.fault("Ray worker killed (SIGKILL) during a trial, retries left", outcome="recovered")
@pytest.mark.parametrize(
    "kill_at,kills,other",
    [
        (0, 1, False),  # the first trial, on a fresh actor
        pytest.param(2, 2, False, marks=pytest.mark.slow),  # a reused actor, and its retry too
        pytest.param(4, 1, False, marks=pytest.mark.slow),
        pytest.param(3, 1, True, marks=pytest.mark.slow),  # another actor, busy or cached idle
    ],
)
def test_killed_worker_loses_no_trial(tmp_path, kill_at, kills, other):
    marks = tmp_path / "marks"
    marks.mkdir()
    study = _study()
    backend = RayBackend(
        num_workers=2, max_failures=2, storage_path=str(tmp_path / "ray"), progress=False
    )
    backend.run(study, KillingEvaluator(marks, kill_at, kills, other))
    _accounted(study, marks)
    assert other or (marks / f"kill_{kills - 1}").exists()  # every planned kill happened


@pytest.fixture(scope="module")
def head() -> Iterator[Head]:
    with ray_head() as running:
        yield running


def _search_cli(
    head: Head, address: str, out: Path, auth: bool, extra: Sequence[str] = ()
) -> subprocess.CompletedProcess:
    """``search.py`` with the Ray backend at ``address``; ``auth``: the driver sends the token."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    env |= {**RAY_ENV, "OMP_NUM_THREADS": "1"}
    if auth:
        env |= {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": head.token}
    overrides = [
        *TINY_TRAIN,
        "backend=ray",
        f"backend.address={address}",
        "backend.progress=false",
        "searcher=optuna",
        "searcher.n_trials=4",
        f"hydra.run.dir={out}",
        *extra,
    ]
    return subprocess.run(
        [sys.executable, "search.py", *overrides],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.fault("Ray Client (ray://) address", outcome="recovered")
def test_ray_client_search_ranks_and_exports(head, tmp_path):
    proc = _search_cli(head, head.client, tmp_path, auth=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr + head.client_logs()
    records = json.loads((tmp_path / "results.json").read_text())["records"]
    assert len(records) == 4 and all(isinstance(r["trial"], int) for r in records)
    assert (tmp_path / "best").is_dir() and any((tmp_path / "best").iterdir())
    assert list(tmp_path.rglob("events.out.tfevents.*"))


@pytest.mark.fault(
    "Ray cluster with token auth, driver without RAY_AUTH_MODE", outcome="refused clearly"
)
@pytest.mark.parametrize("which", ["gcs", pytest.param("client", marks=pytest.mark.slow)])
def test_token_auth_missing_is_one_line(head, tmp_path, which):
    address = head.address if which == "gcs" else head.client
    proc = _search_cli(head, address, tmp_path, auth=False)
    line = error_line(proc)
    assert "RAY_AUTH_MODE=token" in line and address in line, line
    assert len(proc.stderr.strip().splitlines()) <= 3, proc.stderr


def _remove_when_asked(cluster: Cluster, marks: Path, done: threading.Event) -> None:
    """Remove (kill, not drain) the worker node named in ``marks/lose_node`` once it appears."""
    asked = marks / "lose_node"
    while not done.is_set():
        if asked.exists() and asked.read_text():
            node_id = asked.read_text()
            for node in list(cluster.worker_nodes):
                if node.node_id == node_id:
                    cluster.remove_node(node, allow_graceful=False)
                    (marks / "removed").write_text(node_id)
            return
        time.sleep(0.2)


@pytest.mark.fault("Ray worker node lost mid-search (2-node cluster)", outcome="recovered")
def test_lost_node_loses_no_trial(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    done = threading.Event()
    try:
        cluster.add_node(num_cpus=2)
        cluster.wait_for_nodes(timeout=180)
        ray.init(address=cluster.address, log_to_driver=False)
        head = ray.get_runtime_context().get_node_id()
        remover = threading.Thread(target=_remove_when_asked, args=(cluster, marks, done))
        remover.start()
        study = _study()
        backend = RayBackend(
            num_workers=2, max_failures=2, storage_path=str(tmp_path / "ray"), progress=False
        )
        backend.run(study, NodeLosingEvaluator(marks, lose_at=1, head=head))
        done.set()
        remover.join()
        _accounted(study, marks)
        assert (marks / "removed").read_text() == (marks / "lose_node").read_text()
    finally:
        done.set()
        ray.shutdown()
        cluster.shutdown()
