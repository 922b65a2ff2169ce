"""Study: the one owner of a search's records, an Optuna study in any Optuna storage."""

from __future__ import annotations

import random
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.liveness import STALE_ATTR, Heartbeat, fail_stale, is_stale
from search.objective import Objective
from search.record import RECORD_FIELDS, Record
from search.searchers.base import Proposal, Searcher
from search.searchers.evolution import REPEAT_ATTR
from search.searchers.steered import SteeredSampler
from search.storage import checkpoint_identity, open_storage
from supernet.arch import Arch
from supernet.errors import SharenasError

KEY_ATTR = "key"  # trial user attr: the arch's identity in the study (canonical form with dedupe)
FAILED_ATTR = "failed"  # why an evaluated arch is not ranked (non-finite scores)
ERROR_ATTR = "error"  # why an evaluation did not finish (it may be evaluated again)
CHECKPOINT_ATTR = "sharenas_checkpoint"  # study user attr: the supernet the records were scored on
SETTINGS_ATTR = "sharenas_settings"  # study user attr: the settings that shape a score
LEGACY_RECORD_ATTR = "sharenas_record"  # one JSON attr per trial, as older sharenas stored it
Listener = Callable[[Record], None]
_UNSETTLED = object()  # a trial whose holder verdict is not kept yet


class Study:
    """The records of one search: which archs were evaluated, their scores, and the budget.

    An Optuna study (in memory, or in the Optuna storage ``searcher.storage``) whose sampler is the
    searcher's. ``ask`` proposes the next arch that no trial of the study holds yet, evaluated or
    in flight in any process on the storage; ``tell`` stores the record (each field its own trial
    user attr), or marks it failed when a score is not finite. ``n_trials`` is the study's budget
    of distinct archs, whichever processes spend it. ``bind`` ties the study to one supernet and
    one scoring. Listeners added with ``add_listener`` get each record as it is stored.
    """

    max_repeats = 8  # repeated proposals in a row before the study steers to an unseen arch
    redirect_repeats = True  # a sampler's proposal of a held arch moves to an unseen neighbour
    heartbeat_interval = 20.0  # seconds between heartbeats of a trial in flight
    grace_period = 120.0  # a heartbeat older than this marks another host's trial stale

    def __init__(self, searcher: Searcher, objective: Objective | None = None) -> None:
        self.searcher, self.space = searcher, searcher.space
        self.objective = objective or Objective(searcher.objectives)
        self.where = f"study {searcher.study_name!r} in searcher.storage={searcher.storage}"
        self.persistent = searcher.storage is not None
        self.storage = open_storage(searcher.storage)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.sampler = SteeredSampler(searcher.make_sampler(), self.space.choices(), self._redirect)
        try:
            self.optuna = optuna.create_study(
                storage=self.storage,
                sampler=self.sampler,
                study_name=searcher.study_name,
                directions=searcher.directions,
                load_if_exists=True,
            )
        except ValueError as err:
            raise SharenasError(f"{self.where} cannot be used: {err}") from None
        self.study_id = self.storage.get_study_id_from_name(searcher.study_name)
        stored = [d.name.lower() for d in self.optuna.directions]
        if stored != searcher.directions:
            raise SharenasError(
                f"{self.where} optimises {stored}, not searcher.directions={searcher.directions}; "
                f"use another searcher.study_name or searcher.storage"
            )
        if self.optuna.metric_names != searcher.objectives:
            with warnings.catch_warnings():  # experimental in Optuna 5, used as documented
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                self.optuna.set_metric_names(list(searcher.objectives))
        self.n_trials = searcher.n_trials if searcher.n_trials is not None else self.space.size()
        self.rng = random.Random(searcher.seed)
        beat = Heartbeat(self.storage, self.heartbeat_interval) if self.persistent else None
        self.heartbeat = beat
        self.listeners: list[Listener] = []
        self.n_failed = 0  # archs of this run whose scores were not finite
        self.n_redirected = 0  # proposals of held archs moved to an unseen neighbour
        self._asking: set[str] | None = None  # keys held while ``ask`` samples a trial
        self._decisions = set(self.space.choices())
        self._settled: dict[int, str | None] = {}  # finished trial -> key it holds (None: none)
        self._enumerated: list[tuple[str, Arch]] | None = None  # (key, arch) of a small space
        self.n_stale = self.fail_stale()
        self.earlier = self.records()  # stored by earlier runs (or other processes)

    # -- records -----------------------------------------------------------------------------------
    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(record)`` as each record is stored (e.g. live TensorBoard logging)."""
        self.listeners.append(listener)

    def trials(self) -> list[FrozenTrial]:
        return self.optuna.get_trials(deepcopy=False)

    def trial_id(self, number: int) -> int:
        return self.storage.get_trial_id_from_study_id_trial_number(self.study_id, number)

    def records(self) -> list[Record]:
        """Every ranked record of the study, one per arch, oldest trial first."""
        out: dict[str, Record] = {}
        for t in sorted(self.trials(), key=lambda t: t.number):
            if t.state == TrialState.COMPLETE and REPEAT_ATTR not in t.user_attrs:
                record = _record(t)
                if record is not None:
                    out.setdefault(record.arch, record)
        return list(out.values())

    def failed(self) -> list[Record]:
        """Evaluated archs whose scores were not finite: never ranked nor exported."""
        return [r for t in self.trials() if FAILED_ATTR in t.user_attrs and (r := _record(t))]

    def _holders(self, trials: list[FrozenTrial]) -> list[tuple[FrozenTrial, str]]:
        """(trial, key) of the trials that hold an arch: evaluated (ranked or failed) or in flight,
        by number. A finished trial never changes, so its verdict is kept and not read again: an
        ask costs one pass over the trial list, not one per trial and field."""
        held = []
        for t in sorted(trials, key=lambda t: t.number):
            key = self._settled.get(t.number, _UNSETTLED)
            if key is _UNSETTLED:
                key = self._holder_key(t)
                if t.state.is_finished():
                    self._settled[t.number] = key
            if key is not None:
                held.append((t, key))
        return held

    def _holder_key(self, t: FrozenTrial) -> str | None:
        """The key of the arch trial ``t`` holds, or None when it holds none."""
        attrs = t.user_attrs
        if KEY_ATTR not in attrs and LEGACY_RECORD_ATTR not in attrs:
            return None
        if set(t.params) != self._decisions:  # another space's trial (refused by ``bind``)
            return None
        if REPEAT_ATTR in attrs or t.system_attrs.get(STALE_ATTR):
            return None
        if t.state in (TrialState.COMPLETE, TrialState.RUNNING) or FAILED_ATTR in attrs:
            return _key(t, self)
        return None

    def n_used(self) -> int:
        """Distinct archs the study holds: the budget spent, by every process on the storage."""
        return len({key for _, key in self._holders(self.trials())})

    # -- ask and tell ------------------------------------------------------------------------------
    def key(self, arch: Arch) -> str:
        """An arch's identity in the study: its canonical form with ``searcher.dedupe``
        (``space.canonical(arch)`` where the space defines one), else its string."""
        canonical = getattr(self.space, "canonical", None)
        return str(canonical(arch)) if self.searcher.dedupe and canonical else str(arch)

    def ask(self) -> Proposal | None:
        """The next arch no trial of the study holds, or None when the budget is spent or the
        space is used up. Repeated proposals are told the known values (so the sampler learns) and
        marked ``repeat_of``; after ``max_repeats`` in a row the next trial gets an unseen arch.
        A whole-arch proposal of a held arch (relative sampling: single-objective TPE, GP,
        evolution, NSGA-II's crossover children) is moved to the nearest unseen arch before the
        trial takes it, so it costs no repeat (``_redirect``)."""
        for attempt in range(4 * self.max_repeats):
            trials = self.trials()
            held = {key: t for t, key in reversed(self._holders(trials))}
            if len(held) >= min(self.n_trials, self.space.size()):
                return None
            if attempt >= self.max_repeats and (unseen := self._unseen(set(held))):
                self.sampler.steer(dict(unseen))
            trial = self.optuna.ask()
            choices = self.space.choices()
            self._asking = set(held)  # the sampler samples at the first suggest
            try:
                params = {d: trial.suggest_categorical(d, c) for d, c in choices.items()}
            finally:
                self._asking = None
            arch = self.space.make(params)
            key = self.key(arch)
            trial.set_user_attr("arch", str(arch))
            trial.set_user_attr(KEY_ATTR, key)
            if self.heartbeat is not None:
                self.heartbeat.add(self.trial_id(trial.number))
            # in memory only this process asks: the trials read above are the whole story
            verdict, first = self._claim(trial.number, key, None if self.persistent else trials)
            if verdict == "new":
                return Proposal(arch=arch, trial=trial.number, handle=trial)
            self._release(trial)
            if verdict == "over":
                trial.set_user_attr(REPEAT_ATTR, -1)  # over the budget: never ranked
                self.optuna.tell(trial, state=TrialState.PRUNED)
                return None
            self._tell_repeat(trial, first)
        return None

    def _claim(
        self, number: int, key: str, trials: list[FrozenTrial] | None = None
    ) -> tuple[str, FrozenTrial | None]:
        """Whether trial ``number`` may evaluate the arch ``key``: "new", "repeat" (of the first
        holder, returned) or "over" (the budget is spent). The lower trial number wins; a lower
        trial still choosing its arch (in another process) is waited for, unless stale."""
        while trials is None:
            trials = self.trials()
            choosing = [
                t
                for t in trials
                if t.number < number
                and t.state == TrialState.RUNNING
                and KEY_ATTR not in t.user_attrs
                and not is_stale(t, self.grace_period)
            ]
            if choosing:
                trials = None
                time.sleep(0.05)
        before = [(t, k) for t, k in self._holders(trials) if t.number < number]
        for t, k in before:
            if k == key:
                return "repeat", t
        spent = len({k for _, k in before}) >= self.n_trials
        return ("over", None) if spent else ("new", None)

    def _tell_repeat(self, trial: optuna.trial.Trial, first: FrozenTrial) -> None:
        trial.set_user_attr(REPEAT_ATTR, first.number)
        if first.state == TrialState.COMPLETE:
            for name, value in first.constraints.items():
                trial.set_constraint(name, value)
            self.optuna.tell(trial, list(first.values))
        else:  # in flight elsewhere, or failed: nothing to learn yet
            self.optuna.tell(trial, state=TrialState.PRUNED)

    def _unseen(self, held: set[str]) -> Arch | None:
        """A uniformly drawn arch that no trial holds (from the explicit remainder when the space
        is small enough to enumerate)."""
        if self.space.size() <= self.space.enumerate_limit:
            if self._enumerated is None:  # the space's keys, made once
                self._enumerated = [(self.key(a), a) for a in self.space.enumerate()]
            rest = [a for k, a in self._enumerated if k not in held]
            return self.rng.choice(rest) if rest else None
        for _ in range(1000):
            if self.key(arch := self.space.sample(self.rng)) not in held:
                return arch
        return None

    def _redirect(self, params: dict[str, Any]) -> dict[str, Any] | None:
        """For a proposal of an arch this study already holds: the params of the nearest unseen
        arch (every arch one decision away, in an order drawn from the study's seeded RNG; then up
        to ``64`` random draws at each larger distance), or None to keep the proposal (not held,
        or nothing unseen found: the repeat is then told as before). A sampler that concentrates
        on a region (TPE late in a search) proposes held archs again and again; each repeat is a
        told trial that makes every later sample slower, and the nearest unseen arch is the closest
        to what the sampler asked for."""
        if not self.redirect_repeats or self._asking is None:
            return None
        if self.key(self.space.make(params)) not in self._asking:
            return None
        for moved in self._nearby(params):
            if self.key(self.space.make(moved)) not in self._asking:
                self.n_redirected += 1
                return moved
        return None

    def _nearby(self, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Params near ``params``, nearest first: all one decision away, then 64 random draws at
        each larger distance; the order comes from the study's seeded RNG."""
        choices = self.space.choices()
        decisions = sorted(d for d in params if len(choices[d]) > 1)
        self.rng.shuffle(decisions)
        for d in decisions:
            for c in self.rng.sample(choices[d], len(choices[d])):
                if c != params[d]:
                    yield {**params, d: c}
        for distance in range(2, len(decisions) + 1):
            for _ in range(64):
                moved = dict(params)
                for d in self.rng.sample(decisions, distance):
                    moved[d] = self.rng.choice([c for c in choices[d] if c != params[d]])
                yield moved

    def _release(self, trial: optuna.trial.Trial) -> None:
        if self.heartbeat is not None:
            self.heartbeat.remove(self.trial_id(trial.number))

    def tell(self, proposal: Proposal, result: Mapping[str, Any] | Record) -> Record | None:
        """Store the evaluated record of ``proposal``; returns it, or None when a score is not
        finite (the trial is then failed and the arch never ranked)."""
        data = result.to_dict() if isinstance(result, Record) else dict(result)
        record = Record.from_mapping({**data, "arch": str(proposal.arch)})
        record.trial = proposal.trial
        trial: optuna.trial.Trial = proposal.handle
        self._release(trial)
        for name in RECORD_FIELDS:
            if name not in ("arch", "trial"):
                trial.set_user_attr(name, getattr(record, name))
        if bad := record.non_finite():
            self.n_failed += 1
            trial.set_user_attr(FAILED_ATTR, f"non-finite {', '.join(bad)}")
            self.optuna.tell(trial, state=TrialState.FAIL)
            return None
        fields = record.to_dict()
        for i, c in enumerate(self.objective.constraints(fields) or []):
            trial.set_constraint(str(i), c)
        self.optuna.tell(trial, self.objective.values(fields))
        for listener in self.listeners:
            listener(record)
        return record

    def tell_error(self, proposal: Proposal, error: str) -> None:
        """An evaluation that did not finish (a crash, Ctrl-C): failed; the arch may come again."""
        trial: optuna.trial.Trial = proposal.handle
        self._release(trial)
        trial.set_user_attr(ERROR_ATTR, error)
        self.optuna.tell(trial, state=TrialState.FAIL)

    # -- lifetime ----------------------------------------------------------------------------------
    def fail_stale(self) -> int:
        """Fail the RUNNING trials whose process is gone (``search.liveness``); returns how many."""
        return fail_stale(self.storage, self.study_id, self.trials(), self.grace_period, self.where)

    def close(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.close()

    def bind(self, checkpoint: str | None, settings: Mapping[str, Any] | None = None) -> None:
        """Tie a persistent study to the supernet ``checkpoint`` (by content hash) and the scoring
        ``settings``; refuse one whose stored records were scored on another supernet or with
        other settings. ``None``: a new supernet is about to be trained (refused for a study that
        holds records)."""
        if not self.persistent:
            return
        trials = self.trials()  # of any space: a study that holds any is bound to its supernet
        done = sum(t.state == TrialState.COMPLETE or FAILED_ATTR in t.user_attrs for t in trials)
        bound = self.optuna.user_attrs.get(CHECKPOINT_ATTR)
        if checkpoint is None:
            if bound and done:
                raise SharenasError(
                    f"{self.where} holds {done} archs scored on supernet {bound['path']}, but "
                    f"supernet.checkpoint=null trains a new supernet; pass "
                    f"supernet.checkpoint={bound['path']} to resume it, or use another "
                    f"searcher.study_name or searcher.storage"
                )
            return
        ident = checkpoint_identity(checkpoint)
        if bound and done and bound.get("sha256") != ident["sha256"]:
            raise SharenasError(
                f"{self.where} was scored on supernet {bound['path']}, not on "
                f"supernet.checkpoint={ident['path']} (its contents differ): use another "
                f"searcher.study_name or searcher.storage for this supernet"
            )
        if bound != ident:
            self.optuna.set_user_attr(CHECKPOINT_ATTR, ident)
        self._bind_settings(dict(settings or {}), done)

    def _bind_settings(self, settings: dict[str, Any], done: int) -> None:
        stored = self.optuna.user_attrs.get(SETTINGS_ATTR)
        if stored is not None and done and stored != settings:
            keys = sorted(k for k in {*stored, *settings} if stored.get(k) != settings.get(k))
            changes = ", ".join(f"{k}: {stored.get(k)!r} -> {settings.get(k)!r}" for k in keys)
            raise SharenasError(
                f"{self.where} was scored with other settings ({changes}); use them again, "
                f"or another searcher.study_name or searcher.storage"
            )
        if stored != settings:
            self.optuna.set_user_attr(SETTINGS_ATTR, settings)


def _record(trial: FrozenTrial) -> Record | None:
    """The record a trial stores (one user attr per field, or an older sharenas' single attr)."""
    attrs = trial.user_attrs
    if LEGACY_RECORD_ATTR in attrs:
        return Record.from_mapping({**attrs[LEGACY_RECORD_ATTR], "trial": trial.number})
    if "arch" not in attrs or "val_acc" not in attrs:
        return None
    return Record.from_mapping({**attrs, "trial": trial.number})


def _key(trial: FrozenTrial, study: Study) -> str:
    attrs = trial.user_attrs
    if KEY_ATTR in attrs:
        return str(attrs[KEY_ATTR])
    return study.key(study.space.parse(str(attrs[LEGACY_RECORD_ATTR]["arch"])))
