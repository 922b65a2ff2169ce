"""A run's config as it is stored in a file: names and plain values, never code.

The configs a user writes (``conf/``, the command line) build objects with ``_target_``. A
checkpoint stores the same config with every object named instead: ``sharing.name`` and
``sampler.name`` are keys of the registries (``STRATEGIES``, ``SAMPLERS``), ``data.name`` one of
``DATASETS``, and the optimizer and scheduler are recorded by their class path for comparison only.
Reading a file, any Hydra key (``_target_``, ``_partial_``, ``_args_``, ...) at any depth is
refused with one line naming it. Checkpoints of format 1 stored ``_target_`` at those places; a
value there that is exactly a registered object's path is read as its name (never imported).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

from supernet.data import DATASETS
from supernet.errors import CheckpointError, SharenasError
from supernet.sampling import SAMPLERS
from supernet.sharing import STRATEGIES

#: The keys with which Hydra's ``instantiate`` calls code.
HYDRA_KEYS = ("_target_", "_partial_", "_args_", "_recursive_", "_convert_")
_DATA_TARGET = "supernet.data.load_splits"
_REGISTRIES: dict[str, dict[str, type]] = {"sharing": STRATEGIES, "sampler": SAMPLERS}
_NAMED: dict[str, Any] = {**_REGISTRIES, "data": DATASETS}  # what a stored .name may be
_RECORDED = {"optimizer": "torch.optim.", "scheduler": "torch.optim.lr_scheduler."}
_PLAIN = (str, int, float, bool, type(None))


def _registered_name(group: str, target: object) -> str | None:
    """The registry name of the class at dotted path ``target`` (module or package path)."""
    for name, cls in _REGISTRIES[group].items():
        package = cls.__module__.rpartition(".")[0]
        if target in (f"{cls.__module__}.{cls.__qualname__}", f"{package}.{cls.__qualname__}"):
            return name
    return None


def _hydra_keys(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(key path, value) of every Hydra key at any depth, in mappings and lists alike."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            path = f"{prefix}{key}"
            if key in HYDRA_KEYS:
                yield path, value
            yield from _hydra_keys(value, path + ".")
    elif isinstance(node, list | tuple):
        for i, value in enumerate(node):
            yield from _hydra_keys(value, f"{prefix}{i}.")


def _check_plain(node: Any, path: str, source: str) -> None:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if not isinstance(key, str):
                raise CheckpointError(f"{source}: config key {path}{key!r} is not a string")
            _check_plain(value, f"{path}{key}.", source)
    elif isinstance(node, list | tuple):
        for i, value in enumerate(node):
            _check_plain(value, f"{path}{i}.", source)
    elif not isinstance(node, _PLAIN):
        raise CheckpointError(
            f"{source}: config value {path[:-1]} is a {type(node).__name__}; a config holds "
            "strings, numbers, booleans, None, lists and mappings only"
        )


def config_to_file(config: Mapping[str, Any]) -> dict[str, Any]:
    """The stored form of a resolved config (plain containers): each ``_target_`` replaced by
    the name it is registered under. A target that no registry knows is one line."""
    out = copy.deepcopy(dict(config))
    for group, registry in _REGISTRIES.items():
        node = out.get(group)
        if isinstance(node, dict) and "_target_" in node:
            target = node.pop("_target_")
            name = _registered_name(group, target)
            if name is None:
                raise SharenasError(
                    f"{group}._target_={target!r} is not a registered {group} class, so a "
                    f"checkpoint could not name it; registered: {', '.join(sorted(registry))}"
                )
            out[group] = {"name": name, **node}
    data = out.get("data")
    if isinstance(data, dict) and data.get("_target_", _DATA_TARGET) == _DATA_TARGET:
        data.pop("_target_", None)
    trainer = out.get("trainer")
    for key in _RECORDED:
        node = trainer.get(key) if isinstance(trainer, dict) else None
        if isinstance(node, dict) and "_target_" in node:
            node.pop("_partial_", None)
            trainer[key] = {"name": node.pop("_target_"), **node}
    if hits := list(_hydra_keys(out)):
        path, value = hits[0]
        raise SharenasError(f"{path}={value!r} cannot be stored as data in a checkpoint")
    return out


def _legacy_ok(path: str, value: object) -> bool:
    """Whether a format-1 checkpoint's Hydra key ``path`` is one that version wrote itself."""
    group, _, key = path.partition(".")
    if group in _REGISTRIES and key == "_target_":
        return _registered_name(group, value) is not None
    if path == "data._target_":
        return value == _DATA_TARGET
    head, _, leaf = key.partition(".")
    if group == "trainer" and head in _RECORDED:
        if leaf == "_partial_":
            return value is True
        return leaf == "_target_" and isinstance(value, str) and value.startswith(_RECORDED[head])
    return False


def config_from_file(saved: object, version: int, source: str) -> dict[str, Any]:
    """A config read from a file, checked: plain values only, no Hydra key at any depth (format
    1's own targets are read as names), registered names. ``source`` names the file."""
    if not isinstance(saved, Mapping):
        raise CheckpointError(f"{source}: its config is a {type(saved).__name__}, not a mapping")
    _check_plain(saved, "", source)
    for path, value in _hydra_keys(saved):
        if version >= 2 or not _legacy_ok(path, value):
            raise CheckpointError(
                f"{source}: refusing config key {path}={value!r}: a file's config is data and "
                "is never instantiated (objects are rebuilt by registered name)"
            )
    config = config_to_file(saved)
    for group, registry in _NAMED.items():
        node = config.get(group)
        if node is not None and (not isinstance(node, Mapping) or node.get("name") not in registry):
            got = node.get("name") if isinstance(node, Mapping) else node
            raise CheckpointError(
                f"{source}: config {group}.name={got!r} is not registered; "
                f"registered: {', '.join(sorted(registry))}"
            )
    return config
