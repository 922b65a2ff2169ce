"""Cost models of a standalone path: FLOPs (``torch.utils.flop_counter``) and latency.

Parameters are ``supernet.models.count_params``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.utils import benchmark
from torch.utils.flop_counter import FlopCounterMode

from supernet.ops.fast import every_tap


@torch.no_grad()
def flops(net: nn.Module, input_shape: tuple[int, ...]) -> int:
    """FLOPs of one forward pass on a single sample, counted by PyTorch's ``FlopCounterMode``."""
    device = next((p.device for p in net.parameters()), torch.device("cpu"))
    x = torch.zeros((1, *input_shape), device=device)
    was_training = net.training
    net.eval()
    with FlopCounterMode(display=False) as counter, every_tap():
        net(x)
    net.train(was_training)
    return int(counter.get_total_flops())


def time_ms(
    fn: Callable[[], object],
    threads: int | None = None,
    min_run_time: float = 0.2,
    statistic: str = "median",
) -> float:
    """Time (ms) of one ``fn()`` from ``torch.utils.benchmark.Timer.blocked_autorange``, which
    warms up, sizes its blocks of runs and synchronises CUDA; gradients off. ``statistic``:
    "median" of the blocks' per-run times, or "min" (the least disturbed block, for a busy
    host). ``threads``: torch's intra-op threads while timing (default: the current setting)."""
    threads = torch.get_num_threads() if threads is None else threads
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads)
    with torch.no_grad():
        measurement = timer.blocked_autorange(min_run_time=min_run_time)
    if statistic not in ("median", "min"):
        raise ValueError(f"statistic must be 'median' or 'min', got {statistic!r}")
    return (measurement.median if statistic == "median" else min(measurement.times)) * 1e3


@torch.no_grad()
def latency_ms(net: nn.Module, input_shape: tuple[int, ...], batch: int = 1) -> float:
    """Median forward time (ms) of ``batch`` samples on the net's device (``time_ms``)."""
    device = next((p.device for p in net.parameters()), torch.device("cpu"))
    x = torch.zeros((batch, *input_shape), device=device)
    net.eval()
    return time_ms(lambda: net(x))
