"""Settings derived from the run (``auto`` in the configs), each printed where it is derived.

The benchmarked recipe (``bench/README.md``) was measured at one budget and one image size:
1,350 optimizer steps on 14x14 images, where an EMA decay of 0.998 and random shifts of 2 pixels
ranked best. ``auto`` carries those choices to other runs by the quantity they stand for:

- ``trainer.ema_decay=auto``: the average's time constant ``1 / (1 - decay)`` is a fixed share of
  the run (``EMA_SPAN``: 37%, which is 0.998 at 1,350 steps), so a short run is not dominated by
  its first, untrained weights and a long one still averages over its end;
- ``trainer.augment.crop_pad=auto``: a shift of an eighth of the image side (2 pixels at 14x14, 1 at
  8x8, 4 at 32x32 as the usual CIFAR-10 recipe pads);
- ``evaluator.calib_batches=all`` (``search.evaluate``): BN recalibrated on the whole training
  split, whatever its size.

The CPU trainer's number of epochs follows the dataset (``${epochs_for:${data.name}}`` in
``conf/trainer/cpu.yaml``): ``DATA_EPOCHS`` holds the datasets the recipe was benchmarked on, at the
benchmark's budget (30 epochs of mnist5k's 46 batches: 1,380 optimizer steps, about its 1,350; at
15 the supernet's own estimates ranked worse, ``bench/README.md``); any other dataset gets
``OTHER_EPOCHS``, which keeps the default ``python search.py`` on digits within a minute.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from supernet.errors import SharenasError

AUTO = "auto"
#: CPU training epochs of the datasets the default recipe was benchmarked on (see above).
DATA_EPOCHS = {"mnist5k": 30}
OTHER_EPOCHS = 15
EMA_SPAN = 0.37  # the EMA's time constant as a share of the run's optimizer steps


def ema_decay_for(total_steps: int) -> float:
    """The EMA decay whose time constant is ``EMA_SPAN`` of ``total_steps`` (4 decimals)."""
    return round(1.0 - 1.0 / max(EMA_SPAN * total_steps, 2.0), 4)


def crop_pad_for(image_size: int) -> int:
    """Random-shift pixels for square images of side ``image_size``: an eighth, at least 1."""
    return max(1, math.floor(image_size / 8 + 0.5))


def epochs_for(data_name: object) -> int:
    """The CPU trainer's default epochs for the dataset ``data_name``: the ``${epochs_for:...}``
    resolver of ``conf/trainer/cpu.yaml``."""
    return DATA_EPOCHS.get(str(data_name), OTHER_EPOCHS)


def half(epochs: object) -> int:
    """The middle epoch of a run (at least 1): the ``${half:${trainer.epochs}}`` resolver, where
    the benchmarked few-shot recipe splits (epoch 15 of 30)."""
    return max(1, int(epochs) // 2)  # type: ignore[call-overload]


def or_auto(check: Callable[[str, Any], Any], what: str) -> Callable[[str, Any], Any]:
    """A schema check (``supernet.schema``) that also lets ``auto`` through; any other string
    fails in one line saying ``what`` is allowed besides ``auto``."""

    def run(key: str, value: Any) -> Any:
        if value == AUTO:
            return value
        if isinstance(value, str):
            raise SharenasError(f"{key} must be {what} or 'auto', got {value!r}")
        return check(key, value)

    return run
