"""Tests for search.tensorboard_log: a search read back from its TensorBoard events."""

from __future__ import annotations

from pathlib import Path

import pytest

from search import tensorboard_log
from search.ranking import leaderboard
from search.tensorboard_log import log_to_tensorboard
from tests.search.records import A_BEST, A_TINY, rec


def _log(tmp_path: Path, records: list[dict]) -> Path:
    from torch.utils.tensorboard import SummaryWriter

    logdir = tmp_path / "tb"
    with SummaryWriter(log_dir=str(logdir)) as writer:
        log_to_tensorboard(writer, records, top_k=3)
    return logdir


def test_log_to_tensorboard_reads_back(tmp_path: Path, records: list[dict]) -> None:
    from tensorboard.backend.event_processing import event_accumulator, event_multiplexer
    from tensorboard.plugins.hparams import plugin_data_pb2

    logdir = _log(tmp_path, records)
    acc = event_accumulator.EventAccumulator(str(logdir), size_guidance={"tensors": 0})
    acc.Reload()
    tags = acc.Tags()

    text = acc.Tensors("leaderboard/text_summary")[0].tensor_proto.string_val[0].decode()
    assert A_BEST in text and A_TINY not in text  # top 3 only
    assert text.count("\n") == 1 + 3

    best = [e.value for e in acc.Scalars("search/best_val_acc")]
    assert len(best) == len(records)
    assert best == sorted(best) and best[-1] == pytest.approx(93.75)
    assert [e.step for e in acc.Scalars("search/best_val_acc")] == sorted(
        r["trial"] for r in records
    )

    assert "pareto" in tags["images"]
    image = acc.Images("pareto")[0]
    assert image.width > 100 and image.height > 100

    # Every record is a point of the leaderboard curves (step = rank) in the root run ...
    board = leaderboard(records)
    curve = acc.Scalars("leaderboard/val_acc")
    assert [e.step for e in curve] == [r["rank"] for r in board]
    assert [e.value for e in curve] == pytest.approx([r["val_acc"] for r in board])
    assert len(acc.Scalars("leaderboard/flops")) == len(records)
    # ... but only the top_k (3) archs get an hparams session folder, not one per record.
    runs = sorted(p.name for p in logdir.iterdir() if p.is_dir())
    assert runs == sorted(f"trial_{r['trial']:05d}" for r in board[:3])
    mux = event_multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(str(logdir))
    mux.Reload()
    sessions = mux.PluginRunToTagToContent("hparams")
    assert sorted(sessions) == runs  # one hparams session per top arch, none in the root run
    by_trial = {f"trial_{r['trial']:05d}": r for r in records}
    for run, contents in sessions.items():
        start = plugin_data_pb2.HParamsPluginData.FromString(
            contents["_hparams_/session_start_info"]
        ).session_start_info
        assert start.hparams["arch"].string_value == by_trial[run]["arch"]
        assert start.hparams["supernet"].number_value == by_trial[run]["supernet"]
        metrics = mux.GetAccumulator(run).Tags()["scalars"]
        assert {"hparam/val_acc", "hparam/val_loss", "hparam/params", "hparam/flops"} <= set(
            metrics
        )


def test_log_to_tensorboard_many_records_few_folders(tmp_path: Path) -> None:
    many = [rec(A_BEST, 50.0 + i / 10, 1000 + i, i) for i in range(40)]
    many = [{**r, "arch": f"{r['arch']}#{i}"} for i, r in enumerate(many)]
    logdir = _log(tmp_path, many)
    assert len([p for p in logdir.iterdir() if p.is_dir()]) == 3  # top_k=3, not 40


def test_log_to_tensorboard_same_trial_twice(tmp_path: Path) -> None:
    twice = [rec(A_BEST, 93.0, 1, 7, supernet=0), rec(A_BEST, 92.0, 1, 7, supernet=1)]
    logdir = _log(tmp_path, twice)
    assert sorted(p.name for p in logdir.iterdir() if p.is_dir()) == [
        "trial_00007",
        "trial_00007_2",
    ]


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
