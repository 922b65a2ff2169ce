"""Arch: an immutable, hashable mapping decision -> choice with a canonical string form."""

from __future__ import annotations

from collections.abc import Iterator, Mapping


class Arch(Mapping[str, str]):
    """One point of a search space.

    Built by a ``Space`` (``space.make`` / ``space.parse``), which validates it and computes its
    canonical string. ``str(arch)`` is that string; equality and hashing use the decisions only.
    """

    __slots__ = ("_items", "_text", "_index")

    def __init__(self, items: Mapping[str, str], text: str) -> None:
        self._items = tuple(items.items())
        self._index = dict(self._items)
        self._text = text

    def __getitem__(self, key: str) -> str:
        return self._index[key]

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Arch):
            return self._items == other._items
        return NotImplemented

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"Arch({self._text!r})"

    def __reduce__(self):  # picklable for Ray workers
        return (Arch, (self._index, self._text))
