"""Data-parallel training under a real ``torchrun`` (2 CPU processes, gloo, 127.0.0.1)."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys

import pytest
import torch
from torch import nn

from supernet import distributed
from supernet.builder import build
from supernet.checkpoint import load_checkpoint
from supernet.distributed import SIZE_ONE_STRIDES, Ranks
from supernet.errors import SharenasError
from tests.conftest import REPO, TINY_TRAIN, compose_tiny

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2"]
SPLIT = ("sharing=fewshot", "sharing.split_epoch=1", "sharing.train_all_leaves=true")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(out, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    cmd = [
        *TORCHRUN,
        "--master_addr=127.0.0.1",
        f"--master_port={free_port()}",
        "train.py",
        *TINY_TRAIN,
        "trainer.batch_size=32",
        f"hydra.run.dir={out}",
        *overrides,
    ]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


GM = ("sharing=gm", "sharing.split_epochs=[1]", "sharing.train_all_leaves=true")


@pytest.mark.parametrize("split", [SPLIT, GM], ids=["fewshot", "gm"])
def test_two_processes_train_one_checkpoint_through_a_split(tmp_path, split):
    proc = torchrun(tmp_path, *split, "trainer.epochs=2")
    # rank 0 alone prints and writes; weights and partition stayed identical (checked each epoch)
    assert proc.stdout.count("checkpoint: ") == 1 and proc.stdout.count("epoch 2/2 ") == 1
    payload = load_checkpoint(tmp_path / "supernet.pt")
    leaves = len(payload["sharing"]["leaves"])
    assert payload["epoch"] == 2 and leaves >= 2
    # each process trained its half of every 32-image batch: 3 steps x children x 32 in all
    # (processes that each trained the whole batch would count twice that)
    assert payload["metrics"]["train_samples"] == 3 * leaves * 32
    assert SIZE_ONE_STRIDES not in proc.stderr  # filtered on CPU: see the next test


@pytest.mark.parametrize("space", ["nb201", "mbv3"])
def test_cpu_grads_differ_from_their_params_in_strides_of_size_one_dims_only(space):
    """Why DDP's grad-strides warning is filtered on CPU (``distributed.SIZE_ONE_STRIDES``): a
    gradient whose strides are not its parameter's still lays out the same memory."""
    cfg = compose_tiny("train", [f"space={space}", "space.macro.channels=8"])
    torch.manual_seed(0)
    built = build(cfg)
    x, y = built.splits.train.tensors[0][:16], built.splits.train.tensors[1][:16]
    rng, differ = random.Random(0), 0
    for _ in range(12):
        built.strategy.zero_grad(set_to_none=True)
        arch = built.space.sample(rng)
        nn.functional.cross_entropy(built.strategy(x, arch), y).backward()
        for param in built.strategy.parameters():
            if param.grad is None or param.grad.stride() == param.stride():
                continue
            differ += 1
            sized = [
                (a, b)
                for n, a, b in zip(param.shape, param.stride(), param.grad.stride(), strict=True)
                if n > 1
            ]
            assert all(a == b for a, b in sized), (tuple(param.shape), param.grad.stride())
    assert differ  # the case the filter is for does occur


def test_killed_and_resumed_ddp_run_matches_an_uninterrupted_one(tmp_path):
    # rank 0 keeps the average; every rank augments the whole batch from one generator state
    run = (
        *SPLIT,
        "trainer.epochs=2",
        "trainer.ema_decay=0.5",
        "trainer.augment.crop_pad=1",
        "trainer.label_smoothing=0.1",
    )
    torchrun(tmp_path / "straight", *run)
    torchrun(tmp_path / "halves", *run, "trainer.stop_after=1")
    assert load_checkpoint(tmp_path / "halves" / "supernet.pt")["epoch"] == 1
    proc = torchrun(tmp_path / "halves", *run, "trainer.resume=true")
    assert proc.stdout.count("resumed from") == 1
    resumed = load_checkpoint(tmp_path / "halves" / "supernet.pt")
    straight = load_checkpoint(tmp_path / "straight" / "supernet.pt")
    assert resumed["sharing"] == straight["sharing"]
    for key, value in straight["model"].items():
        assert torch.equal(resumed["model"][key], value), key
    assert torch.equal(resumed["rng"]["augment"], straight["rng"]["augment"])
    assert resumed["ema"]["n_averaged"] == straight["ema"]["n_averaged"] == 6
    for key, value in straight["ema"]["params"].items():
        assert torch.equal(resumed["ema"]["params"][key], value), key


def test_global_batch_is_split_evenly():
    ranks = Ranks(rank=1, world=2)
    x, y = torch.arange(8.0).reshape(8, 1), torch.arange(8)
    xs, ys = distributed.shard(x, y, ranks)
    assert ys.tolist() == [4, 5, 6, 7] and xs.shape == (4, 1)
    with pytest.raises(SharenasError, match="batch_size=7 .* among the 2 torchrun processes"):
        distributed.check_batch(7, ranks)
    assert distributed.shard(x, y, Ranks()) == (x, y)  # a single process keeps the whole batch


DRIFT = """
import torch
from torch import nn
from supernet import distributed
from supernet.errors import SharenasError

ranks, _ = distributed.init(torch.device("cpu"))
torch.manual_seed(0)
net = nn.Linear(3, 2)
distributed.assert_in_sync(net, ranks, "the same init")
with torch.no_grad():
    net.bias.add_(float(ranks.rank))  # rank 1 drifts
try:
    distributed.assert_in_sync(net, ranks, "a drift")
    print(f"rank {ranks.rank}: no error")
except SharenasError as err:
    print(f"rank {ranks.rank}: {err}")
same = nn.Linear(3, 2)  # drawn from the same RNG state on both ranks
distributed.assert_in_sync(same, ranks, "equal partitions", partition=[{"edge": "a"}])
try:  # equal weights, different partitions (as a diverging split would leave them)
    distributed.assert_in_sync(same, ranks, "a split", partition=[{"edge": str(ranks.rank)}])
    print(f"rank {ranks.rank}: no error")
except SharenasError as err:
    print(f"rank {ranks.rank}: {err}")
distributed.close(ranks)
"""


def test_drifted_ranks_are_caught(tmp_path):
    script = tmp_path / "drift.py"
    script.write_text(DRIFT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [*TORCHRUN, "--master_addr=127.0.0.1", f"--master_port={free_port()}", str(script)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for rank in (0, 1):
        for what in ("a drift", "a split"):
            line = f"rank {rank}: the torchrun processes disagree on the supernet after {what}"
            assert line in proc.stdout, proc.stdout
    assert "no error" not in proc.stdout
