"""supernet.registry: every registry of the project registers classes by a class attribute and
names the registered ones when a lookup fails."""

from __future__ import annotations

import pytest

from supernet.errors import UnknownNameError
from supernet.models.registry import SUPERNETS
from supernet.registry import Registry
from supernet.sampling import SAMPLERS
from supernet.sharing import STRATEGIES
from supernet.spaces.registry import SPACES


def test_register_by_class_attribute_and_lookup() -> None:
    things = Registry("thing")

    @things.register
    class A:
        name = "a"

    assert things["a"] is A and things.names() == ["a"] and "a" in things
    things.register(A)  # the same class again is fine
    with pytest.raises(UnknownNameError, match=r"unknown thing 'b'; allowed: a"):
        things["b"]


def test_a_taken_name_or_a_missing_attribute_is_refused() -> None:
    things = Registry("thing", key="space_name")

    @things.register
    class A:
        space_name = "x"

    class B:
        space_name = "x"

    with pytest.raises(ValueError, match="already registered"):
        things.register(B)
    with pytest.raises(TypeError, match="space_name"):
        things.register(type("C", (), {}))


@pytest.mark.parametrize("registry", [SPACES, SUPERNETS, STRATEGIES, SAMPLERS])
def test_the_project_registries_are_registries(registry: Registry) -> None:
    assert isinstance(registry, Registry) and registry.names()
    for name, cls in registry.items():
        assert getattr(cls, registry.key) == name
