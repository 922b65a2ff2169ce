"""Supernet registry: ``@register_supernet(space_name)`` and ``build_supernet(space, macro)``."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from torch import nn

from supernet.errors import UnknownNameError
from supernet.models.macro import Macro
from supernet.spaces.base import Space

_BUILDERS: dict[str, Callable[[Space, Macro], nn.Module]] = {}


def register_supernet(space_name: str) -> Callable[[type], type]:
    """Register the supernet class of a space (``forward(x, arch)``, ``extract(arch)``,
    ``param_count(arch)``)."""

    def deco(cls: type) -> type:
        _BUILDERS[space_name] = cls
        return cls

    return deco


def list_supernets() -> list[str]:
    """Names of the spaces that have a supernet."""
    return sorted(_BUILDERS)


def build_supernet(space: Space, macro: Macro) -> nn.Module:
    """Build the supernet for a registered space."""
    if space.name not in _BUILDERS:
        raise UnknownNameError("supernet for space", space.name, _BUILDERS)
    return _BUILDERS[space.name](space, macro)


def standalone_from_scratch(space: Space, macro: Macro, arch: Mapping[str, str]) -> nn.Module:
    """A freshly initialised standalone net for ``arch`` of any registered space (ground truth and
    the verify stage train it): the space's supernet, built from the torch seed, then extracted."""
    return build_supernet(space, macro).extract(arch)


__all__ = ["build_supernet", "list_supernets", "register_supernet", "standalone_from_scratch"]
