"""A made-up ground truth on real NB201 cells, written by the test, standing in for a sample."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from bench import ground_truth
from bench.sample import uniform_sample
from supernet.spaces import build_space


def make_truth(n: int = 40, seeds: int = 5, seed: int = 0) -> dict:
    """A ground-truth payload as ``bench/ground_truth.py`` writes it: ``n`` NB201 cells, per-seed
    accuracies around a made-up expected accuracy that grows with the parameter count, and two
    cut-off cells at 8.4% on every seed."""
    rng = np.random.default_rng(seed)
    archs = [str(a) for a in uniform_sample(build_space("nb201"), n=n, seed=seed)]
    params = {a: int(p) for a, p in zip(archs, rng.integers(10_000, 70_000, n), strict=True)}
    per_seed = {}
    for k, a in enumerate(archs):
        mu = 90.0 + 7.0 * (params[a] - 10_000) / 60_000 + rng.normal(0.0, 0.5)
        values = mu + rng.normal(0.0, 0.4, seeds) if k >= 2 else np.full(seeds, 8.4)
        per_seed[a] = [round(float(v), 1) for v in values]
    return {
        "recipe": {"epochs": 6},
        "data": ground_truth.DATA,
        "macro": ground_truth.MACRO,
        "seeds": list(range(seeds)),
        "sample": {"kind": "uniform", "n": n, "seed": seed},
        "n_archs": n,
        "per_seed": per_seed,
        "params": params,
        "mean": {a: sum(v) / len(v) for a, v in per_seed.items()},
    }


@pytest.fixture
def fake_uniform(tmp_path, monkeypatch) -> tuple[ground_truth.Sample, dict]:
    """The ``uniform`` sample, pointed at a made-up ground truth in ``tmp_path``."""
    payload = make_truth()
    cache = tmp_path / "gt.json"
    cache.write_text(json.dumps(payload))
    sample = dataclasses.replace(
        ground_truth.SAMPLES["uniform"], cache=cache, params=dict(n=40, seed=0)
    )  # its draw gives the made-up truth's cells
    monkeypatch.setitem(ground_truth.SAMPLES, "uniform", sample)
    return sample, payload


def write_run(runs_dir, sample, row: str, seed: int, scores: dict[str, float], **extra) -> None:
    """One cached fidelity run (its estimates file), every estimator the same ``scores``."""
    out = runs_dir / row / f"seed{seed}"
    out.mkdir(parents=True, exist_ok=True)
    payload = {"row": row, "seed": seed, "val_acc": scores, "neg_train_loss": scores}
    (out / sample.estimates).write_text(json.dumps(payload | extra))
