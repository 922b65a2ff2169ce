"""Standalone nets for every registered space: built from scratch through the supernet registry
(seeded), trained with the ground truth's recipe, or fine-tuned from the inherited weights."""

from __future__ import annotations

import random

import pytest
import torch

from search.verify_train import StandaloneJob, build_net, train_job
from supernet.data import load_splits
from supernet.models import Macro, build_supernet, standalone_from_scratch
from supernet.spaces import build_space, list_spaces

MACRO = {"channels": 4, "cells_per_stage": 1, "in_channels": 1, "num_classes": 10}
RECIPE = {"epochs": 1, "batch_size": 64, "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4}


@pytest.fixture(scope="module")
def data():
    splits = load_splits("digits", limit=400)
    return tuple((s.tensors[0], s.tensors[1]) for s in (splits.train, splits.val))


@pytest.mark.parametrize("name", list_spaces())
def test_from_scratch_builds_every_space_and_is_seeded(name: str) -> None:
    space = build_space(name)
    arch = space.sample(random.Random(1))
    torch.manual_seed(3)
    a = standalone_from_scratch(space, Macro(**MACRO), arch)
    torch.manual_seed(3)
    b = standalone_from_scratch(space, Macro(**MACRO), arch)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb), ka
    assert a(torch.randn(2, 1, 8, 8)).shape == (2, 10)


@pytest.mark.parametrize("name", list_spaces())
def test_train_job_from_scratch_and_finetune(name: str, data) -> None:
    space = build_space(name)
    arch = str(space.sample(random.Random(2)))
    torch.manual_seed(0)
    supernet = build_supernet(space, Macro(**MACRO))
    inherited = supernet.extract(space.parse(arch)).state_dict()
    scratch = StandaloneJob(arch, name, MACRO, RECIPE, (0, 1))
    tuned = StandaloneJob(arch, name, MACRO, RECIPE, (0,), init=inherited)
    start = build_net(tuned, 0).state_dict()
    assert all(torch.equal(start[k], v) for k, v in inherited.items())  # starts inherited
    first = train_job(scratch, data)
    again = train_job(scratch, data)
    assert first["standalone_acc_per_seed"] == again["standalone_acc_per_seed"]  # seeded
    assert len(first["standalone_acc_per_seed"]) == 2
    acc = first["standalone_acc"]
    assert acc == pytest.approx(sum(first["standalone_acc_per_seed"]) / 2) and 0 <= acc <= 100
    result = train_job(tuned, data)
    assert any(not torch.equal(result["state_dict"][k], v) for k, v in inherited.items())
