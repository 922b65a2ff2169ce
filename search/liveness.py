"""Telling a live trial from a stale one on shared storage.

A trial in flight carries its owner (host, boot id, pid and the pid's start time, as trial system
attrs) and a heartbeat (wall time, rewritten every ``interval`` seconds by a daemon thread). A
RUNNING trial of another process is stale when its owner ran on this host and that process is
gone (exact, no waiting), or, for an owner on another host, when its heartbeat (or, before the
first one, its start) is older than ``grace`` seconds. Optuna's own heartbeat
(``RDBStorage(heartbeat_interval=...)``, ``optuna.storages.fail_stale_trials``) serves RDB storages
and ``study.optimize`` only; this serves every storage and the ask-and-tell loop.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

OWNER_ATTR = "sharenas_owner"
HEARTBEAT_ATTR = "sharenas_heartbeat"
STALE_ATTR = "sharenas_stale"


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux ``/proc``), None if gone."""
    stat = _read(f"/proc/{pid}/stat")
    return stat.rsplit(")", 1)[1].split()[19] if stat else None


def this_process() -> dict[str, Any]:
    pid = os.getpid()
    return {
        "host": socket.gethostname(),
        "boot": _read("/proc/sys/kernel/random/boot_id"),
        "pid": pid,
        "start": _start_time(pid),
    }


def owner_alive(owner: dict[str, Any]) -> bool | None:
    """True/False when ``owner`` ran on this host (since this boot); None when it cannot be told."""
    me = this_process()
    if owner.get("host") != me["host"] or owner.get("boot") != me["boot"] or me["boot"] is None:
        return None
    return _start_time(int(owner["pid"])) == owner.get("start")


def is_stale(trial: FrozenTrial, grace: float, now: float | None = None) -> bool:
    """Whether a RUNNING trial's owner is gone (see the module doc)."""
    if trial.state != TrialState.RUNNING:
        return False
    owner = trial.system_attrs.get(OWNER_ATTR)
    alive = owner_alive(owner) if isinstance(owner, dict) else None
    if alive is not None:
        return not alive
    beat = trial.system_attrs.get(HEARTBEAT_ATTR)
    if beat is None and trial.datetime_start is not None:
        beat = trial.datetime_start.timestamp()
    return beat is not None and (now or time.time()) - float(beat) > grace


def fail_stale(
    storage: optuna.storages.BaseStorage,
    study_id: int,
    trials: list[FrozenTrial],
    grace: float,
    where: str,
) -> int:
    """Mark the stale RUNNING ``trials`` failed (and ``STALE_ATTR``); returns how many."""
    stale = [t for t in trials if is_stale(t, grace)]
    for t in stale:
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
        try:
            storage.set_trial_system_attr(trial_id, STALE_ATTR, True)
            storage.set_trial_state_values(trial_id, TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another process failed it first
    if stale:
        numbers = ", ".join(str(t.number) for t in stale)
        print(
            f"{where}: {len(stale)} trials left running by a process that is gone (trials "
            f"{numbers}) are marked failed",
            file=sys.stderr,
        )
    return len(stale)


class Heartbeat:
    """A daemon thread that rewrites the heartbeat of every trial this process has in flight."""

    def __init__(self, storage: optuna.storages.BaseStorage, interval: float) -> None:
        self.storage, self.interval = storage, interval
        self.trial_ids: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, trial_id: int) -> None:
        self.storage.set_trial_system_attr(trial_id, OWNER_ATTR, this_process())
        self.storage.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())
        with self._lock:
            self.trial_ids.add(trial_id)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="study-heartbeat", daemon=True)
            self._thread.start()

    def remove(self, trial_id: int) -> None:
        with self._lock:
            self.trial_ids.discard(trial_id)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                ids = list(self.trial_ids)
            for trial_id in ids:
                try:
                    self.storage.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())
                except Exception:  # finished meanwhile (a told trial's attrs are frozen)
                    self.remove(trial_id)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
