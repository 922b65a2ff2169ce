"""Structured-config schemas for the search-side config (evaluator, searcher, backend, results).

Each option file of ``conf/searcher`` and ``conf/backend`` starts with
``defaults: [/_schema_<group>_<x>@_here_, _self_]``, so a misspelt key or a wrong type
(``searcher.n_trials=abc``) fails at compose naming the key, before anything is built.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from hydra.core.config_store import ConfigStore

from search.estimators import ESTIMATORS
from search.objective import direction
from supernet.config import RunConf
from supernet.errors import SharenasError
from supernet.schema import at_least, checked, one_of


def _calib_batches(key: str, value: Any) -> Any:
    """A number of batches >= 1, ``all`` (the whole training split) or ``auto`` (the estimator's:
    ``search.estimators.resolve_calibration``)."""
    if value in ("all", "auto"):
        return value
    if isinstance(value, str) and not value.lstrip("+-").isdigit():
        raise SharenasError(f"{key} must be an integer >= 1, 'all' or 'auto', got {value!r}")
    return at_least(1)(key, value)


def _device(key: str, device: Any) -> str:
    """A torch device this host has."""
    try:
        dev = torch.device(str(device))
    except (RuntimeError, ValueError):
        raise SharenasError(f"unknown {key} {device!r}; allowed: cpu, cuda, cuda:<index>") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SharenasError(
            f"{key}={device!r} but torch.cuda.is_available() is False "
            f"(no GPU, no driver, or a CPU-only torch build); use {key}=cpu"
        )
    return str(device)


def _limit(key: str, limit: Any) -> float | None:
    """A constraint: null (off) or the largest value allowed, a finite number > 0."""
    number = isinstance(limit, int | float) and not isinstance(limit, bool)
    if limit is not None and not (number and math.isfinite(limit) and limit > 0):
        name = key.rpartition(".")[2]
        raise SharenasError(
            f"{key} must be a finite number > 0 (the largest {name} allowed) or null, got {limit!r}"
        )
    return limit


def _non_negative(key: str, value: Any) -> float:
    """A finite number >= 0."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not (number and math.isfinite(value) and value >= 0):
        raise SharenasError(f"{key} must be a finite number >= 0, got {value!r}")
    return float(value)


def _record_key(key: str, value: Any) -> str:
    direction(value, key)  # one line naming the key and the record keys allowed
    return value


@dataclass
class SupernetRef:
    checkpoint: Any = None  # path to a trained supernet.pt; None = train one first (same config)
    ema: bool = True  # score with the checkpoint's EMA weights (trainer.ema_decay) when it has them


@dataclass
class EvaluatorConf:
    # BN recalibration batches of calib_batch_size (a fixed, cached subset of train); all: the
    # whole training split; auto: all for an estimator that scores the training split, else 4
    calib_batches: Any = checked("auto", _calib_batches)
    calib_batch_size: int = checked(64, at_least(1))
    batch_size: int = checked(500, at_least(1))  # validation batch size
    count_flops: bool = True  # FLOPs via torch.utils.flop_counter
    measure_latency: bool = False  # median forward time of one sample, ms, on this host
    latency_table: Any = None  # path of a sharenas-latency JSON table: latency_ms is predicted
    train_loss: bool = False  # also the loss on the whole training split (lower-noise ranking key)
    # what the record's score is (search.estimators.ESTIMATORS); auto: the benchmark's best for
    # the checkpoint's space (search.estimators.AUTO_BY_SPACE), printed
    estimator: str = checked("auto", one_of(*ESTIMATORS, "auto"))
    device: str = checked("cpu", _device)
    # racing (search.racing): an arch that cannot reach the top race_top_k stops after a first
    # stage of one calibration batch and race_images validation images
    race: bool = False
    race_top_k: int = 10  # the top an arch must be able to reach (checked when race is on)
    race_z: float = checked(3.0, _non_negative)  # standard errors of optimism
    race_images: int = checked(64, at_least(2))  # validation images of the first stage
    # MB of activations kept at the end of prefixes that paths share (search.prefix); 0: none
    prefix_cache_mb: float = checked(128.0, _non_negative)


@dataclass
class ConstraintsConf:
    params: float | None = checked(None, _limit)  # maximum parameter count of a path (None = off)
    flops: float | None = checked(None, _limit)  # maximum FLOPs of a path
    # maximum latency (measured, or predicted from a table)
    latency_ms: float | None = checked(None, _limit)


@dataclass
class ResultsConf:
    # rows printed and exported; the TensorBoard leaderboard text
    top_k: int = checked(10, at_least(1))
    # ranking key; its direction: search.objective.KEY_DIRECTIONS
    key: str = checked("score", _record_key)
    export_best: bool = True  # write best/ (torch.export program, state_dict, arch, record)
    onnx: bool = False  # also best/model.onnx (needs pip install 'sharenas[onnx]')
    live_log: bool = True  # each record reaches TensorBoard as its trial finishes (else at the end)


def _list_int(*items: int) -> Any:
    return field(default_factory=lambda: list(items))


@dataclass
class LocalBackendConf:
    _target_: str = "search.backends.LocalBackend"
    progress: bool = True


@dataclass
class RayBackendConf:
    _target_: str = "search.backends.RayBackend"
    address: Any = None  # None: a local Ray instance; "auto", "host:port", "ray://host:port"
    num_workers: int = 2  # trials evaluated at once
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_failures: int = 1  # retries of a failed trial
    storage_path: Any = None  # Ray Tune results; None: <run dir>/ray_results
    progress: bool = True  # a progress bar over finished trials


@dataclass
class RecipeConf:
    """The standalone training recipe (``supernet.standalone.StandaloneRecipe``'s fields; the
    defaults are the benchmark ground truth's): SGD nesterov, cosine schedule."""

    epochs: int = 6
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4


@dataclass
class VerifyConf:
    """The verify stage (``search.verify``): retrain the top archs and a control sample."""

    enabled: bool = True  # false (verify=off): rank and export the supernet's pick only
    top_k: int = 3  # the leaderboard's best archs trained standalone
    control: int = 2  # archs drawn at random (seeded) from all evaluated, besides the top_k
    mode: str = "scratch"  # scratch: fresh init | finetune: start from the inherited weights
    seeds: list[int] = _list_int(0)  # one training per seed; standalone_acc is their mean
    recipe: RecipeConf = field(default_factory=RecipeConf)
    backend: str = "auto"  # auto: as the search ran (ray or local) | local | ray
    workers: int = 2  # trainings at once (local worker processes, or Ray tasks in flight)
    cpus_per_task: float = 1.0  # Ray: CPUs of each training task
    gpus_per_task: Any = None  # Ray: None = 1 GPU each when the cluster has GPUs, else 0
    max_retries: int = 2  # Ray: a failed training task is run again this many times
    bootstrap: int = 1000  # resamples of the verified archs for the tau / rho intervals
    calibrate: bool = True  # fit standalone accuracy on the verified archs, re-rank every arch
    calibrate_min: int = 50  # distinct verified archs needed (bench/calibration.py)
    calibrate_features: str = "none"  # besides estimate and params: none | counts | decisions


#: Where each search schema with field checks sits in a composed search config.
SEARCH_SCHEMAS: dict[str, type] = {
    "": RunConf,
    "evaluator": EvaluatorConf,
    "constraints": ConstraintsConf,
    "results": ResultsConf,
}


def register_search_configs() -> None:
    """Register the search groups' schemas (``search.cli.register_configs`` adds training's)."""
    cs = ConfigStore.instance()
    cs.store(name="_supernet_ref", node=SupernetRef)
    # root configs, not group options: see supernet.config.register_train_configs
    cs.store(name="_schema_backend_local", node=LocalBackendConf)
    cs.store(name="_schema_backend_ray", node=RayBackendConf)
    cs.store(name="_schema_verify", node=VerifyConf)
    from search.searchers import SEARCHERS  # each searcher's schema sits beside it

    for name, searcher in SEARCHERS.items():
        cs.store(name=f"_schema_searcher_{name}", node=searcher.schema)
    cs.store(
        name="_search_schema",
        node={
            "supernet": SupernetRef,
            "evaluator": EvaluatorConf,
            "constraints": ConstraintsConf,
            "results": ResultsConf,
        },
    )


__all__ = [
    "SEARCH_SCHEMAS",
    "ConstraintsConf",
    "EvaluatorConf",
    "RecipeConf",
    "ResultsConf",
    "SupernetRef",
    "VerifyConf",
    "register_search_configs",
]
