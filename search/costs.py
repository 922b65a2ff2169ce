"""Cost models of a standalone path: FLOPs (``torch.utils.flop_counter``) and latency.

Parameters are ``supernet.models.count_params``.
"""

from __future__ import annotations

import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@torch.no_grad()
def flops(net: nn.Module, input_shape: tuple[int, ...]) -> int:
    """FLOPs of one forward pass on a single sample, counted by PyTorch's ``FlopCounterMode``."""
    device = next((p.device for p in net.parameters()), torch.device("cpu"))
    x = torch.zeros((1, *input_shape), device=device)
    was_training = net.training
    net.eval()
    with FlopCounterMode(display=False) as counter:
        net(x)
    net.train(was_training)
    return int(counter.get_total_flops())


@torch.no_grad()
def latency_ms(
    net: nn.Module, input_shape: tuple[int, ...], batch: int = 1, repeats: int = 20
) -> float:
    """Median wall time (ms) of a forward pass of ``batch`` samples, after 3 warm-up passes."""
    device = next((p.device for p in net.parameters()), torch.device("cpu"))
    x = torch.zeros((batch, *input_shape), device=device)
    net.eval()
    times = []
    for i in range(repeats + 3):
        if device.type == "cuda":
            torch.cuda.synchronize()
        tic = time.perf_counter()
        net(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= 3:
            times.append((time.perf_counter() - tic) * 1000)
    return sorted(times)[len(times) // 2]
