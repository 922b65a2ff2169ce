"""Faults on the search side: a supernet whose scores are not finite, bad search settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import search
from supernet.errors import SharenasError
from supernet.training import train
from tests.conftest import compose_tiny


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("nan") / "train"
    return Path(train(compose_tiny("train"), out_dir=out)["checkpoint"])


def poisoned(checkpoint: Path, out: Path, fraction: str) -> Path:
    """A copy of ``checkpoint`` with NaN weights: in every weight ("all"), or in the classifier
    rows of the 3x3 convolutions only ("conv3"), so archs without one still score."""
    payload = torch.load(checkpoint, weights_only=True)
    weights = [payload["model"], *([payload["ema"]] if payload.get("ema") else [])]
    for state in weights:  # the raw weights and their average, if the run kept one
        for name, tensor in state.items():
            poison = fraction == "all" or "nor_conv_3x3" in name
            if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and poison:
                tensor.fill_(float("nan"))
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


@pytest.mark.fault("supernet whose every score is NaN, searched", outcome="refused clearly")
def test_all_nan_supernet_exports_nothing(checkpoint: Path, tmp_path: Path) -> None:
    bad = poisoned(checkpoint, tmp_path / "bad", "all")
    with pytest.raises(SharenasError) as err:
        run(bad, tmp_path / "out")
    message = str(err.value)
    assert "\n" not in message and "no arch with finite scores" in message
    assert (
        not (tmp_path / "out" / "best").exists()
        and not (tmp_path / "out" / "results.json").exists()
    )


@pytest.mark.fault("supernet with NaN weights on some paths, searched", outcome="recovered")
def test_nan_paths_are_failed_never_ranked(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = poisoned(checkpoint, tmp_path / "bad", "conv3")
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
