"""Backends: where evaluations run. ``local`` (in process) or ``ray`` (Ray Tune)."""

from __future__ import annotations

from search.backends.local import LocalBackend

__all__ = ["LocalBackend"]
