"""``adaptive`` sharing: the signal decides whether, when and where to split, within a budget."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn

from supernet.checkpoint import load_checkpoint
from supernet.data import load_splits
from supernet.errors import SharenasError
from supernet.models import Macro
from supernet.sharing import AdaptiveSharing, SplitContext
from supernet.spaces import build_space
from supernet.training import train


@pytest.fixture(scope="module")
def space():
    return build_space("nb201")


@pytest.fixture(scope="module")
def batches():
    xs, ys = load_splits("digits").train.tensors
    return [(xs[i : i + 32], ys[i : i + 32]) for i in (0, 32)]


def make(space, **kwargs) -> AdaptiveSharing:
    torch.manual_seed(0)
    settings = {"probe_every": 1, "samples_per_choice": 1, "patience": 1} | kwargs
    return AdaptiveSharing(space, Macro(channels=4), **settings)


def run(strategy, batches, epochs: int, probes_per_epoch: int) -> list[str]:
    """Probe and offer a split as the trainer does; returns the split messages."""
    logs: list[str] = []
    ctx = SplitContext(
        epoch=0,
        loss_fn=lambda m, xb, yb: nn.functional.cross_entropy(m(xb), yb),
        batches=batches,
        log=logs.append,
    )
    step = 0
    for epoch in range(1, epochs + 1):
        for _ in range(probes_per_epoch):
            step += 1
            strategy.probe(replace(ctx, epoch=epoch - 1, step=step))
        strategy.maybe_split(replace(ctx, epoch=epoch, step=step))
    return logs


def test_no_conflict_low_enough_means_no_split(space, batches):
    strategy = make(space, threshold=-1.0)
    assert run(strategy, batches, epochs=2, probes_per_epoch=6) == []
    assert strategy.num_supernets == 1 and strategy.history == []
    assert len(strategy.trace) == 12 and len(strategy.signals) == 6  # it measured every decision
    assert all(-1.0 <= t["smoothed"] <= 1.0 and t["below"] == 0 for t in strategy.trace)


def test_splits_where_the_signal_is_lowest_within_the_budget(space, batches):
    strategy = make(space, threshold=1.0, max_supernets=3)
    logs = run(strategy, batches, epochs=4, probes_per_epoch=6)
    assert strategy.num_supernets == 3 and len(strategy.history) == 2 == len(logs)
    assert [h["epoch"] for h in strategy.history] == [1, 2]  # at most one split per epoch
    first = strategy.history[0]
    probed = [s for s in strategy.trace if s["step"] <= 6]  # what it knew at the first split
    assert first["cross_similarity"] == min(s["smoothed"] for s in probed)
    assert sorted(c for g in first["groups"] for c in g) == sorted(space.choices()["edge_1_0"])
    assert "budget 3" in logs[-1]


def test_patience_needs_consecutive_low_probes(space, batches):
    strategy = make(space, threshold=1.0, patience=3)
    run(strategy, batches, epochs=1, probes_per_epoch=12)  # each pair probed twice: not enough
    assert strategy.num_supernets == 1
    run(strategy, batches, epochs=1, probes_per_epoch=6)  # a third time
    assert strategy.num_supernets == 2


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"threshold": 2}, "sharing.threshold"),
        ({"smoothing": 1.5}, "sharing.smoothing"),
        ({"probe_every": 0}, "sharing.probe_every"),
        ({"max_supernets": 0}, "sharing.max_supernets"),
        ({"decisions": ["edge_9_9"]}, "edge_9_9.*allowed: edge_1_0"),
    ],
)
def test_bad_settings_name_the_key(space, kwargs, words):
    with pytest.raises(SharenasError, match=words):
        AdaptiveSharing(space, Macro(channels=4), **kwargs)


def _events(folder) -> SimpleNamespace:
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return SimpleNamespace(scalars=acc.Tags()["scalars"], tensors=acc.Tags()["tensors"])


def test_trains_splits_and_resumes_with_its_signals(tiny_cfg, tmp_path):
    overrides = [
        "sharing=adaptive",
        "trainer.epochs=2",
        "sharing.probe_every=1",
        "sharing.samples_per_choice=1",
        "sharing.threshold=1.0",
        "sharing.patience=1",
        "sharing.max_supernets=2",
    ]
    whole = train(tiny_cfg("train", overrides), out_dir=tmp_path / "whole")
    assert whole["num_supernets"] == 2
    state = load_checkpoint(tmp_path / "whole" / "supernet.pt", space="nb201")["sharing"]
    assert state["name"] == "adaptive" and state["history"][0]["epoch"] == 1
    assert len(state["trace"]) == 6 == state["probes"]  # 3 steps x 2 epochs, one probe each
    events = _events(tmp_path / "whole" / "tb")
    assert "sharing/cross_cosine/root/edge_1_0" in events.scalars
    assert "sharing/num_supernets" in events.scalars
    assert any(t.startswith("sharing/splits") for t in events.tensors)  # add_text
    halves = tmp_path / "halves"
    train(tiny_cfg("train", [*overrides, "trainer.stop_after=1"]), out_dir=halves)
    train(tiny_cfg("train", [*overrides, "trainer.resume=true"]), out_dir=halves)
    resumed = load_checkpoint(halves / "supernet.pt", space="nb201")["sharing"]
    assert resumed == state
