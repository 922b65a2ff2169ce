"""Build the training-side objects from a config, and load a trained supernet from a checkpoint.

A config the user wrote builds with ``hydra.utils.instantiate``; a config read from a checkpoint
(``supernet.file_config``) builds only through the registries, by name, with checked keywords.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from supernet.data import Splits, load_splits
from supernet.ema import apply_ema
from supernet.errors import CheckpointError, SharenasError
from supernet.file_config import config_to_file
from supernet.models import Macro
from supernet.sampling import PathSampler
from supernet.sharing import STRATEGIES
from supernet.sharing.base import SharingStrategy
from supernet.spaces import build_space
from supernet.spaces.base import Space
from supernet.train_state import TrainState


@dataclass
class Built:
    space: Space
    splits: Splits
    macro: Macro
    strategy: SharingStrategy


def _macro(space_cfg: Mapping[str, Any], splits: Splits) -> Macro:
    return Macro(
        channels=space_cfg["macro"]["channels"],
        cells_per_stage=space_cfg["macro"]["cells_per_stage"],
        bn_affine=space_cfg["macro"].get("bn_affine", True),  # checkpoints from before the key
        in_channels=splits.in_channels,
        num_classes=splits.num_classes,
    )


def build(cfg: DictConfig) -> Built:
    """Space, data splits, macro skeleton and sharing strategy (with fresh weights) from ``cfg``,
    a config the user wrote (its ``_target_`` keys are instantiated)."""
    space = build_space(cfg.space.name)
    splits: Splits = instantiate(cfg.data)
    macro = _macro(cfg.space, splits)
    strategy: SharingStrategy = instantiate(cfg.sharing, space=space, macro=macro)
    return Built(space, splits, macro, strategy)


def _call_checked(fn: Callable, label: str, kwargs: Mapping[str, Any], **given: Any) -> Any:
    """``fn(**given, **kwargs)`` after checking that ``fn`` takes every key of ``kwargs``."""
    params = inspect.signature(fn).parameters
    allowed = [k for k in params if k not in given and k not in ("self", "args", "kwargs")]
    for key in kwargs:
        if key not in allowed:
            raise CheckpointError(
                f"checkpoint config {label}.{key} is not a setting of {label}; "
                f"allowed: {', '.join(allowed)}"
            )
    return fn(**given, **kwargs)


def build_from_file(config: Mapping[str, Any]) -> Built:
    """``build`` for a config read from a file (``supernet.file_config.config_from_file``):
    every object comes from a registry by name, with checked keyword values; nothing is
    instantiated from the file."""
    space = build_space(config["space"]["name"])
    splits: Splits = _call_checked(load_splits, "data", config["data"])
    macro = _macro(config["space"], splits)
    sharing = dict(config["sharing"])
    cls = STRATEGIES[sharing.pop("name")]
    strategy = _call_checked(cls, "sharing", sharing, space=space, macro=macro)
    return Built(space, splits, macro, strategy)


def initial_strategy(config: Mapping[str, Any]) -> SharingStrategy:
    """The supernet a checkpoint's training started from, weights as they were before the first
    step: rebuilt from the saved config and seed the way training set it up
    (``torch.manual_seed(seed)``, then the build). The global RNG state is left as it was."""
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(int(config["seed"]))
        return build_from_file(config).strategy
    finally:
        torch.random.set_rng_state(state)


def build_sampler(cfg: DictConfig, built: Built) -> PathSampler:
    """The path sampler, with the parameter count of each path as its cost (``cost_binned`` bins
    on it; every sampler needs it inside the cost leaves of ``costsplit``)."""
    kwargs: dict[str, Any] = {
        "space": built.space,
        "seed": int(cfg.seed),
        "cost_fn": built.strategy.param_count,
    }
    return instantiate(cfg.sampler, **kwargs)


def config_to_save(cfg: DictConfig) -> dict:
    """The config parts a checkpoint needs to rebuild its supernet: resolved plain values, every
    object named by its registry name (``supernet.file_config``)."""
    keep = ("seed", "space", "data", "sharing", "sampler", "trainer")
    full = OmegaConf.to_container(cfg, resolve=True)
    return config_to_file({k: full[k] for k in keep if k in full})


def load_trained(
    path: str | Path, space: str | None = None, data_path: str | None = None, ema: bool = True
) -> tuple[Built, TrainState]:
    """Rebuild the strategy a checkpoint was trained with and load its weights and partition.
    ``data_path`` replaces the saved ``data.path`` of a dataset read from disk (moved files).
    A checkpoint trained with ``trainer.ema_decay`` loads its EMA weights unless ``ema=False``."""
    state = TrainState.load(path, space=space)
    data = dict(state.config["data"])  # checked plain values (config_from_file)
    saved_path = data.get("path")
    if data_path is not None and saved_path is not None and str(data_path) != saved_path:
        print(f"data.path: reading {data_path} (the checkpoint was trained on {saved_path})")
        data["path"] = str(data_path)
    elif saved_path is not None and not Path(str(saved_path)).expanduser().is_dir():
        raise SharenasError(
            f"the checkpoint's data.path {saved_path!r} is not a directory; if the files moved, "
            f"pass data={data.get('name')} data.path=NEW_DIR (in Python: "
            "sharenas.load(checkpoint, data_path=NEW_DIR))"
        )
    built = build_from_file({**state.config, "data": data})
    built.strategy.load_sharing_state(state.sharing)
    built.strategy.load_state_dict(state.model)
    if ema and state.ema is not None:
        apply_ema(built.strategy, state.ema)
    built.strategy.eval()
    return built, state
