"""A finished checkpoint is never silently replaced, and a bad output path fails before training."""

from __future__ import annotations

import pytest

from supernet.checkpoint import load_checkpoint
from supernet.errors import CheckpointError
from supernet.training import train
from tests.conftest import compose_tiny
from tests.reliability.procs import error_line, run_cli


@pytest.fixture
def finished(tmp_path):
    train(compose_tiny("train", ["trainer.epochs=2"]), out_dir=tmp_path)
    return tmp_path / "supernet.pt"


@pytest.mark.fault("training again into a directory holding supernet.pt", outcome="refused clearly")
def test_a_second_run_without_resume_is_refused(finished):
    before = finished.read_bytes()
    with pytest.raises(CheckpointError) as err:
        train(compose_tiny("train"), out_dir=finished.parent)
    msg = str(err.value)
    assert "\n" not in msg and "trainer.resume=true" in msg and "trainer.overwrite=true" in msg
    assert finished.read_bytes() == before


@pytest.mark.fault("training again into a directory holding supernet.pt", outcome="refused clearly")
def test_the_cli_refuses_in_one_line(finished):
    before = finished.read_bytes()
    line = error_line(run_cli("train.py", [f"hydra.run.dir={finished.parent}"]))
    assert "already holds a checkpoint" in line and "hydra.run.dir" in line
    assert finished.read_bytes() == before


@pytest.mark.fault("training again into a directory holding supernet.pt", outcome="refused clearly")
def test_overwrite_true_replaces_it(finished):
    train(compose_tiny("train", ["trainer.overwrite=true"]), out_dir=finished.parent)
    assert load_checkpoint(finished)["epoch"] == 1


@pytest.mark.fault("checkpoint path is a directory or not writable", outcome="refused clearly")
def test_a_directory_named_supernet_pt_fails_before_training(tmp_path):
    (tmp_path / "supernet.pt").mkdir()
    with pytest.raises(CheckpointError, match="is a directory"):
        train(compose_tiny("train"), out_dir=tmp_path)
    assert not (tmp_path / "tb").exists()  # nothing was trained


@pytest.mark.fault("checkpoint path is a directory or not writable", outcome="refused clearly")
def test_an_unwritable_run_directory_fails_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the run directory's parent should be")
    with pytest.raises(CheckpointError, match="cannot write the checkpoint into"):
        train(compose_tiny("train"), out_dir=blocker / "run")


@pytest.mark.fault("resume and overwrite both set", outcome="refused clearly")
def test_resume_and_overwrite_together_are_refused(finished):
    both = compose_tiny("train", ["trainer.resume=true", "trainer.overwrite=true"])
    with pytest.raises(CheckpointError, match="exclude each other"):
        train(both, out_dir=finished.parent)
