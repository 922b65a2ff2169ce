"""Backends: where evaluations run. ``local`` (in process) or ``ray`` (Ray Tune)."""

from __future__ import annotations

from typing import Any

from search.backends.local import LocalBackend

__all__ = ["LocalBackend", "RayBackend"]


def __getattr__(name: str) -> Any:
    """``RayBackend`` is imported on first use: importing Ray Tune takes seconds."""
    if name == "RayBackend":
        from search.backends.ray_backend import RayBackend

        return RayBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
