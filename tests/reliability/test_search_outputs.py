"""Faults on the search side: paths whose scores are not finite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import search
from supernet.training import train
from tests.conftest import compose_tiny


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("nan") / "train"
    return Path(train(compose_tiny("train"), out_dir=out)["checkpoint"])


def overflowing(checkpoint: Path, out: Path) -> Path:
    """A copy of ``checkpoint`` whose 3x3 convolution weights are finite but huge (3e38): paths
    through them overflow to inf/NaN when scored, the others score normally. (NaN weights are
    refused when the checkpoint loads.)"""
    payload = torch.load(checkpoint, weights_only=True)
    for state in [payload["model"], *([payload["ema"]] if payload.get("ema") else [])]:
        for name, tensor in state.items():
            is_weight = isinstance(tensor, torch.Tensor) and tensor.is_floating_point()
            if is_weight and "nor_conv_3x3" in name and name.endswith(".weight"):
                tensor.fill_(3e38)
    path = out / "supernet.pt"
    out.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)
    return path


def run(checkpoint: Path, out: Path, *overrides: str) -> dict:
    cfg = compose_tiny(
        "search",
        [f"supernet.checkpoint={checkpoint}", "searcher=random", "searcher.n_trials=8", *overrides],
    )
    return search.run(cfg, out_dir=out)


@pytest.mark.fault("paths that score NaN or inf, searched", outcome="recovered")
def test_nan_paths_are_failed_never_ranked(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = overflowing(checkpoint, tmp_path / "bad")
    out = run(bad, tmp_path / "out", "searcher.n_trials=12")
    err = capsys.readouterr().err
    records = out["records"]
    text = (tmp_path / "out" / "results.json").read_text()
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in results.json"))
    assert all(r["val_acc"] is not None and r["val_loss"] is not None for r in data["records"])
    failed = data["meta"]["n_failed"]
    assert failed > 0 and len(records) + failed == 12, err
    assert f"warning: {failed} archs scored non-finite values" in err
    best = json.loads((tmp_path / "out" / "best" / "record.json").read_text())
    assert best["arch"] == out["leaderboard"][0]["arch"] and best["val_acc"] >= 0
