"""Supernet registry: ``@register_supernet`` (by ``space_name``) and ``build_supernet``."""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn

from supernet.models.macro import Macro
from supernet.registry import Registry
from supernet.spaces.base import Space

#: The supernet class of each space, by the space's name (its ``space_name`` attribute): classes
#: with ``forward(x, arch)``, ``extract(arch)`` and ``param_count(arch)``.
SUPERNETS: Registry[type[nn.Module]] = Registry("supernet for space", key="space_name")
register_supernet = SUPERNETS.register


def list_supernets() -> list[str]:
    """Names of the spaces that have a supernet."""
    return SUPERNETS.names()


def build_supernet(space: Space, macro: Macro) -> nn.Module:
    """Build the supernet for a registered space."""
    return SUPERNETS[space.name](space, macro)


def standalone_from_scratch(space: Space, macro: Macro, arch: Mapping[str, str]) -> nn.Module:
    """A freshly initialised standalone net for ``arch`` of any registered space (ground truth and
    the verify stage train it): the space's supernet, built from the torch seed, then extracted."""
    return build_supernet(space, macro).extract(arch)


__all__ = [
    "SUPERNETS",
    "build_supernet",
    "list_supernets",
    "register_supernet",
    "standalone_from_scratch",
]
