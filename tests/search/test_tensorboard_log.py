"""Tests for search.tensorboard_log: a search read back from its TensorBoard events."""

from __future__ import annotations

from pathlib import Path

import pytest

from search import tensorboard_log
from search.ranking import leaderboard
from search.tensorboard_log import log_to_tensorboard
from tests.search.records import A_BEST, A_TINY


def _log(tmp_path: Path, records: list[dict]) -> Path:
    from torch.utils.tensorboard import SummaryWriter

    logdir = tmp_path / "tb"
    with SummaryWriter(log_dir=str(logdir)) as writer:
        log_to_tensorboard(writer, records, top_k=3)
    return logdir


def test_log_to_tensorboard_reads_back(tmp_path: Path, records: list[dict]) -> None:
    from tensorboard.backend.event_processing import event_accumulator

    logdir = _log(tmp_path, records)
    acc = event_accumulator.EventAccumulator(str(logdir), size_guidance={"tensors": 0})
    acc.Reload()
    tags = acc.Tags()

    text = acc.Tensors("leaderboard/text_summary")[0].tensor_proto.string_val[0].decode()
    assert A_BEST in text and A_TINY not in text  # top 3 only
    assert text.count("\n") == 1 + 3

    assert "pareto" in tags["images"]
    image = acc.Images("pareto")[0]
    assert image.width > 100 and image.height > 100

    # Every record is a point of the leaderboard curves (step = rank) in the root run ...
    board = leaderboard(records)
    curve = acc.Scalars("leaderboard/val_acc")
    assert [e.step for e in curve] == [r["rank"] for r in board]
    assert [e.value for e in curve] == pytest.approx([r["val_acc"] for r in board])
    assert len(acc.Scalars("leaderboard/flops")) == len(records)
    # The running best and one HParams session per arch are written live, as trials finish
    # (search.tensorboard_live, tests/search/test_tensorboard_live.py), not here.
    assert not [p for p in logdir.iterdir() if p.is_dir()]


def test_log_to_tensorboard_without_matplotlib(
    tmp_path: Path, records: list[dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tensorboard.backend.event_processing import event_accumulator

    def no_matplotlib(*args: object, **kwargs: object) -> None:
        raise ImportError("No module named 'matplotlib'")

    monkeypatch.setattr(tensorboard_log, "_pareto_figure", no_matplotlib)
    acc = event_accumulator.EventAccumulator(str(_log(tmp_path, records)))
    acc.Reload()
    assert "pareto" not in acc.Tags()["images"]
    note = acc.Tensors("pareto/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "matplotlib" in note
