"""Checkpoints: atomic writes (temp file + rename), reads with ``torch.load(weights_only=True)``.

A checkpoint holds the supernet weights of every sub-supernet, the sharing strategy's partition,
optimizer / scheduler / sampler / RNG state, the epoch, the space name, the config it was trained
with (names and plain values, ``supernet.file_config``), and a format version. Format 2 stores
objects by registered name; format 1 (``_target_`` paths) still loads.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from supernet.errors import CheckpointError
from supernet.file_config import config_from_file
from supernet.fileio import write_atomic

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
REQUIRED = ("format_version", "space", "config", "sharing", "model", "epoch")


def save_checkpoint(path: str | os.PathLike, payload: dict) -> Path:
    """Write ``payload`` to ``path`` atomically: a crash never leaves a half-written file, and
    weights holding NaN or infinity are refused (the file already there is kept)."""
    check_finite(payload, f"the checkpoint to write to {str(path)!r}")
    payload = {"format_version": FORMAT_VERSION, **payload}
    return write_atomic(path, lambda f: torch.save(payload, f))


def check_output(path: str | os.PathLike, resume: bool, overwrite: bool) -> None:
    """Before training: ``path`` must be a file name in a writable directory, and an existing
    checkpoint there is continued (``resume``) or replaced (``overwrite``), never silently lost."""
    path = Path(path)
    if resume and overwrite:
        raise CheckpointError(
            "trainer.resume=true and trainer.overwrite=true exclude each other; pass one"
        )
    if path.is_dir():
        raise CheckpointError(f"the checkpoint path {str(path)!r} is a directory; remove it")
    if path.exists() and not (resume or overwrite):
        raise CheckpointError(
            f"{str(path)!r} already holds a checkpoint; pass trainer.resume=true to continue it, "
            "a new hydra.run.dir, or trainer.overwrite=true to replace it"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as err:
        raise CheckpointError(
            f"cannot write the checkpoint into {str(path.parent)!r}: {err.strerror or err}"
        ) from None


def checkpoint_space(path: str | os.PathLike) -> str | None:
    """The space a checkpoint was trained on, read without loading its tensors (memory-mapped);
    None when the file cannot be read so (``load_checkpoint`` then says why)."""
    try:
        payload = torch.load(Path(path), map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - unreadable here: the full load reports it in one line
        return None
    space = payload.get("space") if isinstance(payload, dict) else None
    return space if isinstance(space, str) else None


def load_checkpoint(path: str | os.PathLike, space: str | None = None) -> dict:
    """Load and check a checkpoint; ``space`` (if given) must match the one it was trained on."""
    path = Path(path)
    if path.is_dir():
        inside = path / "supernet.pt"
        hint = "pass the supernet.pt train.py wrote"
        if inside.is_file():
            hint = f"pass {str(inside)!r}"
        raise CheckpointError(f"checkpoint {str(path)!r} is a directory, not a file: {hint}")
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {str(path)!r}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt, truncated, or not a weights-only checkpoint
        if "Unsupported global" in str(err) or "GLOBAL" in str(err):
            why = "it holds Python objects that a weights-only load refuses (not a sharenas file)"
        else:
            why = "not a valid PyTorch checkpoint (corrupt, truncated or another kind of file)"
        raise CheckpointError(f"cannot read checkpoint {str(path)!r}: {why}") from None
    if not isinstance(payload, dict) or any(k not in payload for k in REQUIRED):
        missing = [k for k in REQUIRED if not isinstance(payload, dict) or k not in payload]
        raise CheckpointError(
            f"{str(path)!r} is not a sharenas supernet checkpoint: it lacks {', '.join(missing)} "
            f"(an exported model.pt, for one, holds a single net's weights); pass the supernet.pt "
            f"train.py wrote"
        )
    if payload["format_version"] not in READABLE_VERSIONS:
        raise CheckpointError(
            f"{str(path)!r} has format version {payload['format_version']!r}; "
            f"this sharenas reads versions {', '.join(map(str, READABLE_VERSIONS))}"
        )
    if space is not None and payload["space"] != space:
        raise CheckpointError(
            f"checkpoint {str(path)!r} was trained on space {payload['space']!r}, "
            f"not on space {space!r}; pass space={payload['space']}"
        )
    payload["config"] = config_from_file(
        payload["config"], int(payload["format_version"]), f"checkpoint {str(path)!r}"
    )
    check_finite(payload, f"checkpoint {str(path)!r}")
    return payload


def _first_non_finite(state: object, prefix: str) -> str | None:
    if isinstance(state, torch.Tensor):
        if state.is_floating_point() and not bool(torch.isfinite(state).all()):
            return prefix[:-1]
        return None
    if isinstance(state, dict):
        items = state.items()
    elif isinstance(state, list | tuple):
        items = enumerate(state)
    else:
        return None
    for key, value in items:
        if (bad := _first_non_finite(value, f"{prefix}{key}.")) is not None:
            return bad
    return None


def check_finite(payload: dict, source: str) -> None:
    """Refuse weights (and their average) holding NaN or infinity, naming the first tensor."""
    for part in ("model", "ema"):
        if part in payload and (bad := _first_non_finite(payload[part], "")) is not None:
            raise CheckpointError(
                f"{source} holds non-finite weights ({part}: {bad} has NaN or inf); "
                "it cannot be trained on or searched"
            )
