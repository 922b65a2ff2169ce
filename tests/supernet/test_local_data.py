"""Datasets read from disk: files the tests write themselves, read back as the user's would be."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from supernet.builder import load_trained
from supernet.data import load_splits
from supernet.errors import SharenasError
from supernet.local_data import CIFAR_BATCHES, load_cifar10, load_image_folder
from supernet.training import train
from tests.conftest import compose_tiny, write_cifar10_binary, write_image_folder


def test_image_folder_reads_classes_in_sorted_order(tmp_path):
    root = write_image_folder(tmp_path / "imgs", classes=3, per_class=4, side=10)
    images, labels, classes = load_image_folder(str(root), image_size=8)
    assert classes == ["class_0", "class_1", "class_2"]
    assert images.shape == (12, 3, 8, 8) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    # the writer makes each class brighter than the one before: the pixels were really read
    means = [images[labels == c].mean() for c in range(3)]
    assert means[0] < means[1] < means[2]
    gray, _, _ = load_image_folder(str(root), image_size=8, channels=1)
    assert gray.shape == (12, 1, 8, 8)


def test_image_folder_splits_are_seeded_and_feed_a_training_run(tmp_path):
    root = write_image_folder(tmp_path / "imgs", classes=3, per_class=20)
    a = load_splits("imagefolder", path=str(root), image_size=8, seed=1)
    b = load_splits("imagefolder", path=str(root), image_size=8, seed=1)
    assert torch.equal(a.train.tensors[0], b.train.tensors[0])
    assert (a.in_channels, a.image_size, a.num_classes) == (3, 8, 3)
    assert len(a.train) + len(a.val) + len(a.test) == 60
    tiny = ["data=imagefolder", f"data.path={root}", "data.image_size=8"]
    with pytest.raises(SharenasError, match="has 36 images, fewer than trainer.batch_size=64"):
        train(compose_tiny("train", tiny), out_dir=tmp_path / "run")
    cfg = compose_tiny("train", [*tiny, "trainer.batch_size=16"])
    metrics = train(cfg, out_dir=tmp_path / "run")
    assert metrics["epoch"] == 1
    built, _ = load_trained(tmp_path / "run" / "supernet.pt")
    assert built.macro.in_channels == 3 and built.splits.name == "imagefolder"


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda p: None, "needs data.path"),
        (lambda p: str(p / "missing"), "is not a directory"),
        (lambda p: str(write_image_folder(p / "one", classes=1)), "at least 2 class sub-folders"),
    ],
)
def test_image_folder_bad_paths_are_one_line(tmp_path, make, words):
    with pytest.raises(SharenasError, match=words):
        load_image_folder(make(tmp_path))


def test_image_folder_names_an_empty_class_and_an_unreadable_image(tmp_path):
    root = write_image_folder(tmp_path / "imgs", classes=2)
    (root / "class_9").mkdir()
    with pytest.raises(SharenasError, match="class_9.*holds no image"):
        load_image_folder(str(root))
    (root / "class_9" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(SharenasError, match="cannot read image .*broken.png"):
        load_image_folder(str(root))


def test_cifar10_binary_and_python_versions_read_the_same_images(tmp_path):
    binary = write_cifar10_binary(tmp_path / "cifar-10-batches-bin", per_batch=6)
    images, labels = load_cifar10(str(tmp_path))  # found in the sub-folder
    assert images.shape == (36, 3, 32, 32) and labels.tolist() == list(range(6)) * 6
    python = tmp_path / "py"
    python.mkdir()
    for name in CIFAR_BATCHES:
        records = np.fromfile(binary / f"{name}.bin", dtype=np.uint8).reshape(6, -1)
        batch = {b"data": records[:, 1:].copy(), b"labels": records[:, 0].tolist()}
        (python / name).write_bytes(pickle.dumps(batch))
    again, labels_again = load_cifar10(str(python))
    assert np.array_equal(images, again) and np.array_equal(labels, labels_again)
    splits = load_splits("cifar10", path=str(tmp_path))
    assert splits.classes[:2] == ("airplane", "automobile") and len(splits.classes) == 10


class _Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_cifar10_python_batches_cannot_run_code(tmp_path, capsys):
    for name in CIFAR_BATCHES:
        (tmp_path / name).write_bytes(pickle.dumps({b"data": _Payload(), b"labels": [0]}))
    with pytest.raises(SharenasError, match=r"not a CIFAR-10 python batch: refusing \S*print"):
        load_cifar10(str(tmp_path))
    assert "must never run" not in capsys.readouterr().out


def test_cifar10_missing_or_truncated_batches_are_named(tmp_path):
    with pytest.raises(SharenasError, match="no complete set of CIFAR-10 batches under"):
        load_cifar10(str(tmp_path))
    partial = write_cifar10_binary(tmp_path / "partial", per_batch=2)
    (partial / "data_batch_4.bin").unlink()
    with pytest.raises(SharenasError, match="partial' lacks data_batch_4$"):
        load_cifar10(str(partial))
    root = write_cifar10_binary(tmp_path / "c", per_batch=2)
    (root / "test_batch.bin").write_bytes(b"\x00" * 100)
    with pytest.raises(SharenasError, match="test_batch.bin.*not a multiple"):
        load_cifar10(str(root))


def test_limit_keeps_a_seeded_subset_and_path_is_refused_for_embedded_sets(tmp_path):
    small = load_splits("digits", limit=300, seed=3)
    assert len(small.train) + len(small.val) + len(small.test) == 300
    assert small.num_classes == 10
    again = load_splits("digits", limit=300, seed=3)
    assert torch.equal(small.val.tensors[0], again.val.tensors[0])
    with pytest.raises(SharenasError, match="data.path is read by imagefolder and cifar10 only"):
        load_splits("digits", path=str(tmp_path))


def test_a_limit_above_the_dataset_says_that_all_images_are_used(capsys):
    splits = load_splits("digits", limit=5000)
    assert len(splits.train) + len(splits.val) + len(splits.test) == 1797
    assert "data.limit=5000 is more than the 1797 images of digits: all are used" in (
        capsys.readouterr().err
    )


def test_a_limit_that_empties_a_split_is_refused():
    with pytest.raises(SharenasError, match=r"leave a split empty \(train 4, val 0, test 0\)"):
        load_splits("digits", limit=4)


def test_a_search_reads_moved_data_from_the_path_it_is_given(tmp_path, capsys):
    import search

    root = write_image_folder(tmp_path / "imgs", classes=3, per_class=20)
    tiny = ["data=imagefolder", f"data.path={root}", "data.image_size=8", "trainer.batch_size=16"]
    train(compose_tiny("train", tiny), out_dir=tmp_path / "run")
    moved = root.rename(tmp_path / "moved")
    checkpoint = f"supernet.checkpoint={tmp_path / 'run' / 'supernet.pt'}"
    with pytest.raises(SharenasError, match="pass data=imagefolder data.path=NEW_DIR"):
        search.run(compose_tiny("search", [checkpoint]), out_dir=tmp_path / "s0")
    cfg = compose_tiny("search", [checkpoint, "data=imagefolder", f"data.path={moved}"])
    out = search.run(cfg, out_dir=tmp_path / "s1")
    assert len(out["records"]) == 5
    assert f"data.path: reading {moved}" in capsys.readouterr().out
    exported = json.loads((tmp_path / "s1" / "best" / "record.json").read_text())
    assert exported["classes"] == ["class_0", "class_1", "class_2"]  # logit i: sub-folder i
