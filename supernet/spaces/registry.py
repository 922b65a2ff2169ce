"""Search-space registry: ``@register_space`` (by ``name``), ``build_space(name, **kw)``."""

from __future__ import annotations

from supernet.registry import Registry
from supernet.spaces.base import Space

#: Registered spaces by ``name`` (``@register_space``).
SPACES: Registry[type[Space]] = Registry("space")
register_space = SPACES.register


def list_spaces() -> list[str]:
    """Names of the registered spaces."""
    return SPACES.names()


def build_space(name: str, **kwargs: object) -> Space:
    """Build a registered space by name; an unknown name lists the registered ones."""
    return SPACES[name](**kwargs)


__all__ = ["SPACES", "build_space", "list_spaces", "register_space"]
