"""A broken number never becomes a checkpoint: training stops at the first non-finite loss."""

from __future__ import annotations

import pytest
import torch

from supernet.builder import load_trained
from supernet.checkpoint import load_checkpoint
from supernet.errors import CheckpointError
from supernet.training import TrainingDivergedError, train
from tests.conftest import compose_tiny
from tests.reliability.procs import error_line, run_cli


def nan_at(epoch: int, step: int):
    """A step hook that turns the loss of (epoch, step) into NaN (as an overflow would)."""

    def hook(e: int, s: int, loss: torch.Tensor) -> torch.Tensor:
        return loss * float("nan") if (e, s) == (epoch, step) else loss

    return hook


def all_finite(state: dict) -> bool:
    return all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


@pytest.mark.fault("NaN loss mid-training", outcome="refused clearly")
@pytest.mark.parametrize("epoch, step", [(2, 2), (3, 1)])
def test_nan_loss_stops_at_its_step_and_keeps_the_last_good_checkpoint(tmp_path, epoch, step):
    cfg = compose_tiny("train", ["trainer.epochs=3"])
    with pytest.raises(TrainingDivergedError) as err:
        train(cfg, out_dir=tmp_path, step_hook=nan_at(epoch, step))
    msg = str(err.value)
    assert "\n" not in msg and f"at epoch {epoch}, step {step}" in msg and "loss nan" in msg
    assert f"checkpoint {tmp_path / 'supernet.pt'} (epoch {epoch - 1}) is kept" in msg
    kept = load_checkpoint(tmp_path / "supernet.pt")
    assert kept["epoch"] == epoch - 1 and all_finite(kept["model"])
    load_trained(tmp_path / "supernet.pt")  # searchable


@pytest.mark.fault("NaN loss mid-training", outcome="refused clearly")
def test_nan_at_the_first_step_writes_no_checkpoint(tmp_path):
    with pytest.raises(TrainingDivergedError, match="epoch 1, step 1 .*no checkpoint was written"):
        train(compose_tiny("train"), out_dir=tmp_path, step_hook=nan_at(1, 1))
    assert not (tmp_path / "supernet.pt").exists()


@pytest.mark.fault("learning rate that diverges (lr=1e6)", outcome="refused clearly")
def test_a_diverging_learning_rate_exits_non_zero_with_one_line(tmp_path):
    proc = run_cli(
        "train.py",
        ["trainer.epochs=4", "trainer.optimizer.lr=1e6", f"hydra.run.dir={tmp_path}"],
    )
    line = error_line(proc)
    assert "non-finite" in line, line
    ckpt = tmp_path / "supernet.pt"
    if ckpt.exists():  # an epoch ended before the loss broke: what was kept is finite
        assert all_finite(load_checkpoint(ckpt)["model"])


@pytest.mark.fault("checkpoint with non-finite weights", outcome="refused clearly")
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_checkpoint_with_non_finite_weights_is_refused(tmp_path, value):
    train(compose_tiny("train"), out_dir=tmp_path)
    payload = torch.load(tmp_path / "supernet.pt", weights_only=True)
    key = next(k for k, v in payload["model"].items() if v.is_floating_point())
    payload["model"][key].view(-1)[0] = value
    bad = tmp_path / "bad.pt"
    torch.save(payload, bad)
    with pytest.raises(CheckpointError) as err:
        load_trained(bad)
    msg = str(err.value)
    assert "\n" not in msg and "non-finite weights" in msg and key in msg and str(bad) in msg
