"""Train a standalone (extracted or from-scratch) network with a fixed recipe: ground truth."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.utils.data import TensorDataset

from supernet.data import make_loader
from supernet.scoring import batches_of, score


@dataclass(frozen=True)
class StandaloneRecipe:
    """Fixed training recipe for ground truth; cached with the results it produced."""

    epochs: int = 6
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4

    def to_dict(self) -> dict:
        return asdict(self)


def accuracy(net: nn.Module, data: TensorDataset, batch_size: int = 500) -> float:
    """Top-1 accuracy (%) of a standalone net on a dataset, in eval mode, with the BN statistics
    it trained (``supernet.scoring.score`` without recalibration)."""
    return score(net, batches_of(data, batch_size)).acc


def train_standalone(
    net: nn.Module, train: TensorDataset, recipe: StandaloneRecipe, seed: int
) -> nn.Module:
    """SGD + cosine from the net's current weights; ``seed`` fixes init order and batches."""
    torch.manual_seed(seed)
    loader = make_loader(train, recipe.batch_size, shuffle=True, seed=seed, drop_last=True)
    opt = torch.optim.SGD(
        net.parameters(),
        lr=recipe.lr,
        momentum=recipe.momentum,
        weight_decay=recipe.weight_decay,
        nesterov=True,
    )
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, recipe.epochs * len(loader))
    net.train()
    for _ in range(recipe.epochs):
        for x, y in loader:
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
            sched.step()
    return net
