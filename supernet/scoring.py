"""Scoring a network: (optionally) recalibrate its BatchNorm statistics, then accuracy and loss.

The one place where "recalibrate, then score" is written: the trainer's per-epoch validation, the
search's evaluator and the standalone (ground-truth) trainer all call ``score``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import TensorDataset

from supernet.bn import BatchNormCalibrator


@dataclass(frozen=True)
class Score:
    """Top-1 accuracy (%) and mean cross-entropy over the scored images."""

    acc: float
    loss: float


def batches_of(data: TensorDataset, batch_size: int = 500) -> list[tuple[torch.Tensor, ...]]:
    """``data`` as a list of (x, y) batches in order (views, no copy)."""
    return list(zip(*(t.split(batch_size) for t in data.tensors), strict=True))


@torch.no_grad()
def score(
    net: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    calibrator: BatchNormCalibrator | None = None,
    device: torch.device | str | None = None,
) -> Score:
    """``net``'s accuracy and loss over ``batches`` in eval mode, after recalibrating its BN
    statistics with ``calibrator`` when one is given (a net with inherited weights); a net trained
    on its own keeps its statistics (``calibrator=None``)."""
    device = torch.device(device) if device is not None else _device_of(net)
    net = calibrator(net) if calibrator is not None else net.eval()
    return tally((net(x.to(device)), y.to(device)) for x, y in batches)


def tally(outputs: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> Score:
    """Accuracy and mean loss of (logits, labels) batches, summed in order (``score``'s sums: a
    scorer that computes the logits another way gets the same figures from the same logits)."""
    correct, loss, n = 0, 0.0, 0
    for logits, y in outputs:
        loss += nn.functional.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
        n += len(y)
    return Score(100.0 * correct / max(n, 1), loss / max(n, 1))


def _device_of(net: nn.Module) -> torch.device:
    return next((p.device for p in net.parameters()), torch.device("cpu"))
