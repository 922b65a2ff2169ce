"""The trainer's optimizer and learning-rate schedule: checked settings, resume, rebuild on split.

``trainer.optimizer`` and ``trainer.scheduler`` are user configs (``_target_`` + ``_partial_``).
Their values are checked against the target's signature before training: a number where the target
takes a number, finite, and the schedule's period at least 1, each named in one line.
"""

from __future__ import annotations

import copy
import inspect
import math
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import torch
from hydra.utils import get_method, instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from supernet.errors import SharenasError, check_int

_PERIODS = ("T_max", "T_0", "step_size", "total_steps", "total_iters")  # >= 1 where given


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_node(label: str, node: Mapping[str, Any]) -> None:
    """Each value of an optimizer/scheduler config against what its target's signature takes."""
    try:
        target: Callable = get_method(str(node["_target_"]))
        params = inspect.signature(target).parameters
    except Exception:  # instantiate reports an unknown target in its own words
        return
    for key, value in node.items():
        if key.startswith("_"):
            continue
        default = params[key].default if key in params else inspect.Parameter.empty
        numeric = _is_number(default) or key in _PERIODS or key in ("lr", "weight_decay")
        if numeric and not _is_number(value):
            raise SharenasError(f"{label}.{key} must be a number, got {value!r}")
        if _is_number(value) and not math.isfinite(value):
            raise SharenasError(f"{label}.{key} must be a finite number, got {value!r}")
        if key in _PERIODS:
            check_int(f"{label}.{key}", value, 1)


def check_optim_config(tc: DictConfig) -> None:
    """``trainer.optimizer`` / ``trainer.scheduler`` values, then a dry run of both on one
    parameter for ``trainer.epochs`` epochs, so a schedule that cannot run fails before training."""
    for key in ("optimizer", "scheduler"):
        node = OmegaConf.to_container(tc[key], resolve=True)
        if isinstance(node, Mapping) and "_target_" in node:
            _check_node(f"trainer.{key}", node)
    opt = build_optimizer(tc, nn.Linear(1, 1))
    try:
        sched = instantiate(tc.scheduler)(opt)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # stepping the scheduler without optimizer steps
            for _ in range(int(tc.epochs)):
                sched.step()
    except (ValueError, TypeError, ZeroDivisionError, ArithmeticError) as err:
        raise SharenasError(f"bad trainer.scheduler setting: {type(err).__name__}: {err}") from None


def build_optimizer(tc: DictConfig, module: nn.Module) -> torch.optim.Optimizer:
    """``trainer.optimizer`` over ``module``'s parameters; a bad setting (``lr=-1``) is one line."""
    try:
        return instantiate(tc.optimizer)(module.parameters())
    except (ValueError, TypeError) as err:
        raise SharenasError(f"bad trainer.optimizer setting: {err}") from None


def build_scheduler(tc: DictConfig, opt: torch.optim.Optimizer):
    """``trainer.scheduler`` over ``opt``, stepped once per epoch."""
    return instantiate(tc.scheduler)(opt)


def resume_scheduler(tc: DictConfig, opt, saved: Mapping, state: dict, done: int, say=print):
    """The checkpoint's scheduler ``state`` when the schedule is unchanged (bit-exact resume;
    ``saved`` is the checkpoint's stored trainer config, compared with ours in stored form). When
    the config changed it (more ``trainer.epochs`` stretch a cosine schedule), the new schedule is
    replayed from its start for the ``done`` epochs, so training continues at the learning rate
    the new schedule has there instead of the old schedule's final value."""
    from supernet.file_config import config_to_file

    current = config_to_file({"trainer": OmegaConf.to_container(tc, resolve=True)})["trainer"]
    if saved.get("scheduler") == current.get("scheduler") and saved.get("epochs") == int(tc.epochs):
        sched = build_scheduler(tc, opt)
        sched.load_state_dict(state)
        return sched
    for group in opt.param_groups:
        group["lr"] = group.get("initial_lr", group["lr"])
    sched = build_scheduler(tc, opt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # stepping the scheduler without optimizer steps
        for _ in range(done):
            sched.step()
    say(
        f"resume: the schedule changed (epochs {saved.get('epochs')} -> {tc.epochs}); "
        f"continuing the new schedule at epoch {done}, lr {opt.param_groups[0]['lr']:.4g}"
    )
    return sched


def rebuild_after_split(tc: DictConfig, module: nn.Module, old_opt, old_sched, pairs):
    """A new optimizer over the (grown) parameter list; children inherit their parent's state."""
    opt = build_optimizer(tc, module)
    for new_group, old_group in zip(opt.param_groups, old_opt.param_groups, strict=False):
        for key in ("lr", "initial_lr"):
            if key in old_group:
                new_group[key] = old_group[key]
    for p, state in old_opt.state.items():
        opt.state[p] = state
    for new_p, src_p in pairs:
        if src_p in old_opt.state:
            opt.state[new_p] = copy.deepcopy(old_opt.state[src_p])
    sched = build_scheduler(tc, opt)
    sched.load_state_dict(old_sched.state_dict())
    return opt, sched
