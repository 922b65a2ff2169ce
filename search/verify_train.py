"""One standalone training of the verify stage, and where it runs: worker processes or Ray tasks.

A ``StandaloneJob`` is plain data (arch string, space name, macro fields, recipe, seeds and, when
fine-tuning, the inherited weights as tensors), so it pickles to a spawned process or a Ray worker
and is rebuilt there through the space and supernet registries. ``train_job`` trains the arch once
per seed with ``supernet.standalone.train_standalone`` (the benchmark's ground-truth trainer) and
scores it on the validation split only.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch.utils.data import TensorDataset

from supernet.models import Macro, standalone_from_scratch
from supernet.spaces import build_space
from supernet.standalone import StandaloneRecipe, accuracy, train_standalone

#: (train, val) tensors: (images, labels) each.
Data = tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class StandaloneJob:
    """What one standalone training needs, as plain values (no module, no callable)."""

    arch: str
    space: str  # a registered space name
    macro: dict  # supernet.models.Macro fields of the supernet the arch comes from
    recipe: dict  # supernet.standalone.StandaloneRecipe fields
    seeds: tuple[int, ...]
    init: dict[str, torch.Tensor] | None = field(default=None, repr=False)  # None: from scratch


def build_net(job: StandaloneJob, seed: int) -> torch.nn.Module:
    """The arch's standalone net: initialised from ``seed`` (as the benchmark's ground truth is),
    then given the inherited weights when the job fine-tunes."""
    space = build_space(job.space)
    torch.manual_seed(seed)
    net = standalone_from_scratch(space, Macro(**job.macro), space.parse(job.arch))
    if job.init is not None:
        net.load_state_dict(job.init)
    return net


def train_job(job: StandaloneJob, data: Data, device: str = "cpu") -> dict:
    """Train ``job.arch`` once per seed; returns its result: mean and per-seed validation accuracy,
    the trained weights of the first seed (on the CPU) and the wall time."""
    tic = time.time()
    dev = torch.device(device)
    train, val = (TensorDataset(*(t.to(dev) for t in split)) for split in data)
    recipe = StandaloneRecipe(**job.recipe)
    accs, state = [], None
    for seed in job.seeds:
        net = build_net(job, seed).to(dev)
        train_standalone(net, train, recipe, seed)
        accs.append(accuracy(net, val))
        if state is None:
            state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    return {
        "arch": job.arch,
        "standalone_acc": sum(accs) / len(accs),
        "standalone_acc_per_seed": accs,
        "seeds": list(job.seeds),
        "seconds": time.time() - tic,
        "device": device,
        "state_dict": state,
    }


# -- local worker processes ------------------------------------------------------------------------
_DATA: Data | None = None


def _init_worker(data: Data, parent: int) -> None:
    """Each worker: one torch thread (workers run side by side), the data received once, and a
    watchdog that ends the worker when its parent is gone (a killed verify leaves no orphans)."""
    global _DATA
    torch.set_num_threads(1)
    _DATA = data
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _run_in_worker(job: StandaloneJob) -> dict:
    assert _DATA is not None
    return train_job(job, _DATA)


def run_local(
    jobs: Sequence[StandaloneJob], data: Data, workers: int, on_result: Callable[[dict], None]
) -> None:
    """Train ``jobs`` in ``workers`` spawned processes; ``on_result`` is called in this process as
    each finishes (in finishing order). A failed training raises here, after the finished results
    were handed on."""
    if not jobs:
        return
    context = multiprocessing.get_context("spawn")  # safe with threads and CUDA in the parent
    with ProcessPoolExecutor(
        max_workers=min(workers, len(jobs)),
        mp_context=context,
        initializer=_init_worker,
        initargs=(data, os.getpid()),
    ) as pool:
        pending = {pool.submit(_run_in_worker, job) for job in jobs}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                on_result(future.result())


# -- Ray tasks -------------------------------------------------------------------------------------
def _ray_train(job: StandaloneJob, data: Data) -> dict:
    """Body of the Ray task: on the GPU Ray assigned it, if any."""
    import ray

    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    device = "cuda" if ray.get_gpu_ids() and torch.cuda.is_available() else "cpu"
    return train_job(job, data, device=device)


@dataclass
class RayOptions:
    """Where and how the Ray tasks run."""

    address: str | None = None  # None: a local Ray instance on 127.0.0.1; "auto": a cluster
    workers: int = 2  # trainings in flight at once
    cpus_per_task: float = 1.0
    gpus_per_task: float | None = None  # None: 1 when the cluster has GPUs, else 0
    max_retries: int = 2  # a task whose worker died or that raised is run again this many times


@contextmanager
def _ray_session(options: RayOptions) -> Iterator[None]:
    """Join the cluster at ``options.address``, or start a local instance (shut down after)."""
    import logging

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray

    started = not ray.is_initialized()
    if started:
        if options.address is None:
            cpus = max(1, int(options.workers * options.cpus_per_task + 0.999))
            kwargs = dict(num_cpus=cpus, include_dashboard=False, _node_ip_address="127.0.0.1")
        else:
            kwargs = {"address": options.address}
        ray.init(log_to_driver=False, logging_level=logging.WARNING, **kwargs)
    try:
        yield
    finally:
        if started:
            ray.shutdown()


def run_ray(
    jobs: Sequence[StandaloneJob],
    data: Data,
    options: RayOptions,
    on_result: Callable[[dict], None],
) -> None:
    """Each job a Ray task with its own resources and retries, ``options.workers`` in flight."""
    if not jobs:
        return
    import ray

    with _ray_session(options):
        gpus = options.gpus_per_task
        if gpus is None:
            gpus = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
        task = ray.remote(_ray_train).options(
            num_cpus=options.cpus_per_task,
            num_gpus=gpus,
            max_retries=options.max_retries,
            retry_exceptions=True,
        )
        data_ref = ray.put(data)  # once into the object store, shared by every task
        queue, running = list(jobs), []
        while queue or running:
            while queue and len(running) < options.workers:
                running.append(task.remote(queue.pop(0), data_ref))
            done, running = ray.wait(running, num_returns=1)
            on_result(ray.get(done[0]))
