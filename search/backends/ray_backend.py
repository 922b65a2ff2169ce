"""Ray backend: every evaluation is a Ray Tune trial, on a local Ray instance or a cluster.

The evaluator is pickled once and shipped through the object store (``tune.with_parameters``); a
worker process unpickles it on its first trial and caches it (actors are reused between trials).
Tune asks for the next arch through ``StudySearch``, a ``ray.tune.search.Searcher`` that asks and
tells the driver's ``Study``: the next arch is chosen in one place for both backends."""

from __future__ import annotations

import contextlib
import copy
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
# Tune's default loggers include a TensorBoard one that adds a run per trial (ray/tune/* tags,
# blank HParams rows); sharenas logs every trial itself (search.tensorboard_live), so only Tune's
# JSON logger is kept (RayBackend passes it explicitly): result.json files under storage_path.
os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"

import ray  # noqa: E402
from ray import cloudpickle, tune  # noqa: E402
from ray.tune.logger import JsonLoggerCallback  # noqa: E402
from ray.tune.search import Searcher as TuneSearcher  # noqa: E402

from search.backends.ray_connect import check_reachable, connect
from search.racing import Race
from search.record import OPTUNA_DIRECTIONS
from search.searchers.base import Proposal
from search.study import Study
from supernet.arch import Arch
from supernet.config import run_dir
from supernet.errors import SharenasError
from supernet.spaces.base import Space
from supernet.threads import apply_threads

#: Per worker process: run id -> (evaluator, space), unpickled on the run's first trial there.
_EVALUATORS: dict[str, tuple[Callable[[Arch], dict], Space]] = {}
#: The config key that carries the driver's racing top to the workers (``evaluator.race``).
RACE_TOP = "__sharenas_race_top__"


def _evaluate(config: dict, evaluator_blob: np.ndarray, run_id: str) -> dict:
    """Score the arch ``config`` (decision -> choice) in this worker process; with racing, first
    take the driver's top (``RACE_TOP``) when it is higher than this worker's."""
    if run_id not in _EVALUATORS:  # first trial of this run in this worker process
        _EVALUATORS.clear()
        _EVALUATORS[run_id] = pickle.loads(evaluator_blob)
        # the search's thread setting; auto reads the OMP_NUM_THREADS Ray gives each worker
        threads = getattr(_EVALUATORS[run_id][0], "threads", "auto")
        apply_threads(threads, probe_idle=False, say=None)
    evaluate, space = _EVALUATORS[run_id]
    config = dict(config)
    top = config.pop(RACE_TOP, None)
    race = getattr(evaluate, "race", None)
    if top is not None and race is not None:
        race.adopt(top)
    return evaluate(space.make(config))


def _evaluate_trial(config: dict[str, str], evaluator_blob: np.ndarray, run_id: str) -> None:
    """Ray Tune trainable: score the arch ``config`` and report its record."""
    tune.report(_evaluate(config, evaluator_blob, run_id))


class StudySearch(TuneSearcher):
    """Ray Tune's search algorithm for every searcher: each suggestion is ``study.ask()``, each
    finished trial ``study.tell`` (a trial that failed after its retries: ``study.tell_error``).
    The study skips archs already evaluated, so every Tune trial scores a new arch. With racing
    (``race``: the evaluator's), the driver keeps the top of every record told, and each trial's
    config carries it (``RACE_TOP``), so a worker races against all workers' records, not only
    its own."""

    def __init__(self, study: Study, race: Race | None = None) -> None:
        single = len(study.searcher.objectives) == 1
        metric = study.searcher.objectives[0] if single else None
        mode = OPTUNA_DIRECTIONS[study.searcher.directions[0]] if single else None
        super().__init__(metric=metric, mode=mode)
        self.study = study
        self.running: dict[str, Proposal] = {}  # Tune trial id -> proposal being evaluated
        self.errors: list[str] = []
        self.told = 0  # trials whose record reached the study
        self.finished = False  # the study stopped proposing (else Tune stopped early: Ctrl-C)
        self.race = copy.deepcopy(race)  # the driver's own: fed by every record told

    def suggest(self, trial_id: str) -> dict | str | None:
        if len(self.errors) > self.study.n_trials:  # an arch that always fails: stop
            self.finished = True
            return TuneSearcher.FINISHED
        proposal = self.study.ask()
        if proposal is None:
            self.finished = True
            return TuneSearcher.FINISHED
        self.running[trial_id] = proposal
        config: dict = dict(proposal.arch)
        if self.race is not None and self.race.threshold is not None:
            config[RACE_TOP] = self.race.top()
        return config

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        proposal = self.running.pop(trial_id, None)
        if proposal is None:
            return
        if error or not result or "arch" not in result:
            self.errors.append(trial_id)
            self.study.tell_error(proposal, f"Ray Tune trial {trial_id} failed")
        else:
            self.study.tell(proposal, result)
            self.told += 1
            if self.race is not None:
                self.race.observe(result)

    def __getstate__(self) -> dict:
        """Tune pickles its search algorithm into the experiment folder (``tuner.pkl``); the
        study, with its storage connection and heartbeat thread, stays in the driver."""
        return {**self.__dict__, "study": None, "running": {}}

    def save(self, checkpoint_path: str) -> None:
        """Nothing to write: the study is the search's state (``searcher.storage`` to resume)."""

    def restore(self, checkpoint_path: str) -> None:
        """Nothing to read: see ``save``."""


class _Progress(tune.Callback):
    """A tqdm bar over finished trials, like ``LocalBackend``'s (Tune's progress output is
    silenced; a failed trial's error is still logged)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled, self.bar = total, enabled, None

    def setup(self, **info: Any) -> None:  # at the start of the run, after Tune pickled its config
        self.bar = tqdm(total=self.total, desc="search", disable=not self.enabled, leave=False)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.bar.update(1)


#: Tune's end-of-run lines that do not apply here: its own resume hint (a search resumes with
#: ``searcher.storage``) and the list of unfinished trials (RayBackend says what it kept).
_TUNE_SUMMARY = ("Trials did not complete", "Experiment has been interrupted")


class _DropTuneSummary(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_TUNE_SUMMARY)


@contextlib.contextmanager
def _tune_summary_dropped():
    """While Tune runs, its logger ``ray.tune.tune`` drops ``_TUNE_SUMMARY``'s lines; a failed
    trial's error is still logged."""
    logger, drop = logging.getLogger("ray.tune.tune"), _DropTuneSummary()
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


class RayBackend:
    """Evaluates archs as Ray Tune trials, ``num_workers`` at a time, steered by the study.

    ``address``: ``None`` starts a local Ray instance on 127.0.0.1 (shut down afterwards); "auto",
    "host:port" or "ray://host:10001" joins a cluster. ``storage_path``: Tune's experiment folder
    (default ``<run dir>/ray_results``). Records go into the study as trials finish. Failed trials
    are retried ``max_failures`` times, then failed in the study (their arch may come again)."""

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
        if int(max_failures) < -1:
            raise SharenasError(
                f"backend.max_failures must be >= 0, or -1 to retry without end, got "
                f"{max_failures!r}"
            )
        if address is not None:  # before any training: a wrong address fails at once
            check_reachable(str(address))
        self.address, self.num_workers = address, int(num_workers)
        self.cpus_per_trial, self.gpus_per_trial = float(cpus_per_trial), float(gpus_per_trial)
        self.max_failures, self.storage_path = int(max_failures), storage_path
        self.progress = progress
        self.interrupted = False  # Tune stopped before the study did (Ctrl-C)

    def run(self, study: Study, evaluate: Callable[[Arch], dict]) -> None:
        """Evaluate the study's proposals with ``evaluate`` on Ray workers until it stops."""
        payload = cloudpickle.dumps((evaluate, study.space), protocol=5)
        blob = np.frombuffer(payload, dtype=np.uint8)  # a numpy array: workers read it zero-copy
        run_id = uuid.uuid4().hex[:12]
        search_alg = StudySearch(study, race=getattr(evaluate, "race", None))
        progress = _Progress(max(0, study.n_trials - study.n_used()), self.progress)
        started = not ray.is_initialized()  # then shut down (a cluster: disconnect) at the end
        if started:  # a local instance on 127.0.0.1, or join the cluster at ``address``
            num_cpus = max(1, math.ceil(self.num_workers * self.cpus_per_trial))
            connect(self.address, num_cpus)
        try:
            self._check_resources(local=started and self.address is None)
            if ray.util.client.ray.is_connected():  # Ray Client: Tune would drive on the cluster
                self._run_tasks(study, search_alg, blob, run_id, progress)
            else:  # with_parameters puts the blob into the object store now, so after ray.init
                tuner = self._tuner(blob, run_id, search_alg, progress)
                with contextlib.redirect_stdout(io.StringIO()), _tune_summary_dropped():
                    tuner.fit()  # (Tune prints a header at verbose=0)
                # Tune catches Ctrl-C itself and returns: the study had more to propose
                self.interrupted = not search_alg.finished
                for proposal in search_alg.running.values():  # in flight when Tune stopped
                    study.tell_error(proposal, "interrupted (Ray Tune stopped)")
                search_alg.running.clear()
                if self.interrupted:
                    print(
                        f"interrupted: keeping the {search_alg.told} archs evaluated so far in "
                        "this run (a search with searcher.storage resumes where it stopped)",
                        file=sys.stderr,
                    )
        finally:
            if progress.bar is not None:
                progress.bar.close()
            if started:
                ray.shutdown()
        if search_alg.errors:
            print(
                f"warning: {len(search_alg.errors)} Ray trials failed after "
                f"backend.max_failures={self.max_failures} retries (left out)",
                file=sys.stderr,
            )

    def _check_resources(self, local: bool) -> None:
        """A trial asks for more CPUs or GPUs than the whole Ray cluster has: on the local
        instance no trial could ever start, so one line refuses it; a cluster may still grow (an
        autoscaler adds nodes), so there it is a warning instead of a silent wait."""
        have = ray.cluster_resources()
        for key, unit, need in (
            ("backend.cpus_per_trial", "CPU", self.cpus_per_trial),
            ("backend.gpus_per_trial", "GPU", self.gpus_per_trial),
        ):
            total = float(have.get(unit, 0.0))
            if need <= total:
                continue
            what = f"{key}={need:g} but the Ray cluster has {total:g} {unit}s in all"
            if local:
                raise SharenasError(f"{what}: no trial could start")
            print(
                f"warning: {what}: trials wait until a node with them joins (Ctrl-C stops)",
                file=sys.stderr,
            )

    def _run_tasks(
        self,
        study: Study,
        search_alg: StudySearch,
        blob: np.ndarray,
        run_id: str,
        progress: _Progress,
    ) -> None:
        """Under Ray Client, Tune's driver would run on the cluster, away from the study in this
        process. Here the same adapter is driven with Ray tasks, ``num_workers`` at a time, each
        retried ``max_failures`` times (a dead worker, or an error)."""
        task = ray.remote(_evaluate).options(
            num_cpus=self.cpus_per_trial,
            num_gpus=self.gpus_per_trial,
            max_retries=self.max_failures,
            retry_exceptions=True,
        )
        blob_ref = ray.put(blob)
        running: dict[Any, str] = {}  # task -> trial id
        progress.setup()
        while True:
            while len(running) < self.num_workers:
                trial_id = uuid.uuid4().hex[:8]
                config = search_alg.suggest(trial_id)
                if not isinstance(config, dict):
                    break
                running[task.remote(config, blob_ref, run_id)] = trial_id
            if not running:
                return
            [ref], _ = ray.wait(list(running), num_returns=1)
            trial_id = running.pop(ref)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayError:
                search_alg.on_trial_complete(trial_id, error=True)
            else:
                search_alg.on_trial_complete(trial_id, result)
            progress.bar.update(1)

    def _tuner(
        self, blob: np.ndarray, run_id: str, search_alg: StudySearch, progress: _Progress
    ) -> tune.Tuner:
        storage = self.storage_path or str(run_dir() / "ray_results")
        storage = storage if "://" in storage else str(Path(storage).expanduser().resolve())
        trainable = tune.with_resources(
            tune.with_parameters(_evaluate_trial, evaluator_blob=blob, run_id=run_id),
            {"cpu": self.cpus_per_trial, "gpu": self.gpus_per_trial},
        )
        return tune.Tuner(
            trainable,
            param_space={},
            tune_config=tune.TuneConfig(
                search_alg=search_alg,
                num_samples=-1,  # until the study stops proposing
                max_concurrent_trials=self.num_workers,
                reuse_actors=True,
                trial_dirname_creator=lambda trial: f"trial_{trial.trial_id}",
            ),
            run_config=tune.RunConfig(
                storage_path=storage,
                name=f"sharenas-{run_id}",
                failure_config=tune.FailureConfig(max_failures=self.max_failures),
                verbose=0,
                callbacks=[progress, JsonLoggerCallback()],
            ),
        )
