"""Data-parallel supernet training under ``torchrun`` (``DistributedDataParallel``).

``torchrun --nproc_per_node=N train.py ...`` starts N processes; each builds the same supernet,
sampler and data from the same config and seed, so every rank draws the same path at every step.
Each step's batch (``trainer.batch_size``, the *global* batch) is split across the ranks, DDP
averages the gradients, and rank 0 alone prints, logs and writes the checkpoint. Splitting one
global batch, rather than giving each rank its own sampler of the data, keeps the batch order, the
checkpointed loader state and resume exactly those of a single-process run; every rank holds the
(in-memory) data anyway. BatchNorm statistics are per rank (no SyncBatchNorm), as usual for DDP.

Backend: NCCL on CUDA (one GPU per rank, ``cuda:LOCAL_RANK``), gloo on CPU.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from supernet.errors import SharenasError


@dataclass(frozen=True)
class Ranks:
    """Where this process stands; ``world == 1`` is a plain single-process run."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init(device: torch.device) -> tuple[Ranks, torch.device]:
    """Join the process group torchrun set up (env://); a no-op outside torchrun. On CUDA each
    rank takes the GPU of its ``LOCAL_RANK``."""
    if not launched_by_torchrun():
        return Ranks(), device
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        if local >= torch.cuda.device_count():
            raise SharenasError(
                f"LOCAL_RANK={local} but only {torch.cuda.device_count()} GPUs are visible; "
                "start at most one process per GPU (torchrun --nproc_per_node)"
            )
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Ranks(dist.get_rank(), dist.get_world_size(), local), device


def close(ranks: Ranks) -> None:
    if ranks.active and dist.is_initialized():
        dist.destroy_process_group()


#: DDP's warning when a gradient's strides differ from its bucket view's (the parameter's). On
#: CPU, where activations are channels-last (``supernet.ops.fast``), a 1x1 or depthwise conv's
#: weight gradient comes with channels-last strides, or with contiguous ones when the path
#: slices the weight (mbv3): for these shapes both describe the same memory, differing only on
#: dims of size 1 (``tests/supernet/test_distributed.py`` checks it on both spaces), and DDP's
#: copy into its bucket is what it would do anyway. Filtered once a CPU model is wrapped, for the
#: rest of the process (a ``torchrun`` process trains one run, on one device type).
SIZE_ONE_STRIDES = "Grad strides do not match bucket view strides"


def wrap(module: nn.Module, ranks: Ranks, device: torch.device) -> nn.Module:
    """``module`` itself, or a DDP wrapper. Each step trains one path, so most parameters get no
    gradient: ``find_unused_parameters`` lets DDP finish its reduction without them. BN running
    statistics stay each rank's own (no per-forward broadcast of every sub-supernet's buffers):
    they are recalibrated per path before any evaluation anyway, and rank 0's are saved."""
    if not ranks.active:
        return module
    if device.type == "cpu":
        warnings.filterwarnings("ignore", message=SIZE_ONE_STRIDES, category=UserWarning)
    ids = [device.index] if device.type == "cuda" else None
    # torch 2.13 renamed broadcast_buffers (now deprecated) to forward_sync_buffers
    params = inspect.signature(DistributedDataParallel.__init__).parameters
    no_sync = {
        "forward_sync_buffers" if "forward_sync_buffers" in params else "broadcast_buffers": False
    }
    return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=True, **no_sync)


def shard(x: torch.Tensor, y: torch.Tensor, ranks: Ranks) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's contiguous share of a global batch."""
    if not ranks.active:
        return x, y
    n = len(x) // ranks.world
    part = slice(ranks.rank * n, (ranks.rank + 1) * n)
    return x[part], y[part]


def barrier(ranks: Ranks) -> None:
    if ranks.active:
        dist.barrier()


def total(values: list[float], ranks: Ranks, device: torch.device) -> list[float]:
    """``values`` summed over the ranks (epoch loss/accuracy counts)."""
    if not ranks.active:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def check_batch(batch_size: int, ranks: Ranks) -> None:
    if batch_size % ranks.world:
        raise SharenasError(
            f"trainer.batch_size={batch_size} (the global batch) must divide evenly among the "
            f"{ranks.world} torchrun processes"
        )


def same_everywhere(value: object, ranks: Ranks) -> object:
    """Rank 0's ``value`` on every rank (e.g. the run directory, which Hydra names by time)."""
    if not ranks.active:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def assert_in_sync(module: nn.Module, ranks: Ranks, what: str, partition: object = None) -> None:
    """Fail loudly if the ranks' parameters or their ``partition`` (any JSON-able description,
    e.g. the sharing strategy's leaves) differ. DDP keeps parameters equal; a sharing split runs
    on every rank on its own, and a gradient-matching split on GPUs (non-deterministic kernels)
    could choose differently on one rank, which equal parameters alone would not reveal."""
    if not ranks.active:
        return
    params = list(module.parameters())
    text = json.dumps(partition, sort_keys=True, default=str)
    tag = int.from_bytes(hashlib.sha256(text.encode()).digest()[:6], "big")  # exact in a double
    with torch.no_grad():
        sums = torch.stack([p.detach().double().sum() for p in params])
        digest = torch.stack(
            [sums.new_tensor(len(params)), sums.sum(), sums.abs().sum(), sums.new_tensor(tag)]
        )
    digest = digest.to(params[0].device)  # NCCL gathers CUDA tensors, gloo CPU ones
    gathered = [torch.zeros_like(digest) for _ in range(ranks.world)]
    dist.all_gather(gathered, digest)
    if any(not torch.equal(g, gathered[0]) for g in gathered):
        raise SharenasError(
            f"the torchrun processes disagree on the supernet after {what}: "
            f"{[g.tolist() for g in gathered]}"
        )
