"""Model builders: the macro skeleton, the NB201 supernet and the mbv3 (MobileNetV3) supernet.

``build_supernet(space, macro)`` picks the supernet registered for the space's name.
"""

from __future__ import annotations

from supernet.models.macro import Macro, MacroNet, StandaloneNet, count_params
from supernet.models.mobilenet import MobileNetSupernet  # registers the mbv3 supernet
from supernet.models.nb201 import Supernet  # registers the nb201 supernet
from supernet.models.registry import (
    build_supernet,
    list_supernets,
    register_supernet,
    standalone_from_scratch,
)

__all__ = [
    "Macro",
    "MacroNet",
    "MobileNetSupernet",
    "StandaloneNet",
    "Supernet",
    "build_supernet",
    "count_params",
    "list_supernets",
    "register_supernet",
    "standalone_from_scratch",
]
