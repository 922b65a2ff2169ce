"""Ray backend: every evaluation is a Ray Tune trial, on a local Ray instance or a cluster.

The evaluator is pickled once and shipped through the object store (``tune.with_parameters``); a
worker process unpickles it on its first trial and caches it (actors are reused between trials).
``OptunaSearcher`` becomes Ray Tune's ``OptunaSearch`` (one study steering all workers); other
searchers are driven through a small ``ray.tune.search.Searcher`` adapter."""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import pickle
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

# Read when Ray is first imported. Without the second, Ray on Linux resolves 127.0.0.1 (a local
# instance, or a head started with --node-ip-address=127.0.0.1) to the host's outward address.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import ray  # noqa: E402
from ray import cloudpickle, tune  # noqa: E402
from ray.tune.search import Searcher as TuneSearcher  # noqa: E402
from ray.tune.search.optuna import OptunaSearch  # noqa: E402

from search.objective import RECORD_KEYS, Objective
from search.searchers.base import Proposal, Searcher
from supernet.arch import Arch
from supernet.config import run_dir
from supernet.errors import SharenasError
from supernet.spaces.base import Space
from supernet.threads import apply_threads

RECORD = ("arch", *RECORD_KEYS, "supernet")
MODES = {"maximize": "max", "minimize": "min"}
#: Per worker process: run id -> (evaluator, space), unpickled on the run's first trial there.
_EVALUATORS: dict[str, tuple[Callable[[Arch], dict], Space]] = {}


def _evaluate_trial(config: dict[str, str], evaluator_blob: np.ndarray, run_id: str) -> None:
    """Ray Tune trainable: score the arch ``config`` (decision -> choice) and report its record."""
    if run_id not in _EVALUATORS:  # first trial of this run in this worker process
        _EVALUATORS.clear()
        _EVALUATORS[run_id] = pickle.loads(evaluator_blob)
        # the search's thread setting; auto reads the OMP_NUM_THREADS Ray gives each worker
        threads = getattr(_EVALUATORS[run_id][0], "threads", "auto")
        apply_threads(threads, probe_idle=False, say=None)
    evaluate, space = _EVALUATORS[run_id]
    tune.report(evaluate(space.make(config)))


class _AskTellSearch(TuneSearcher):
    """Drives one of our ask/tell searchers from Ray Tune. Like ``LocalBackend``, a repeated
    proposal is told the known values at once (or when its arch's running trial completes), so
    every Tune trial scores a new arch."""

    def __init__(self, searcher: Searcher, objective: Objective, max_proposals: int) -> None:
        super().__init__(metric=searcher.objectives[0], mode=MODES[searcher.directions[0]])
        # Not ``self.searcher``: Tune takes any search algorithm with that attribute for a wrapper.
        self.driven, self.objective, self.max_proposals = searcher, objective, max_proposals
        self.n_proposals = 0
        self.known: dict[str, dict] = {}  # arch -> record of a finished trial
        self.running: dict[str, Proposal] = {}  # trial id -> proposal being evaluated
        self.repeats: dict[str, list[Proposal]] = {}  # arch in flight -> repeated proposals
        self.trial_numbers: dict[str, int] = {}  # trial id -> searcher trial number

    def _tell(self, proposal: Proposal, record: dict) -> None:
        objective = self.objective
        self.driven.tell(proposal, objective.values(record), objective.constraints(record))

    def suggest(self, trial_id: str) -> dict | str | None:
        while self.n_proposals < self.max_proposals:
            proposal = self.driven.ask()
            if proposal is None:
                return TuneSearcher.FINISHED
            self.n_proposals += 1
            key = str(proposal.arch)
            if key in self.known:
                self._tell(proposal, self.known[key])
            elif key in self.repeats:
                self.repeats[key].append(proposal)
            else:
                self.repeats[key] = []
                self.running[trial_id] = proposal
                self.trial_numbers[trial_id] = proposal.trial
                return dict(proposal.arch)
        return TuneSearcher.FINISHED

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        proposal = self.running.pop(trial_id, None)
        if proposal is None:
            return
        repeats = self.repeats.pop(str(proposal.arch), [])
        if error or not result:  # a failed arch is never told; it may be proposed again
            return
        record = self.known[str(proposal.arch)] = {k: result.get(k) for k in RECORD}
        for p in (proposal, *repeats):
            self._tell(p, record)

    def save(self, checkpoint_path: str) -> None:
        """No experiment-level resume for ask/tell searchers (nothing is written)."""


class _OptunaSearch(OptunaSearch):
    """Ray Tune's ``OptunaSearch`` that also records constraints (``trial.set_constraint``, read by
    Optuna 5 samplers) and the Optuna trial number of every completed Tune trial."""

    def __init__(self, objective: Objective, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.objective = objective
        self.trial_numbers: dict[str, int] = {}

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        if trial_id in self._ot_trials:
            self.trial_numbers[trial_id] = self._ot_trials[trial_id].number
        if result and not error and trial_id in self._ot_trials:
            for i, c in enumerate(self.objective.constraints(result) or []):
                self._ot_trials[trial_id].set_constraint(str(i), c)
        super().on_trial_complete(trial_id, result, error)


class _Progress(tune.Callback):
    """A tqdm bar over finished trials, like ``LocalBackend``'s (Tune's own output is silenced)."""

    def __init__(self, total: int, enabled: bool, objective: Objective) -> None:
        self.total, self.enabled, self.bar, self.objective = total, enabled, None, objective
        self.results: list[dict] = []

    def setup(self, **info: Any) -> None:  # at the start of the run, after Tune pickled its config
        self.bar = tqdm(total=self.total, desc="search", disable=not self.enabled, leave=False)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if trial.last_result and "arch" in trial.last_result:
            self.results.append(trial.last_result)
        best = self.objective.best(self.results)  # the ranking key, its direction, feasible only
        self.bar.update(1)
        self.bar.set_postfix(best="-" if best is None else f"{best:.4g}")


class RayBackend:
    """Evaluates archs as Ray Tune trials, ``num_workers`` at a time.

    ``address``: ``None`` starts a local Ray instance on 127.0.0.1 (shut down afterwards); "auto",
    "host:port" or "ray://host:10001" joins a cluster. ``storage_path``: Tune's experiment folder
    (default ``<run dir>/ray_results``). Returns one record per distinct arch, in trial order: an
    arch that Ray's ``OptunaSearch`` proposes twice runs twice but is kept once (its first trial),
    so an Optuna run may return fewer than ``n_trials`` records. ``searcher.storage`` is refused
    by ``search.run`` (the study lives in memory in the driver, so nothing would be resumed).
    Failed trials are retried ``max_failures`` times, then left out with a warning."""

    #: Ray Tune's OptunaSearch keeps its own in-memory study: ``searcher.storage`` is refused.
    uses_searcher_storage = False

    def __init__(
        self,
        address: str | None = None,
        num_workers: int = 2,
        cpus_per_trial: float = 1,
        gpus_per_trial: float = 0,
        max_failures: int = 1,
        storage_path: str | None = None,
        progress: bool = True,
    ) -> None:
        if num_workers < 1:
            raise SharenasError(f"backend.num_workers must be >= 1, got {num_workers!r}")
        self.address, self.num_workers = address, int(num_workers)
        self.cpus_per_trial, self.gpus_per_trial = float(cpus_per_trial), float(gpus_per_trial)
        self.max_failures, self.storage_path = int(max_failures), storage_path
        self.progress = progress

    def run(
        self,
        searcher: Searcher,
        evaluate: Callable[[Arch], dict],
        objective: Objective,
        n_trials: int,
    ) -> list[dict]:
        """Evaluate up to ``n_trials`` archs of ``searcher`` with ``evaluate`` on Ray workers."""
        payload = cloudpickle.dumps((evaluate, searcher.space), protocol=5)
        blob = np.frombuffer(payload, dtype=np.uint8)  # a numpy array: workers read it zero-copy
        run_id = uuid.uuid4().hex[:12]
        modes = [MODES[d] for d in searcher.directions]
        single = len(modes) == 1
        metric, mode = (objective.objectives[0], modes[0]) if single else (None, None)
        if hasattr(searcher, "distributions") and hasattr(searcher, "make_sampler"):
            search_alg = _OptunaSearch(
                objective,
                space=searcher.distributions(),
                sampler=searcher.make_sampler(),
                metric=metric if single else list(searcher.objectives),
                mode=mode if single else modes,
            )
        else:
            search_alg = _AskTellSearch(searcher, objective, max_proposals=20 * int(n_trials) + 100)
        progress = _Progress(int(n_trials), self.progress, objective)
        storage = self.storage_path or str(run_dir() / "ray_results")
        storage = storage if "://" in storage else str(Path(storage).expanduser().resolve())
        started = not ray.is_initialized()  # then shut down (a cluster: disconnect) at the end
        if started:  # a local instance on 127.0.0.1, or join the cluster at ``address``
            num_cpus = max(1, math.ceil(self.num_workers * self.cpus_per_trial))
            local = dict(num_cpus=num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1")
            kwargs = local if self.address is None else {"address": self.address}
            ray.init(log_to_driver=False, logging_level=logging.WARNING, **kwargs)
        try:  # with_parameters puts the blob into the object store now, so after ray.init
            trainable = tune.with_resources(
                tune.with_parameters(_evaluate_trial, evaluator_blob=blob, run_id=run_id),
                {"cpu": self.cpus_per_trial, "gpu": self.gpus_per_trial},
            )
            tuner = tune.Tuner(
                trainable,
                param_space={},
                tune_config=tune.TuneConfig(
                    search_alg=search_alg,
                    num_samples=int(n_trials),
                    metric=metric,
                    mode=mode,
                    max_concurrent_trials=self.num_workers,
                    reuse_actors=True,
                    trial_dirname_creator=lambda trial: f"trial_{trial.trial_id}",
                ),
                run_config=tune.RunConfig(
                    storage_path=storage,
                    name=f"sharenas-{run_id}",
                    failure_config=tune.FailureConfig(max_failures=self.max_failures),
                    verbose=0,
                    callbacks=[progress],
                ),
            )
            with contextlib.redirect_stdout(io.StringIO()):  # Tune prints a header at verbose=0
                grid = tuner.fit()
        finally:
            if progress.bar is not None:
                progress.bar.close()
            if started:
                ray.shutdown()
        errors = [str(r.error).strip().splitlines()[-1] for r in grid if r.error is not None]
        finished = [r.metrics for r in grid if r.error is None and r.metrics]
        finished.sort(key=lambda m: search_alg.trial_numbers.get(m["trial_id"], sys.maxsize))
        records: dict[str, dict] = {}
        for metrics in finished:
            record = {k: metrics.get(k) for k in RECORD}
            record["trial"] = search_alg.trial_numbers.get(metrics["trial_id"])
            records.setdefault(record["arch"], record)  # an arch run twice: its first trial
        if errors:
            message = f"{len(errors)} of {len(grid)} Ray trials failed; first error: {errors[0]}"
            if not records:
                raise SharenasError(message)
            print(f"warning: {message} (left out)", file=sys.stderr)
        return list(records.values())
