"""A checkpoint argument that is not a supernet checkpoint is refused in one line that says
what to pass instead."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from supernet.checkpoint import load_checkpoint
from supernet.errors import CheckpointError


def refusal(path: Path) -> str:
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    return message


def test_a_run_directory_points_at_its_supernet_pt(tmp_path: Path) -> None:
    (tmp_path / "supernet.pt").write_bytes(b"")
    message = refusal(tmp_path)
    assert "is a directory" in message and f"pass '{tmp_path / 'supernet.pt'}'" in message


def test_a_directory_without_a_checkpoint_says_what_to_pass(tmp_path: Path) -> None:
    assert "is a directory" in refusal(tmp_path) and "supernet.pt train.py wrote" in refusal(
        tmp_path
    )


def test_an_exported_state_dict_names_the_missing_keys(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save({"stem.weight": torch.zeros(2)}, path)
    message = refusal(path)
    assert "not a sharenas supernet checkpoint" in message and "format_version" in message
    assert "pass the supernet.pt" in message
