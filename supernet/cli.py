"""Command-line boundary helpers for ``train.py`` / ``search.py``: one-line errors, exit codes."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hydra.errors import InstantiationException

from supernet.errors import SharenasError, UnknownNameError

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def group_options(group: str, conf_dir: Path = CONF_DIR, extra: Sequence[Path] = ()) -> list[str]:
    """Options of a config group (YAML files in ``conf/<group>/`` and in the ``extra`` folders)."""
    files = [p for d in (conf_dir, *extra) for p in (d / group).glob("*.yaml")]
    return sorted({p.stem for p in files if not p.stem.startswith("_")})


def searchpath_entries(argv: Sequence[str]) -> list[str]:
    """The entries of a ``hydra.searchpath=[file:///my/conf,...]`` override: config folders a
    user adds to the shipped ones."""
    entries: list[str] = []
    for arg in argv:
        key, _, value = arg.partition("=")
        if key.lstrip("+~") == "hydra.searchpath":
            entries += [e.strip() for e in value.strip().strip("[]").split(",") if e.strip()]
    return entries


def check_group_overrides(argv: list[str], conf_dir: Path = CONF_DIR) -> None:
    """Reject ``group=option`` overrides naming an option that does not exist, in one line
    (options in the user's ``hydra.searchpath`` folders count; ``pkg://`` entries: Hydra checks)."""
    if any(not e.startswith("file://") for e in searchpath_entries(argv)):
        return
    folders = [conf_dir, *_searchpath_folders(argv)]
    for arg in argv:
        key, sep, value = arg.partition("=")
        key = key.lstrip("+~")
        if not sep or "/" in key or not _is_group(arg, folders):
            continue
        if "(" in value or "$" in value:  # sweep functions and interpolations: Hydra checks them
            continue
        allowed = group_options(key, conf_dir, folders[1:])
        for option in value.split(","):  # a multirun sweep: sharing=full,fewshot
            if option not in allowed:
                raise UnknownNameError(key, option, allowed)


def check_key_overrides(config_name: str, argv: list[str], conf_dir: Path = CONF_DIR) -> None:
    """Compose the config with the command line's overrides once, before Hydra runs, so that a
    misspelt key, a key added with ``+`` that the config's schema does not have, or a value of the
    wrong type fails in one line naming the key and what is allowed (Hydra's own message is
    several lines and does not list the keys). A multirun (``-m``) composes each value of each
    sweep once."""
    multirun = any(a in ("-m", "--multirun") for a in argv)
    if any(a.startswith("-") and a not in ("-m", "--multirun") for a in argv):
        return  # Hydra flags (--cfg, --help, ...): leave them to Hydra
    overrides = [a for a in argv if "=" in a and not a.lstrip("+~").startswith("hydra")]
    overrides += [a for a in argv if a.lstrip("+~").startswith("hydra.searchpath=")]
    for run in sweep_runs(overrides) if multirun else [overrides]:
        _check_composed(config_name, run, conf_dir)


#: The most single runs a multirun's overrides are checked as (one per value of each sweep).
MAX_CHECKED_RUNS = 32


def sweep_runs(overrides: list[str]) -> list[list[str]]:
    """The overrides of a multirun as single runs: every sweep (``a=1,2``, ``range(..)``) at its
    first value, then each other value of each sweep in turn (at most ``MAX_CHECKED_RUNS``). A
    sweep whose values cannot be listed (an interval, a glob) is left out: Hydra checks it."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception:  # noqa: BLE001 - a syntax error: composing the overrides reports it
        return [overrides]
    fixed, sweeps = [], []
    for text, override in zip(overrides, parsed, strict=True):
        if not override.is_sweep_override():
            fixed.append(text)
            continue
        try:
            values = list(override.sweep_string_iterator())
        except Exception:  # noqa: BLE001 - not a list of values
            continue
        sweeps.append([f"{override.get_key_element()}={v}" for v in values])
    first = [s[0] for s in sweeps if s]
    runs = [fixed + first]
    for i, sweep in enumerate(sweeps):
        for value in sweep[1:]:
            runs.append(fixed + first[:i] + [value] + first[i + 1 :])
    return runs[:MAX_CHECKED_RUNS]


def _check_composed(config_name: str, overrides: list[str], conf_dir: Path) -> None:
    """One composition of ``overrides``; its failure, or an unknown added key, in one line."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import ConfigCompositionException
    from omegaconf import OmegaConf

    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
            compose(config_name, overrides)
    except ConfigCompositionException as err:
        cause = err.__cause__
        key = getattr(cause, "full_key", None) or ""
        value = next(
            (a.split("=", 1)[1] for a in overrides if a.lstrip("+~").startswith(key + "=")), None
        )
        if "Could not override" in str(err) and key:
            # the override naming the key, a mapping literal holding it (``x.kwargs={a:1}``), or
            # one below it (``search.progress=1``: the unknown key is ``search``)
            given = next(
                (a for a in overrides if _names(a, key) or override_key(a).startswith(key + ".")),
                None,
            )
            given_key = override_key(given) if given else key
            if key.startswith(given_key + "."):  # a dict value with new keys on a struct dict
                raise SharenasError(
                    f"{given_key} has no key {key.rpartition('.')[2]!r} to override; to set the "
                    f"whole mapping write ++{given}"
                ) from None
            parent = key.rpartition(".")[0]
            base = _compose_known(config_name, [a for a in overrides if a != given], conf_dir)
            node = (OmegaConf.select(base, parent) if parent else base) if base else None
            allowed = sorted(node.keys()) if hasattr(node, "keys") else []
            has = f"; {parent or 'the config'} has: {', '.join(map(str, allowed))}"
            raise SharenasError(f"unknown key {key!r}{has if allowed else ''}") from None
        if key:
            msg = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
            raise SharenasError(f"bad value for {key}={value}: {msg}") from None
        raise SharenasError(str(err).splitlines()[0]) from None
    _check_additions(config_name, overrides, conf_dir)


def _compose_known(config_name: str, overrides: list[str], conf_dir: Path) -> Any:
    """The config of ``overrides`` less any that does not compose (another unknown key: the
    first one is the one reported), to list the keys a node really has; None if not even the
    defaults compose."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import ConfigCompositionException

    rest = list(overrides)
    while True:
        try:
            with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
                return compose(config_name, rest)
        except ConfigCompositionException as err:
            if not rest:
                return None
            key = getattr(err.__cause__, "full_key", None) or ""
            bad = next(
                (a for a in rest if _names(a, key) or override_key(a).startswith(key + ".")), None
            )
            if key and bad:
                rest = [a for a in rest if a != bad]
                continue
            # not one override's fault: keep the group choices and Hydra's own settings
            kept = [a for a in rest if "." not in override_key(a) or a.startswith("hydra.")]
            rest = kept if kept != rest else []


def _check_additions(config_name: str, overrides: list[str], conf_dir: Path) -> None:
    """``+a.b=v`` adds a key Hydra does not check: refuse one whose nearest existing parent is the
    root or a structured config (a dataclass schema) that does not have it; mappings of keyword
    arguments (``searcher.sampler_kwargs``, ``trainer.scheduler``) take any key. Config groups
    (``+group=option``, also from the user's ``hydra.searchpath`` folders, or ``@package``
    forms) are left to Hydra and ``check_group_overrides``."""
    from dataclasses import is_dataclass

    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import DictConfig, OmegaConf

    folders = [conf_dir, *_searchpath_folders(overrides)]
    added = [a for a in overrides if a.startswith("+") and not a.startswith("++")]
    added = [a for a in added if "@" not in override_key(a) and not _is_group(a, folders)]
    if not added:
        return
    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
            base = compose(config_name, [a for a in overrides if a not in added])
    except HydraException:  # the additions are needed to compose: Hydra checked them
        return
    for override in added:
        key = override_key(override)
        parent, node = key, None
        while parent and not isinstance(node, DictConfig):  # the nearest parent that exists
            parent = parent.rpartition(".")[0]
            node = OmegaConf.select(base, parent) if parent else base
        leaf = (key[len(parent) + 1 :] if parent else key).split(".")[0]
        if not isinstance(node, DictConfig) or leaf in node:
            continue
        if parent and not is_dataclass(OmegaConf.get_type(node)):
            continue
        name = f"{parent}.{leaf}" if parent else leaf
        raise SharenasError(
            f"unknown key {name!r}; {parent or 'the config'} has: "
            f"{', '.join(map(str, sorted(node.keys())))}"
        )


def _searchpath_folders(argv: Sequence[str]) -> list[Path]:
    """The local folders of a ``hydra.searchpath=[file://...]`` override."""
    entries = searchpath_entries(argv)
    return [Path(e.removeprefix("file://")) for e in entries if e.startswith("file://")]


def _is_group(override: str, folders: Sequence[Path]) -> bool:
    """Whether ``override`` names a config group of one of ``folders`` (``+group=option``)."""
    key = override_key(override)
    return "." not in key and any((d / key).is_dir() for d in folders)


def override_key(override: str) -> str:
    """The key a command-line override sets: ``+a.b=1`` -> ``a.b``, ``data=mnist5k`` -> ``data``."""
    return override.split("=", 1)[0].lstrip("+~")


def _names(override: str, key: str) -> bool:
    """Whether ``override`` sets ``key`` itself, or a mapping literal (``a={k:1}``) holding it;
    a group choice (``data=cifar10``) does not name its keys (``data.pth`` is a typo of its own)."""
    name, value = override_key(override), override.partition("=")[2]
    return key == name or (key.startswith(name + ".") and value.lstrip().startswith("{"))


def instantiation_message(err: InstantiationException) -> str:
    """One line for a failed ``instantiate``: the config node, the class and what went wrong
    (Hydra's message puts the cause on later lines, which a one-line error would drop)."""
    cause = err.__cause__
    if isinstance(cause, SharenasError):
        return str(cause)
    lines = str(err).splitlines()
    node = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("full_key:")), "")
    target = lines[0].removeprefix("Error in call to target ").rstrip(":") if lines else ""
    what = f"{type(cause).__name__}: {cause}" if cause is not None else " ".join(lines[1:2])
    where = f"bad value in {node} ({target})" if node else f"cannot build {target}"
    return f"{where}: {what}"


def _report(message: str) -> None:
    """``error: <message>`` on stderr, once: under torchrun only rank 0 says it."""
    if os.environ.get("RANK", "0") == "0":
        print(f"error: {message}", file=sys.stderr)


def user_errors(fn: Callable) -> Callable:
    """Turn boundary errors into ``error: <one line>`` on stderr and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SharenasError as err:
            _report(str(err))
            raise SystemExit(1) from None
        except InstantiationException as err:
            _report(instantiation_message(err))
            raise SystemExit(1) from None

    return wrapper


def guard(main: Callable[[], object], name: str, conf_dir: Path = CONF_DIR) -> None:
    """Run a ``@hydra.main`` entry point after checking group overrides against ``conf_dir``."""
    try:
        check_group_overrides(sys.argv[1:], conf_dir)
        check_key_overrides(name, sys.argv[1:], conf_dir)
    except SharenasError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    main()
