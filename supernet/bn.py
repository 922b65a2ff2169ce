"""BatchNorm recalibration: re-estimate BN statistics of one path on a fixed calibration set.

Shared supernet BN statistics mix every path trained; a path's own statistics are re-estimated
before it is scored (standard in SPOS / OFA evaluation). The calibration set is fixed and cached, so
every arch sees the same batches.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import update_bn
from torch.utils.data import TensorDataset


class BatchNormCalibrator:
    """Recalibrates BN running statistics of a module on a fixed subset of the training data.

    The subset is the first ``batches * batch_size`` samples of a permutation seeded by ``seed``.
    """

    def __init__(self, data: TensorDataset, batches: int = 4, batch_size: int = 64, seed: int = 0):
        n = min(len(data), batches * batch_size)
        idx = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n]
        x = data.tensors[0][idx]
        self.batch_size = batch_size
        self.batches = list(x.split(batch_size))

    def __getstate__(self) -> dict:
        """Pickled as one tensor: a view pickles its whole storage, so each batch would carry
        the whole calibration set again (Ray ships the evaluator to its workers)."""
        state = self.__dict__.copy()
        state["batches"] = torch.cat(self.batches) if self.batches else None
        return state

    def __setstate__(self, state: dict) -> None:
        x = state.pop("batches")
        self.__dict__.update(state)
        self.batches = list(x.split(self.batch_size)) if x is not None else []

    def __call__(self, module: nn.Module, first: int | None = None) -> nn.Module:
        """Reset BN stats to a cumulative average over the calibration batches, or over the
        ``first`` of them (``torch.optim.swa_utils.update_bn``: reset, ``momentum=None``, one pass
        in train mode); leaves ``module`` in eval mode."""
        device = next((p.device for p in module.parameters()), torch.device("cpu"))
        update_bn(self.batches[:first], module, device)
        # update_bn restores the mode it found: a walk over every module is saved when that was eval
        return module.eval() if module.training else module
