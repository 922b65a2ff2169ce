"""Shared test helpers: compose the real Hydra configs, shrunk to tiny CPU sizes."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

# Ray on loopback, without usage reports, whether or not the caller exported these (.ci/run
# does): by default Ray binds to the outward address, and where only 127.0.0.1 is reachable
# the first test that joins a `ray start` head waits for ever. Set before anything imports Ray.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import pytest  # noqa: E402
import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from search.cli import register_configs  # noqa: E402
from supernet.cli import override_key  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONF_DIR = REPO / "conf"

# A supernet that trains in well under a second per epoch on one CPU thread.
TINY_TRAIN = (
    "data=digits",
    "space.macro.channels=4",
    "trainer.epochs=1",
    "trainer.steps_per_epoch=3",
    "trainer.progress=false",
    "trainer.num_threads=1",
    "recipe=legacy",  # mechanics tests pin the recipe; tests/test_recipe.py checks the default
)
# Extra shrinking for the search root config.
TINY_SEARCH = (
    "searcher.n_trials=5",
    "backend.progress=false",
    "evaluator.count_flops=false",
    "evaluator.calib_batches=2",
    "verify=off",  # tests of the verify stage turn it on (tests/search/test_verify.py)
)


def compose_config(config_name: str, overrides: Sequence[str] = ()) -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` with ``overrides``, exactly as the scripts do."""
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name=config_name, overrides=list(overrides))


def tiny_overrides(config_name: str, overrides: Sequence[str] = ()) -> list[str]:
    """The tiny defaults for ``config_name``; an override of the same key replaces a default."""
    defaults = list(TINY_TRAIN) + (list(TINY_SEARCH) if config_name == "search" else [])
    mine = {override_key(o) for o in overrides}
    return [o for o in defaults if override_key(o) not in mine] + list(overrides)


def compose_tiny(config_name: str = "train", overrides: Sequence[str] = ()) -> DictConfig:
    return compose_config(config_name, tiny_overrides(config_name, overrides))


@pytest.fixture
def tiny_cfg() -> Callable[..., DictConfig]:
    """``tiny_cfg(config_name="train", overrides=())``: a composed config at tiny CPU sizes."""
    return compose_tiny


#: Tests that join a `ray start` head run first: Ray reads its auth mode once per process, and a
#: local instance started earlier in the process (which writes ~/.ray/auth_token) leaves the head
#: and the driver disagreeing. Tests that start token-auth heads and kill workers run last.
FIRST = ("tests/search/test_ray_backend.py", "tests/search/test_verify.py::test_ray_path")
LAST = ("tests/reliability/test_ray_faults.py",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def place(item: pytest.Item) -> int:
        return 0 if item.nodeid.startswith(FIRST) else 2 if item.nodeid.startswith(LAST) else 1

    items.sort(key=place)  # stable: the order is kept otherwise


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    """Tiny models run faster on one thread, and the suite shares the machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def write_image_folder(root: Path, classes: int = 3, per_class: int = 8, side: int = 10) -> Path:
    """``root/<class>/<i>.png`` of random RGB images whose mean colour tells the class apart."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(classes):
        folder = root / f"class_{c}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 80, (side, side, 3)) + 60 * c
            Image.fromarray(pixels.astype("uint8")).save(folder / f"{i}.png")
    return root


def write_cifar10_binary(root: Path, per_batch: int = 6) -> Path:
    """Six CIFAR-10 binary batch files of ``per_batch`` random records (label byte + 3072)."""
    import numpy as np

    from supernet.local_data import CIFAR_BATCHES, CIFAR_RECORD

    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for name in CIFAR_BATCHES:
        records = rng.integers(0, 256, (per_batch, CIFAR_RECORD), dtype=np.uint8)
        records[:, 0] = np.arange(per_batch) % 10
        records.tofile(root / f"{name}.bin")
    return root
