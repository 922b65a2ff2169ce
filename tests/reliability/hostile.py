"""Callables that a hostile file points ``_target_`` at: each leaves a marker file when called."""

from __future__ import annotations

import os
from pathlib import Path

MARKER_ENV = "SHARENAS_TEST_MARKER"


def write_marker(*args: object, **kwargs: object) -> str:
    """Write the marker named by ``$SHARENAS_TEST_MARKER`` (or ``marker=``): proof code ran."""
    path = Path(str(kwargs.get("marker") or os.environ[MARKER_ENV]))
    path.write_text("code from a file ran\n")
    return str(path)
