"""Search spaces: ``nb201`` (NAS-Bench-201 cells) and ``mbv3`` (elastic MobileNetV3), by name.

The registry is ``supernet.spaces.registry``; importing this package registers every space.
"""

from __future__ import annotations

from supernet.spaces import mbv3, nb201  # noqa: F401  (register themselves)
from supernet.spaces.base import Space
from supernet.spaces.registry import build_space, list_spaces, register_space

__all__ = ["Space", "build_space", "list_spaces", "register_space"]
