"""OptunaSearcher: any Optuna sampler over the space's categorical decisions."""

from __future__ import annotations

import hashlib
import inspect
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna

from search.searchers.base import Proposal, Searcher
from supernet.errors import SharenasError
from supernet.spaces.base import Space

# Samplers that handle categorical parameters (CMA-ES and QMC do not).
SAMPLERS: dict[str, type[optuna.samplers.BaseSampler]] = {
    "tpe": optuna.samplers.TPESampler,
    "nsga2": optuna.samplers.NSGAIISampler,
    "gp": optuna.samplers.GPSampler,
    "random": optuna.samplers.RandomSampler,
}
JOURNAL_SUFFIXES = (".log", ".journal")
#: Study user attr: the supernet checkpoint the study's trials were scored on.
CHECKPOINT_ATTR = "sharenas_checkpoint"
#: Study user attr: the settings that shape a score (evaluator config, seed).
SETTINGS_ATTR = "sharenas_settings"
#: Trial user attr: the evaluator's record of the trial's arch.
RECORD_ATTR = "sharenas_record"


def make_storage(storage: str | None) -> str | optuna.storages.BaseStorage | None:
    """``None``: in memory; a path ending in .log/.journal: a journal file (safe for several
    processes on one file system); anything else is an RDB URL such as ``sqlite:///study.db``."""
    if storage is not None and str(storage).endswith(JOURNAL_SUFFIXES):
        Path(storage).parent.mkdir(parents=True, exist_ok=True)
        backend = optuna.storages.journal.JournalFileBackend(str(storage))
        return optuna.storages.JournalStorage(backend)
    return storage


def checkpoint_identity(path: str | Path) -> dict[str, str]:
    """``{"path": resolved path, "sha256": hash of the bytes}`` of a supernet checkpoint.

    A content hash rather than path + size + mtime: a moved or copied checkpoint is still the same
    supernet and may resume its study, while a supernet retrained into the same path (same size,
    e.g. a reused hydra.run.dir) is not. Reading the file once costs about a second per GB, small
    next to loading it and scoring archs. The path only names the checkpoint in messages."""
    resolved = Path(path).expanduser().resolve()
    with resolved.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    return {"path": str(resolved), "sha256": digest}


def _plain(obj: Any) -> Any:
    """numpy / torch scalars as Python numbers; anything else as its string."""
    return obj.item() if hasattr(obj, "item") else str(obj)


def jsonable(record: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``record`` that JSON (and so every Optuna storage) round-trips unchanged."""
    return json.loads(json.dumps(dict(record), default=_plain))


class OptunaSearcher(Searcher):
    """Search with an Optuna study through its ask-and-tell API (Akiba et al., "Optuna: A
    Next-generation Hyperparameter Optimization Framework", KDD 2019).

    Every decision of the space is one ``suggest_categorical``. ``sampler`` picks TPE (Bergstra et
    al., NeurIPS 2011), NSGA-II (Deb et al., 2002; for several objectives), GP (Bayesian
    optimisation) or random; ``sampler_kwargs`` go to the sampler class (e.g. n_startup_trials).

    Constraints: ``tell(..., constraints=[c0, c1, ...])`` records each value with
    ``trial.set_constraint(str(i), c)`` before ``study.tell``; Optuna 5 samplers read
    ``trial.constraints`` directly (the older ``constraints_func`` argument is deprecated).

    Resume: with a persistent ``storage`` and the same ``study_name`` the study is loaded and trial
    numbers continue. ``n_trials`` is the budget of the whole study, so a resumed run proposes
    only what is left. Each told trial keeps the evaluator's whole record (trial user attr
    ``RECORD_ATTR``), so a resumed run ranks the earlier archs with the new ones
    (``resumed_records``); the study keeps the identity of the supernet checkpoint it scores
    (study user attr ``CHECKPOINT_ATTR``, see ``checkpoint_identity``), and ``use_checkpoint``
    refuses to continue it on another supernet.
    """

    def __init__(
        self,
        space: Space,
        seed: int = 0,
        n_trials: int | None = 50,
        objectives: Sequence[str] | None = None,
        directions: Sequence[str] | None = None,
        sampler: str = "tpe",
        sampler_kwargs: Mapping[str, Any] | None = None,
        storage: str | None = None,
        study_name: str = "sharenas",
    ) -> None:
        super().__init__(space, seed, n_trials, objectives, directions)
        if sampler not in SAMPLERS:
            raise SharenasError(
                f"unknown optuna sampler {sampler!r}; allowed: {', '.join(SAMPLERS)}"
            )
        self.sampler_name = sampler
        self.sampler_kwargs = dict(sampler_kwargs or {})
        self._warn_small_budget()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.storage, self.study_name = storage, study_name
        self.study = optuna.create_study(
            sampler=self.make_sampler(),
            storage=make_storage(storage),
            study_name=study_name,
            load_if_exists=True,
            directions=self.directions,
        )
        # Arch string -> (values, constraints) of every finished trial, also those of a resumed
        # study, so a repeated proposal is answered from memory and never spends the budget.
        self._known: dict[str, tuple[list[float], list[float] | None]] = {}
        self._pending: set[str] = set()
        self._earlier: dict[str, dict[str, Any]] = {}  # arch -> stored record, oldest trial first
        for t in sorted(self.study.get_trials(deepcopy=False), key=lambda t: t.number):
            if t.state == optuna.trial.TrialState.COMPLETE and set(t.params) == set(
                space.choices()
            ):
                key = str(space.make(t.params))
                self._known[key] = (list(t.values), None)
                if RECORD_ATTR in t.user_attrs and key not in self._earlier:
                    self._earlier[key] = {"trial": t.number, **t.user_attrs[RECORD_ATTR]}
        self.n_asked = len(self._known)
        # every finished trial, also those of another space's params: a study that holds any
        # is bound to its supernet, whatever space the current run asks for
        finished = optuna.trial.TrialState.COMPLETE
        self._finished = sum(t.state == finished for t in self.study.get_trials(deepcopy=False))
        if missing := len(self._known) - len(self._earlier):
            print(
                f"warning: {self._where()} has {missing} finished archs without a stored record "
                f"(told without one, e.g. by an older sharenas): they count against "
                f"searcher.n_trials but are left out of the results",
                file=sys.stderr,
            )

    def _where(self) -> str:
        return f"Optuna study {self.study_name!r} in searcher.storage={self.storage}"

    def resumed_records(self) -> list[dict[str, Any]]:
        """The records earlier runs stored in the study (``RECORD_ATTR``), oldest trial first."""
        return [dict(r) for r in self._earlier.values()]

    def use_checkpoint(
        self, checkpoint: str | Path | None, settings: Mapping[str, Any] | None = None
    ) -> None:
        """Record the checkpoint's identity in a persistent study, or refuse one that differs
        from the supernet the study's finished trials were scored on: their scores would mix.
        ``None`` (a new supernet is about to be trained) is refused for a study with trials."""
        if self.storage is None:  # an in-memory study starts empty and is never resumed
            return
        bound = self.study.user_attrs.get(CHECKPOINT_ATTR)
        done = self._finished
        if checkpoint is None:
            if bound and done:
                raise SharenasError(
                    f"{self._where()} holds {done} archs scored on supernet {bound['path']}, but "
                    f"supernet.checkpoint=null trains a new supernet; pass "
                    f"supernet.checkpoint={bound['path']} to resume it, or use another "
                    f"searcher.study_name or searcher.storage"
                )
            return
        ident = checkpoint_identity(checkpoint)
        if bound and done and bound.get("sha256") != ident["sha256"]:
            raise SharenasError(
                f"{self._where()} was scored on supernet {bound['path']}, not on "
                f"supernet.checkpoint={ident['path']} (its contents differ): use another "
                f"searcher.study_name or searcher.storage for this supernet"
            )
        if not bound and done:
            print(
                f"warning: {self._where()} has {done} archs but no recorded supernet (written by "
                f"an older sharenas); assuming they were scored on {ident['path']}",
                file=sys.stderr,
            )
        if bound != ident:
            self.study.set_user_attr(CHECKPOINT_ATTR, ident)
        self._use_settings(jsonable(settings or {}), done)

    def _use_settings(self, settings: dict[str, Any], done: int) -> None:
        """Refuse a resumed study whose stored records were scored with other settings (e.g.
        another ``evaluator.calib_batches``, or without ``train_loss`` that the ranking needs)."""
        stored = self.study.user_attrs.get(SETTINGS_ATTR)
        if stored is not None and done and stored != settings:
            keys = sorted(k for k in {*stored, *settings} if stored.get(k) != settings.get(k))
            changes = ", ".join(f"{k}: {stored.get(k)!r} -> {settings.get(k)!r}" for k in keys)
            raise SharenasError(
                f"{self._where()} was scored with other settings ({changes}); use them again, "
                f"or another searcher.study_name or searcher.storage"
            )
        if stored != settings:
            self.study.set_user_attr(SETTINGS_ATTR, settings)

    #: After this many repeated proposals in a row, an unseen random arch is enqueued instead.
    max_repeats = 8

    def _unseen_params(self) -> dict[str, str]:
        for _ in range(1000):
            arch = self.space.sample(self.rng)
            if str(arch) not in self._known and str(arch) not in self._pending:
                return dict(arch)
        return dict(arch)

    def _warn_small_budget(self) -> None:
        """NSGA-II samples its first generation at random: with fewer trials than one generation
        the whole run is random search. Say so (one line) instead of silently wasting the run."""
        if self.sampler_name != "nsga2" or self.n_trials is None:
            return
        default = inspect.signature(SAMPLERS["nsga2"]).parameters["population_size"].default
        size = self.sampler_kwargs.get("population_size", default)
        if isinstance(size, int) and self.n_trials < size:
            print(
                f"warning: searcher.n_trials={self.n_trials} is below the NSGA-II population size "
                f"{size} (searcher.sampler_kwargs.population_size): the run is effectively random "
                f"search; lower population_size or raise n_trials",
                file=sys.stderr,
            )

    def make_sampler(self) -> optuna.samplers.BaseSampler:
        """A fresh sampler as configured (also for Ray Tune's ``OptunaSearch(sampler=...)``)."""
        cls = SAMPLERS[self.sampler_name]
        try:
            return cls(seed=self.seed, **self.sampler_kwargs)
        except TypeError as err:  # an unknown keyword: name it and point at the signature
            raise SharenasError(
                f"searcher.sampler_kwargs {self.sampler_kwargs} do not fit {cls.__name__}: {err}"
            ) from err

    def distributions(self) -> dict[str, optuna.distributions.CategoricalDistribution]:
        """Decision -> categorical distribution (the search space for Ray Tune's OptunaSearch)."""
        return {
            decision: optuna.distributions.CategoricalDistribution(choices)
            for decision, choices in self.space.choices().items()
        }

    def ask(self) -> Proposal | None:
        """The next *unseen* arch. Optuna samplers (TPE especially) re-propose archs they already
        scored; such trials are told their known values at once, and after ``max_repeats`` in a
        row an unseen random arch is enqueued (``study.enqueue_trial``) so the study moves on."""
        if not self._budget_left():
            return None
        for attempt in range(self.max_repeats + 1):
            if attempt == self.max_repeats:
                self.study.enqueue_trial(self._unseen_params())
            trial = self.study.ask()
            params = {d: trial.suggest_categorical(d, c) for d, c in self.space.choices().items()}
            arch = self.space.make(params)
            key = str(arch)
            if key in self._known:
                values, constraints = self._known[key]
                for i, c in enumerate(constraints or []):
                    trial.set_constraint(str(i), float(c))
                self.study.tell(trial, values)
                continue
            if key in self._pending and attempt < self.max_repeats:
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
                continue
            break
        self._pending.add(key)
        self.n_asked += 1
        return Proposal(arch=arch, trial=trial.number, handle=trial)

    def tell(
        self,
        proposal: Proposal,
        values: Sequence[float],
        constraints: Sequence[float] | None = None,
        record: Mapping[str, Any] | None = None,
    ) -> None:
        """Tell the study; the first trial of an arch also stores ``record`` (``RECORD_ATTR``)
        so a resumed run can rank it (a trial's attrs are frozen once it is told)."""
        values = self._check_values(values)
        trial: optuna.trial.Trial = proposal.handle
        key = str(proposal.arch)
        for i, c in enumerate(constraints or []):
            trial.set_constraint(str(i), float(c))
        if record is not None and key not in self._known:
            trial.set_user_attr(RECORD_ATTR, jsonable(record))
        self.study.tell(trial, values)
        self._pending.discard(key)
        self._known[key] = (list(values), list(constraints) if constraints is not None else None)

    def state_dict(self) -> dict[str, Any]:
        raise NotImplementedError("OptunaSearcher keeps its state in searcher.storage")

    def load_state_dict(self, state: dict[str, Any]) -> None:
        raise NotImplementedError("OptunaSearcher keeps its state in searcher.storage")
