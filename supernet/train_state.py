"""``TrainState``: what a supernet checkpoint holds, as one typed record.

The trainer writes it, and the trainer (resume), the builder (``load_trained``) and the search read
it; only this module knows the checkpoint's keys. Files go through ``supernet.checkpoint``: atomic
writes, ``torch.load(weights_only=True)``, format version, config read as data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from supernet.checkpoint import FORMAT_VERSION, load_checkpoint, save_checkpoint


@dataclass
class TrainState:
    """A supernet after ``epoch`` epochs: weights, partition, optimizer/scheduler/sampler/RNG state,
    the config it was trained with (names and plain values) and its metrics."""

    space: str  # the registered space's name
    config: dict[str, Any]  # stored form (supernet.file_config): rebuilt by registered names
    sharing: dict[str, Any]  # the strategy's partition (SharingStrategy.sharing_state)
    model: dict[str, Any]  # state_dict of every sub-supernet
    epoch: int  # epochs done
    optimizer: dict[str, Any] | None = None
    scheduler: dict[str, Any] | None = None
    sampler: dict[str, Any] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)  # of the last epoch
    rng: dict[str, Any] = field(default_factory=dict)  # torch / loader / augment generator states
    ema: dict[str, Any] | None = None  # average of the weights (trainer.ema_decay), if kept
    format_version: int = FORMAT_VERSION  # of the file it was read from

    @property
    def sharing_name(self) -> str:
        """The registered name of the sharing strategy."""
        return str(self.sharing["name"])

    @property
    def ema_decay(self) -> float | None:
        """The EMA's decay, or None when the checkpoint keeps no average."""
        return None if self.ema is None else float(self.ema["decay"])

    def to_payload(self) -> dict[str, Any]:
        """The checkpoint's dict (keys without a value are left out)."""
        payload = {f.name: getattr(self, f.name) for f in fields(self)}
        payload.pop("format_version")  # save_checkpoint writes the current one
        return {k: v for k, v in payload.items() if v is not None}

    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically to ``path`` (refuses non-finite weights: nothing is replaced)."""
        return save_checkpoint(path, self.to_payload())

    @classmethod
    def load(cls, path: str | os.PathLike, space: str | None = None) -> TrainState:
        """Read and check a checkpoint (``supernet.checkpoint.load_checkpoint``)."""
        payload = load_checkpoint(path, space=space)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in payload.items() if k in known})
