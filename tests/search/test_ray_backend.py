"""Ray backend on a real Ray cluster: same records as the local evaluator, the study steering."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from search import run
from search.evaluate import Evaluator
from search.searchers import RandomSearcher
from search.study import Study
from supernet.builder import load_trained
from supernet.training import train
from tests.conftest import compose_tiny

pytestmark = pytest.mark.ray


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pids_using(marker: str) -> list[int]:
    """Processes whose command line mentions ``marker`` (our cluster's unique temp dir)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker in (proc / "cmdline").read_text(errors="replace"):
                pids.append(int(proc.name))
        except OSError:  # the process exited meanwhile
            pass
    return pids


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A head node started with ``ray start --head --block`` in its own session; torn down by
    killing that process group, then any process still naming its unique temp dir."""
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths are limited
    port = _free_port()
    # No token auth on either side: Ray 2.60 turns it on for `ray start` whenever ~/.ray/auth_token
    # exists (a local ray.init() writes one), but a driver given an explicit address sends none.
    ray_env = {
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "disabled",
    }
    env = {**os.environ, **ray_env}
    cmd = [
        str(Path(sys.executable).parent / "ray"),
        "start",
        "--head",
        "--block",
        "--node-ip-address=127.0.0.1",
        f"--port={port}",
        "--num-cpus=2",
        "--include-dashboard=false",
        "--disable-usage-stats",
        f"--temp-dir={temp_dir}",
        f"--ray-client-server-port={_free_port()}",
        f"--dashboard-port={_free_port()}",
        f"--dashboard-agent-listen-port={_free_port()}",
    ]
    patch = pytest.MonkeyPatch()
    for key, value in ray_env.items():
        patch.setenv(key, value)  # the driver (this process) too
    log = open(Path(temp_dir) / "head.log", "w+")  # noqa: SIM115 - closed at teardown
    head = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 90
        while "Ray runtime started" not in (Path(temp_dir) / "head.log").read_text():
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"ray start failed:\n{(Path(temp_dir) / 'head.log').read_text()}")
            time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        for sig, wait in ((signal.SIGTERM, 2), (signal.SIGKILL, 1)):
            try:
                os.killpg(head.pid, sig)
            except ProcessLookupError:
                pass
            time.sleep(wait)
        for pid in _pids_using(temp_dir):  # e.g. workers that left the process group
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        head.wait(timeout=10)
        patch.undo()
        log.close()
        shutil.rmtree(temp_dir, ignore_errors=True)
        assert not _pids_using(temp_dir)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("train")
    return str(train(compose_tiny("search"), out_dir=out)["checkpoint"])


def _search(cluster: str, checkpoint: str, out: Path, overrides: list[str]) -> tuple[dict, Any]:
    cfg = compose_tiny(
        "search",
        [
            f"supernet.checkpoint={checkpoint}",
            "backend=ray",
            f"backend.address={cluster}",
            "backend.num_workers=2",
            "backend.progress=false",
            "results.export_best=false",
            f"backend.storage_path={out / 'ray_results'}",
            *overrides,
        ],
    )
    return run(cfg, out_dir=out), cfg


def test_ray_matches_local_evaluator(cluster, checkpoint, tmp_path):
    result, cfg = _search(cluster, checkpoint, tmp_path, ["searcher=random", "searcher.n_trials=6"])
    records = result["records"]
    archs = [r["arch"] for r in records]
    assert len(records) == 6 and len(set(archs)) == 6
    assert [r["trial"] for r in records] == sorted(r["trial"] for r in records)
    assert (tmp_path / "results.json").is_file()
    assert json.loads((tmp_path / "results.json").read_text())
    results = [
        json.loads(f.read_text().splitlines()[-1])
        for f in (tmp_path / "ray_results").glob("sharenas-*/trial_*/result.json")
    ]
    assert sorted(r["arch"] for r in results) == sorted(archs)
    pids = {r["pid"] for r in results}  # evaluated in Ray workers, two reused actors at most
    assert os.getpid() not in pids and len(pids) <= 2
    built, _ = load_trained(checkpoint, space=cfg.space.name)
    local = Evaluator.from_config(built, cfg.evaluator, seed=int(cfg.seed))
    # The seeded random searcher proposes the same archs whichever backend runs them.
    same = Study(RandomSearcher(built.space, seed=int(cfg.seed), n_trials=6))
    assert set(archs) == {str(same.ask().arch) for _ in range(6)}
    for record in records:
        expected = local(built.space.parse(record["arch"]))
        assert record["val_acc"] == expected["val_acc"]
        assert record["val_loss"] == pytest.approx(expected["val_loss"], rel=1e-6)
        assert record["params"] == expected["params"]
        assert record["supernet"] == expected["supernet"]


def test_ray_optuna_search(cluster, checkpoint, tmp_path):
    result, _ = _search(cluster, checkpoint, tmp_path, ["searcher=optuna", "searcher.n_trials=4"])
    records = result["records"]
    assert len(records) == 4  # the study skips repeats: every Tune trial scores a new arch
    assert len({r["arch"] for r in records}) == len(records)
    assert all(0.0 <= r["val_acc"] <= 100.0 and r["trial"] is not None for r in records)
    assert (tmp_path / "results.json").is_file()
    # TensorBoard: one session per arch, written by the driver as trials finish; no Tune runs
    from tests.search.test_tensorboard_live import runs, sessions

    loaded = runs(tmp_path)
    assert set(sessions(loaded)) == {f"tb/trials/trial_{r['trial']:05d}" for r in records}
    tags = {
        t for acc in loaded.values() for kind in ("scalars", "tensors") for t in acc.Tags()[kind]
    }
    assert not [t for t in tags if t.startswith("ray/")]


def test_ray_search_stores_and_resumes_its_study(cluster, checkpoint, tmp_path):
    storage = tmp_path / "study.journal"
    common = ["searcher=optuna", f"searcher.storage={storage}"]
    _search(cluster, checkpoint, tmp_path / "a", [*common, "searcher.n_trials=3"])
    result, _ = _search(cluster, checkpoint, tmp_path / "b", [*common, "searcher.n_trials=5"])
    meta = json.loads((tmp_path / "b" / "results.json").read_text())["meta"]
    assert len(result["records"]) == 5 and meta["n_from_earlier_runs"] == 3
