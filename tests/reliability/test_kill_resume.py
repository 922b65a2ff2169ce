"""A crash loses at most the epoch in progress: real kills at known steps, then resume."""

from __future__ import annotations

import signal
import textwrap

import pytest
import torch

from supernet.checkpoint import load_checkpoint
from supernet.training import train
from tests.conftest import compose_tiny
from tests.reliability.procs import run_script

TWO_EPOCHS = ["trainer.epochs=2"]


def _same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """An uninterrupted two-epoch run's checkpoint."""
    out = tmp_path_factory.mktemp("straight")
    train(compose_tiny("train", TWO_EPOCHS), out_dir=out)
    return load_checkpoint(out / "supernet.pt")


def _killed_run(out, kill: str) -> None:
    """Train two epochs in a child process that SIGKILLs itself at ``kill`` (a code line run by
    the fault hook), and check that it died by the signal."""
    code = textwrap.dedent(
        f"""
        import os, signal, torch
        import supernet.checkpoint as checkpoint
        from supernet.training import train
        from tests.conftest import compose_tiny
        {kill}
        train(compose_tiny("train", {TWO_EPOCHS!r}), out_dir={str(out)!r}, step_hook=hook)
        """
    )
    proc = run_script(code)
    assert proc.returncode == -signal.SIGKILL, proc.stderr


KILL_AT_STEP = """
def hook(epoch, step, loss):
    if (epoch, step) == (2, 2):
        os.kill(os.getpid(), signal.SIGKILL)
    return loss
"""

# torch.save of the second checkpoint writes half a file, then the process is killed
KILL_IN_SAVE = """
hook = None
real_save, calls = torch.save, []
def killing_save(obj, f):
    calls.append(1)
    if len(calls) == 2:
        f.write(b"half a checkpoint")
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    return real_save(obj, f)
checkpoint.torch.save = killing_save
"""


@pytest.mark.fault("kill -9 mid-epoch, then resume", outcome="recovered")
def test_a_kill_mid_epoch_resumes_to_the_uninterrupted_result(tmp_path, straight):
    _killed_run(tmp_path, KILL_AT_STEP.replace("\n", "\n        "))
    assert load_checkpoint(tmp_path / "supernet.pt")["epoch"] == 1
    train(compose_tiny("train", [*TWO_EPOCHS, "trainer.resume=true"]), out_dir=tmp_path)
    resumed = load_checkpoint(tmp_path / "supernet.pt")
    assert resumed["epoch"] == 2
    assert _same_state(resumed["model"], straight["model"])
    assert torch.equal(resumed["rng"]["torch"], straight["rng"]["torch"])


@pytest.mark.fault("kill -9 during a checkpoint save (orphan temp file)", outcome="recovered")
def test_a_kill_during_save_leaves_the_old_checkpoint_and_the_orphan_is_cleaned(
    tmp_path, straight, capsys
):
    _killed_run(tmp_path, KILL_IN_SAVE.replace("\n", "\n        "))
    orphans = list(tmp_path.glob(".supernet.pt.*.tmp"))
    assert len(orphans) == 1 and orphans[0].read_bytes() == b"half a checkpoint"
    assert load_checkpoint(tmp_path / "supernet.pt")["epoch"] == 1  # the old one, whole
    train(compose_tiny("train", [*TWO_EPOCHS, "trainer.resume=true"]), out_dir=tmp_path)
    assert f"removed 1 temp file(s) of an interrupted checkpoint save: {orphans[0].name}" in (
        capsys.readouterr().out
    )
    assert not list(tmp_path.glob(".supernet.pt.*.tmp"))
    assert _same_state(load_checkpoint(tmp_path / "supernet.pt")["model"], straight["model"])


@pytest.mark.fault("RNG state after a resume", outcome="recovered")
def test_the_torch_rng_state_after_a_resume_equals_the_uninterrupted_one(tmp_path, straight):
    train(compose_tiny("train", [*TWO_EPOCHS, "trainer.stop_after=1"]), out_dir=tmp_path)
    train(compose_tiny("train", [*TWO_EPOCHS, "trainer.resume=true"]), out_dir=tmp_path)
    resumed = load_checkpoint(tmp_path / "supernet.pt")
    for key in ("torch", "loader", "augment"):
        assert torch.equal(resumed["rng"][key], straight["rng"][key]), key
