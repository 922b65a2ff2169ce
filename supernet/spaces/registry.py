"""Search-space registry: ``@register_space``, ``build_space(name, **kw)``, ``list_spaces()``."""

from __future__ import annotations

from collections.abc import Callable

from supernet.errors import UnknownNameError
from supernet.spaces.base import Space

_SPACES: dict[str, Callable[..., Space]] = {}


def register_space(name: str) -> Callable[[type[Space]], type[Space]]:
    """Register a ``Space`` subclass under ``name`` (also its ``name`` attribute)."""

    def deco(cls: type[Space]) -> type[Space]:
        cls.name = name
        _SPACES[name] = cls
        return cls

    return deco


def list_spaces() -> list[str]:
    """Names of the registered spaces."""
    return sorted(_SPACES)


def build_space(name: str, **kwargs: object) -> Space:
    """Build a registered space by name; an unknown name lists the registered ones."""
    if name not in _SPACES:
        raise UnknownNameError("space", name, _SPACES)
    return _SPACES[name](**kwargs)


__all__ = ["build_space", "list_spaces", "register_space"]
