"""Ray backend on a real Ray cluster: same records as the local evaluator, the study steering."""

from __future__ import annotations

import json
import os
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
from tests.reliability.ray_head import RAY_ENV, ray_head

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A head node started with ``ray start --head --block`` (``tests.reliability.ray_head``),
    token auth off on both sides: a driver given an explicit address sends no token."""
    patch = pytest.MonkeyPatch()
    for key, value in {**RAY_ENV, "RAY_AUTH_MODE": "disabled"}.items():
        patch.setenv(key, value)  # the driver (this process) too
    try:
        with ray_head(start_timeout=90, auth=False) as head:
            yield head.address
    finally:
        patch.undo()


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
    assert result["interrupted"] is False  # Tune stopped because the study did
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


def test_ray_workers_race_against_the_drivers_top(cluster, checkpoint, tmp_path):
    """Every record reaches the driver, so once its top forms, each trial's config carries it and
    a worker that has scored fewer archs than the top holds races too."""
    from search.backends.ray_backend import RACE_TOP

    race = ["evaluator.race=true", "evaluator.race_top_k=3", "evaluator.race_z=0"]
    common = ["evaluator.estimator=val_loss", "results.key=score", "results.top_k=3"]
    overrides = ["searcher=random", "searcher.n_trials=14", *race, *common]
    result, _ = _search(cluster, checkpoint, tmp_path, overrides)
    records = result["records"]
    assert len(records) == 14 and any(r["raced"] == 64 for r in records)
    configs = [
        json.loads(f.read_text())
        for f in (tmp_path / "ray_results").glob("sharenas-*/trial_*/params.json")
    ]
    carried = [c for c in configs if RACE_TOP in c]
    assert len(configs) == 14 and 0 < len(carried) <= 14 - 3  # after three records at least
    assert all(len(c[RACE_TOP]) == 3 for c in carried)
    assert all(RACE_TOP not in r["arch"] for r in records)
