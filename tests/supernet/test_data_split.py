"""The train / val / test split of a seed never changes: a checkpoint trained by an earlier
version is ranked on the same validation images. The split is a seeded NumPy permutation;
sklearn's train_test_split, stratified or not, would put other images in each split (on digits,
seed 0, only 71 of the 359 validation images stay), so it is not used."""

from __future__ import annotations

import hashlib

from supernet.data import load_splits

#: split -> (size, sha256 of its labels in order, first labels) for digits, seed 0, 0.2 / 0.2.
DIGITS_SEED0 = {
    "train": (1079, "ccd917b08366ef89", [5, 0, 6, 6, 9, 2, 8, 8, 3, 1, 5, 9]),
    "val": (359, "e89db1450a76a0e7", [0, 4, 9, 5, 8, 5, 3, 3, 9, 7, 1, 8]),
    "test": (359, "356b82d388a4a048", [6, 6, 6, 2, 5, 6, 6, 2, 2, 1, 1, 9]),
}


def test_the_digits_split_of_seed_0_is_the_one_earlier_versions_made() -> None:
    splits = load_splits("digits", seed=0)
    for name, (size, digest, first) in DIGITS_SEED0.items():
        labels = getattr(splits, name).tensors[1]
        assert len(labels) == size, name
        assert hashlib.sha256(labels.numpy().tobytes()).hexdigest()[:16] == digest, name
        assert labels[:12].tolist() == first, name


def test_another_seed_gives_another_split() -> None:
    labels = load_splits("digits", seed=1).val.tensors[1]
    assert hashlib.sha256(labels.numpy().tobytes()).hexdigest()[:16] != DIGITS_SEED0["val"][1]
