"""Structured-config schemas for the search-side config (evaluator, backend, results)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore


@dataclass
class SupernetRef:
    checkpoint: Any = None  # path to a trained supernet.pt; None = train one first (same config)


@dataclass
class EvaluatorConf:
    calib_batches: int = 4  # BN recalibration batches (fixed, cached subset of train)
    calib_batch_size: int = 64
    batch_size: int = 500  # validation batch size
    count_flops: bool = True  # FLOPs via torch.utils.flop_counter
    measure_latency: bool = False  # median forward time of one sample, ms
    device: str = "cpu"


@dataclass
class ConstraintsConf:
    params: Any = None  # maximum parameter count of a path (None = unconstrained)
    flops: Any = None  # maximum FLOPs of a path


@dataclass
class ResultsConf:
    top_k: int = 10  # rows printed and written to TensorBoard text
    key: str = "val_acc"  # ranking key
    export_best: bool = True  # write best/ (state_dict, TorchScript, arch string)


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


def register_configs() -> None:
    cs = ConfigStore.instance()
    cs.store(name="_supernet_ref", node=SupernetRef)
    cs.store(group="backend", name="_schema_local", node=LocalBackendConf)
    cs.store(group="backend", name="_schema_ray", node=RayBackendConf)
    cs.store(
        name="_search_schema",
        node={
            "supernet": SupernetRef,
            "evaluator": EvaluatorConf,
            "constraints": ConstraintsConf,
            "results": ResultsConf,
        },
    )


__all__ = ["ConstraintsConf", "EvaluatorConf", "ResultsConf", "SupernetRef", "register_configs"]
