"""Supernet training: bit-identical resume, safe checkpoints, TensorBoard scalars."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from supernet.checkpoint import load_checkpoint
from supernet.errors import CheckpointError, SharenasError
from supernet.training import train
from tests.conftest import compose_tiny


class NotWeights:
    """A picklable object that a weights-only load must refuse."""


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs"


def one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert msg and "\n" not in msg, msg
    return msg


SHARING = {
    "full": ["sharing=full"],
    "fewshot": ["sharing=fewshot", "sharing.split_epoch=1"],
    "gm": ["sharing=gm", "sharing.split_epochs=[1]", "sharing.samples_per_choice=1"],
    "costsplit": ["sharing=costsplit", "sharing.split_epoch=1", "sharing.pool_size=200"],
}


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> dict[str, Path]:
    """Two epochs in one call, per sharing strategy."""
    runs = {}
    for name, overrides in SHARING.items():
        out = tmp_path_factory.mktemp(f"straight_{name}")
        train(compose_tiny("train", [*overrides, "trainer.epochs=2"]), out_dir=out)
        runs[name] = out
    return runs


@pytest.mark.parametrize("sharing", sorted(SHARING))
def test_resume_is_bit_identical(sharing, straight, tmp_path):
    overrides = [*SHARING[sharing], "trainer.epochs=2"]
    first = train(compose_tiny("train", [*overrides, "trainer.stop_after=1"]), out_dir=tmp_path)
    assert first["epoch"] == 1
    half = load_checkpoint(tmp_path / "supernet.pt")
    assert half["epoch"] == 1
    if sharing != "full":  # the split happened before the checkpoint the resume starts from
        assert len(half["sharing"]["leaves"]) >= 2 and half["sharing"]["history"]
    second = train(compose_tiny("train", [*overrides, "trainer.resume=true"]), out_dir=tmp_path)
    assert second["epoch"] == 2
    resumed = load_checkpoint(tmp_path / "supernet.pt")
    ref = load_checkpoint(straight[sharing] / "supernet.pt")
    assert resumed["epoch"] == ref["epoch"] == 2
    assert resumed["sharing"] == ref["sharing"]
    assert_same_state(resumed["model"], ref["model"])
    assert resumed["metrics"]["train_loss"] == ref["metrics"]["train_loss"]
    assert resumed["sampler"] == ref["sampler"]


def test_resume_without_checkpoint_starts_fresh(tmp_path, capsys):
    metrics = train(compose_tiny("train", ["trainer.resume=true"]), out_dir=tmp_path)
    assert metrics["epoch"] == 1 and (tmp_path / "supernet.pt").is_file()
    assert "does not exist" in capsys.readouterr().out


def test_resume_of_a_finished_run_says_so_and_keeps_the_weights(tmp_path, capsys):
    train(compose_tiny("train", []), out_dir=tmp_path)
    before = load_checkpoint(tmp_path / "supernet.pt")
    metrics = train(compose_tiny("train", ["trainer.resume=true"]), out_dir=tmp_path)
    assert "nothing to train" in capsys.readouterr().out and metrics["epoch"] == before["epoch"]
    assert_same_state(load_checkpoint(tmp_path / "supernet.pt")["model"], before["model"])


def test_resume_with_other_settings_is_refused(tmp_path):
    train(compose_tiny("train", ["sharing=fewshot", "sharing.split_epoch=2"]), out_dir=tmp_path)
    again = compose_tiny("train", ["trainer.epochs=3", "trainer.resume=true"])  # sharing=full
    with pytest.raises(SharenasError, match=r"trained with other settings \(sharing.name="):
        train(again, out_dir=tmp_path)
    wider = compose_tiny(
        "train",
        [
            "sharing=fewshot",
            "sharing.split_epoch=2",
            "space.macro.channels=8",
            "trainer.resume=true",
        ],
    )
    with pytest.raises(SharenasError, match="space.macro.channels=8 \\(checkpoint: 4\\)"):
        train(wider, out_dir=tmp_path)


def test_a_bad_optimizer_setting_is_one_line(tmp_path):
    with pytest.raises(SharenasError, match="bad trainer.optimizer setting: Invalid learning rate"):
        train(compose_tiny("train", ["trainer.optimizer.lr=-1"]), out_dir=tmp_path)


def test_checkpoint_is_weights_only_and_complete(straight):
    path = straight["full"] / "supernet.pt"
    payload = torch.load(path, weights_only=True)
    for key in (
        "format_version",
        "space",
        "config",
        "sharing",
        "model",
        "optimizer",
        "scheduler",
        "sampler",
        "epoch",
        "rng",
    ):
        assert key in payload, key
    assert payload["space"] == "nb201" and payload["epoch"] == 2
    assert payload["config"]["space"]["macro"]["channels"] == 4
    assert not list(path.parent.glob(".supernet.pt.*")), "a temp file was left behind"


def test_checkpoint_of_another_space_names_both(straight):
    path = straight["full"] / "supernet.pt"
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path, space="other")
    msg = one_line(err)
    assert "'nb201'" in msg and "'other'" in msg


def test_missing_checkpoint_names_the_path(tmp_path):
    path = tmp_path / "nowhere" / "supernet.pt"
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert str(path) in one_line(err)


def test_truncated_checkpoint_is_a_checkpoint_error(straight, tmp_path):
    data = (straight["full"] / "supernet.pt").read_bytes()
    path = tmp_path / "truncated.pt"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert str(path) in one_line(err)


def test_checkpoint_that_would_run_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save(
        {
            "format_version": 1,
            "space": "nb201",
            "config": {},
            "sharing": {},
            "model": {},
            "epoch": 1,
            "payload": NotWeights(),
        },
        path,
    )
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert str(path) in one_line(err)


def test_tensorboard_scalars(straight):
    tb = straight["full"] / "tb"
    assert list(tb.glob("events.out.tfevents.*"))
    acc = EventAccumulator(str(tb))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    for tag in ("train/train_loss", "train/val_acc_largest"):
        assert tag in tags, f"{tag} not in {tags}"
        events = acc.Scalars(tag)
        assert [e.step for e in events] == [1, 2]
    assert all(0.0 <= e.value <= 100.0 for e in acc.Scalars("train/val_acc_largest"))


def test_resume_with_more_epochs_keeps_learning(tmp_path, capsys):
    """Extending a finished cosine schedule must not continue at its final learning rate (0)."""
    train(compose_tiny("train", ["trainer.epochs=2"]), out_dir=tmp_path)
    before = load_checkpoint(tmp_path / "supernet.pt")
    train(compose_tiny("train", ["trainer.epochs=3", "trainer.resume=true"]), out_dir=tmp_path)
    after = load_checkpoint(tmp_path / "supernet.pt")
    assert "schedule changed" in capsys.readouterr().out
    assert after["epoch"] == 3
    assert after["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.0, abs=1e-12)  # end
    assert after["metrics"]["lr"] == pytest.approx(0.0, abs=1e-12)
    changed = [
        k
        for k, v in after["model"].items()
        if v.is_floating_point() and not torch.equal(v, before["model"][k])
    ]
    assert changed, "epoch 3 trained at lr 0: no weight moved"


def test_corrupt_checkpoint_message_is_not_torch_boilerplate(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(bytes(range(256)) * 16)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(bad)
    assert str(bad) in str(err.value) and "weights_only" not in str(err.value)
    assert len(str(err.value).splitlines()) == 1


def test_a_split_after_the_last_epoch_is_announced(tmp_path, capsys):
    cfg = compose_tiny("train", ["sharing=costsplit", "sharing.split_epoch=5", "trainer.epochs=1"])
    metrics = train(cfg, out_dir=tmp_path)
    err = capsys.readouterr().err
    assert "[5]" in err and "trainer.epochs=1" in err and "will not happen" in err, err
    assert metrics["num_supernets"] == 1


def test_each_split_logs_the_partition_tree_as_text(tmp_path):
    train(compose_tiny("train", ["sharing=fewshot", "sharing.split_epoch=1"]), out_dir=tmp_path)
    acc = EventAccumulator(str(tmp_path / "tb"), size_guidance={"tensors": 0})
    acc.Reload()
    events = acc.Tensors("sharing/partition/text_summary")
    assert [e.step for e in events] == [1]  # one split, at the end of epoch 1
    table = events[0].tensor_proto.string_val[0].decode()
    assert table.count("| `{") == 5  # fewshot on one NB201 edge: one sub-supernet per op
