"""Registries by name, filled by a class decorator (as timm's ``register_model``).

Every registry of sharenas is a ``Registry``: spaces, supernets, sharing strategies, path
samplers and searchers. A class registers itself under its ``name`` class attribute (or the
attribute the registry is keyed by)::

    @register_strategy
    class FullSharing(SharingStrategy):
        name = "full"

Looking up a name that is not registered raises ``UnknownNameError`` listing the registered ones,
so a name read from a config or a checkpoint fails in one line.
"""

from __future__ import annotations

from typing import TypeVar

from supernet.errors import UnknownNameError

T = TypeVar("T", bound=type)


class Registry(dict[str, T]):
    """Name -> registered class; ``register`` is the decorator, ``kind`` names it in errors."""

    def __init__(self, kind: str, key: str = "name") -> None:
        super().__init__()
        self.kind = kind
        self.key = key

    def register(self, cls: T) -> T:
        """Register ``cls`` under its ``key`` attribute. Another class under a taken name is
        refused (the same class again, e.g. from a reloaded module, replaces it)."""
        name = getattr(cls, self.key, None)
        if not isinstance(name, str) or not name:
            raise TypeError(f"{cls.__name__} needs a {self.key!r} class attribute to register")
        old = self.get(name)
        if old is not None and _path(old) != _path(cls):
            raise ValueError(f"{self.kind} {name!r} is already registered by {_path(old)}")
        self[name] = cls
        return cls

    def __missing__(self, name: str) -> T:
        raise UnknownNameError(self.kind, name, self)

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self)


def _path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


__all__ = ["Registry"]
