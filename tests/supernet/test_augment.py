"""Training-time augmentation (``trainer.augment``) and label smoothing: what they do to a batch,
their seeds and checkpointed state, and their config checks."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from supernet.augment import BatchAugment
from supernet.checkpoint import load_checkpoint
from supernet.errors import SharenasError
from supernet.training import train
from tests.conftest import compose_tiny

AUGMENTED = [
    "trainer.augment.crop_pad=1",
    "trainer.augment.hflip=true",
    "trainer.label_smoothing=0.1",
    "trainer.epochs=2",
]


def batch(n: int = 64) -> torch.Tensor:
    return torch.randn(n, 2, 6, 5, generator=torch.Generator().manual_seed(0))


def test_off_is_the_identity():
    x = batch()
    assert BatchAugment()(x) is x


def test_each_shifted_image_is_a_window_of_the_padded_image():
    x = batch()
    y = BatchAugment(crop_pad=2, seed=3, fill=-7.0)(x)
    assert y.shape == x.shape
    padded = F.pad(x, (2, 2, 2, 2), value=-7.0)
    offsets = []
    for i in range(len(x)):
        found = [
            (r, c)
            for r in range(5)
            for c in range(5)
            if torch.equal(y[i], padded[i, :, r : r + 6, c : c + 5])
        ]
        assert found, f"image {i} is no window of its padded original"
        offsets.append(found[0])
    assert len(set(offsets)) > 10  # offsets vary over the batch (25 possible)
    assert any(r != 2 or c != 2 for r, c in offsets) and (y == -7.0).any()


def test_flips_mirror_about_half_the_images():
    x = batch(200)
    y = BatchAugment(hflip=True, seed=1)(x)
    flipped = [torch.equal(y[i], x[i].flip(-1)) for i in range(len(x))]
    kept = [torch.equal(y[i], x[i]) for i in range(len(x))]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 60 < sum(flipped) < 140


def test_same_seed_same_batches_and_the_state_round_trips():
    x = batch()
    a, b = BatchAugment(1, True, seed=5), BatchAugment(1, True, seed=5)
    assert torch.equal(a(x), b(x))
    assert not torch.equal(a(x), BatchAugment(1, True, seed=6)(x))
    state = a.get_state()
    first = a(x)
    a.set_state(state)
    assert torch.equal(a(x), first)


def test_its_stream_is_not_the_shuffles():
    """The loader's shuffle generator has the run's seed; the augmentation's must differ."""
    shuffle = torch.Generator().manual_seed(5)
    assert not torch.equal(BatchAugment(1, seed=5).get_state(), shuffle.get_state())


def test_a_shift_as_large_as_the_image_is_refused_before_training(tmp_path):
    """The other ranges are checked with the config (tests/test_configs.py); this one needs the
    data's image size."""
    with pytest.raises(SharenasError) as err:
        train(compose_tiny("train", ["trainer.augment.crop_pad=8"]), out_dir=tmp_path)
    assert "trainer.augment.crop_pad=8 must be smaller than the 8x8" in str(err.value)
    assert not (tmp_path / "supernet.pt").exists()


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("plain")
    train(compose_tiny("train", ["trainer.epochs=2"]), out_dir=out)
    return load_checkpoint(out / "supernet.pt")["model"]


@pytest.mark.parametrize(
    "option",
    ["trainer.augment.crop_pad=1", "trainer.augment.hflip=true", "trainer.label_smoothing=0.1"],
)
def test_each_option_reaches_the_training_step(option, plain, tmp_path, capsys):
    train(compose_tiny("train", [option, "trainer.epochs=2"]), out_dir=tmp_path)
    model = load_checkpoint(tmp_path / "supernet.pt")["model"]
    assert any(not torch.equal(v, plain[k]) for k, v in model.items())
    if "hflip" in option:
        assert "mirrors digits's images" in capsys.readouterr().out


def test_augmented_training_resumes_bit_identically(tmp_path):
    straight, halves = tmp_path / "straight", tmp_path / "halves"
    train(compose_tiny("train", AUGMENTED), out_dir=straight)
    train(compose_tiny("train", [*AUGMENTED, "trainer.stop_after=1"]), out_dir=halves)
    train(compose_tiny("train", [*AUGMENTED, "trainer.resume=true"]), out_dir=halves)
    ref, resumed = (load_checkpoint(d / "supernet.pt") for d in (straight, halves))
    assert ref["model"].keys() == resumed["model"].keys()
    for key, value in ref["model"].items():
        assert torch.equal(value, resumed["model"][key]), key
    assert torch.equal(ref["rng"]["augment"], resumed["rng"]["augment"])
