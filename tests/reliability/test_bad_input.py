"""Bad training input gets one line naming the key and value, before anything is trained."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from supernet.errors import SharenasError
from supernet.local_data import CIFAR_BATCHES, load_cifar10
from supernet.training import train
from tests.conftest import compose_tiny, write_cifar10_binary
from tests.reliability.procs import error_line, run_cli

BAD = {
    "seed=99999999999999999999999": "seed must be an integer in [0, 4294967295]",
    "data.seed=99999999999999999999999": "data.seed must be an integer in [0, 4294967295]",
    "trainer.scheduler.T_max=0": "trainer.scheduler.T_max must be an integer >= 1, got 0",
    "trainer.optimizer.lr=nan": "trainer.optimizer.lr must be a finite number, got nan",
    "trainer.optimizer.lr=inf": "trainer.optimizer.lr must be a finite number, got inf",
    "trainer.optimizer.weight_decay=nan": "trainer.optimizer.weight_decay must be a finite",
    "trainer.optimizer.momentum=nan": "trainer.optimizer.momentum must be a finite number",
    "trainer.optimizer.lr=abc": "trainer.optimizer.lr must be a number, got 'abc'",
    "+trainer.scheduler.eta_min=abc": "trainer.scheduler.eta_min must be a number, got 'abc'",
}


@pytest.mark.fault("bad training setting (overflow, nan, 0, text)", outcome="refused clearly")
@pytest.mark.parametrize("override", sorted(BAD))
def test_a_bad_setting_is_one_line_naming_the_key(tmp_path, override):
    with pytest.raises(SharenasError) as err:
        train(compose_tiny("train", [override]), out_dir=tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and BAD[override] in msg, msg
    assert not (tmp_path / "tb").exists()  # refused before training


@pytest.mark.fault("bad training setting (overflow, nan, 0, text)", outcome="refused clearly")
@pytest.mark.parametrize("override", ["seed=99999999999999999999999", "trainer.optimizer.lr=abc"])
def test_the_cli_gives_one_line_and_no_traceback(tmp_path, override):
    line = error_line(run_cli("train.py", [override, f"hydra.run.dir={tmp_path}"]))
    assert BAD[override] in line


def _python_batch(path, images: int, labels: int) -> None:
    data = np.zeros((images, 3072), dtype=np.uint8)
    with path.open("wb") as fh:
        pickle.dump({b"data": data, b"labels": list(range(labels))}, fh)


@pytest.mark.fault("CIFAR-10 batch with 10 images and 3 labels", outcome="refused clearly")
def test_a_python_batch_with_fewer_labels_than_images_is_refused(tmp_path):
    for name in CIFAR_BATCHES:
        _python_batch(tmp_path / name, 10, 10)
    _python_batch(tmp_path / "data_batch_3", 10, 3)
    with pytest.raises(SharenasError) as err:
        load_cifar10(str(tmp_path))
    msg = str(err.value)
    assert "\n" not in msg and "data_batch_3" in msg and "10 images but 3 labels" in msg


@pytest.mark.fault("CIFAR-10 batch with 10 images and 3 labels", outcome="refused clearly")
def test_a_truncated_binary_batch_is_refused(tmp_path):
    write_cifar10_binary(tmp_path)
    batch = tmp_path / "data_batch_2.bin"
    batch.write_bytes(batch.read_bytes()[:-100])
    with pytest.raises(SharenasError, match="data_batch_2.bin.*not a multiple"):
        load_cifar10(str(tmp_path))
