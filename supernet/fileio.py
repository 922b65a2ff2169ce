"""Atomic file writes shared by checkpoints and search results (no torch import here)."""

from __future__ import annotations

import glob
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def umask() -> int:
    """The process umask, read without changing it where Linux allows (``/proc/self/status``);
    elsewhere by setting and restoring it, which briefly races with threads creating files."""
    try:
        status = Path("/proc/self/status").read_text()
        return int(re.search(r"^Umask:\s*([0-7]+)", status, re.MULTILINE).group(1), 8)  # type: ignore[union-attr]
    except (OSError, AttributeError):
        mask = os.umask(0)
        os.umask(mask)
        return mask


def temp_prefix(path: str | os.PathLike) -> str:
    """The name prefix of ``write_atomic``'s temp files for ``path``."""
    return f".{Path(path).name}."


def clean_orphans(path: str | os.PathLike) -> list[Path]:
    """Remove the temp files an interrupted ``write_atomic(path)`` left (a process killed while
    writing); returns them. Call it when no other process writes ``path``."""
    path = Path(path)
    orphans = sorted(path.parent.glob(f"{glob.escape(temp_prefix(path))}*.tmp"))
    for orphan in orphans:
        orphan.unlink(missing_ok=True)
    return orphans


def write_atomic(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write(file)`` on a temp file next to ``path``, sync it, give it the mode of a
    normally created file (mkstemp makes 0600) and rename it into place: a crash never leaves a
    half-written ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
