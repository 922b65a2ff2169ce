"""Fault-injecting evaluators for the Ray backend: a worker that kills itself at a known point.

A ``KillingEvaluator`` is pickled into the Ray workers like the real evaluator. Evaluations are
numbered across the whole cluster through files created with ``O_EXCL`` in ``marks``; the
evaluation numbered ``kill_at`` SIGKILLs its own worker process, and so do the next
``kills - 1`` attempts at the same arch (its retries), so the fault is reached by count, never
by timing. ``stop`` is another hook: the evaluation numbered ``kill_at`` calls it (e.g. to kill a
whole node) instead of killing itself."""

from __future__ import annotations

import hashlib
import os
import signal
import time
from pathlib import Path

from supernet.arch import Arch


def _claim(folder: Path, prefix: str) -> int:
    """The lowest free number ``n`` with ``folder/<prefix><n>`` created by this call."""
    n = 0
    while True:
        try:
            os.close(os.open(folder / f"{prefix}{n}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            return n
        except FileExistsError:
            n += 1


def _other_pid(folder: Path, own: int) -> int:
    """The worker of the latest evaluation that ran in another process than ``own``."""
    runs = sorted(folder.glob("pid_*"), key=lambda f: int(f.name[4:]), reverse=True)
    pids = [int(f.read_text().split()[0]) for f in runs]
    return next(pid for pid in pids if pid != own)


class KillingEvaluator:
    """Scores an arch with a deterministic stand-in for accuracy; evaluation ``kill_at`` (and the
    retries of its arch, ``kills`` attempts in all) kill their own worker with SIGKILL. With
    ``other``, evaluation ``kill_at`` kills the worker of an earlier evaluation instead (another
    Ray actor, running a trial or idle in Tune's actor cache)."""

    def __init__(self, marks: Path, kill_at: int, kills: int = 1, other: bool = False) -> None:
        self.marks, self.kill_at, self.kills, self.other = Path(marks), kill_at, kills, other

    def __call__(self, arch: Arch) -> dict:
        n = _claim(self.marks, "eval_")
        (self.marks / f"pid_{n}").write_text(f"{os.getpid()} {arch}")
        victim = self.marks / "victim"
        if n == self.kill_at and self.other:  # another worker, busy or idle between trials
            os.kill(_other_pid(self.marks, os.getpid()), signal.SIGKILL)
        elif n == self.kill_at:
            victim.write_text(str(arch))
        if victim.exists() and victim.read_text() == str(arch):
            if _claim(self.marks, "kill_") < self.kills:
                os.kill(os.getpid(), signal.SIGKILL)
        digest = hashlib.sha256(str(arch).encode()).digest()
        return {
            "arch": str(arch),
            "val_acc": digest[0] / 2.55,
            "val_loss": 1.0 + digest[1] / 255,
            "params": 100,
        }


class NodeLosingEvaluator:
    """Like ``KillingEvaluator``, but the first evaluation from number ``lose_at`` on that runs on
    another node than ``head`` (a Ray node id) writes that node's id to ``marks/lose_node`` and
    waits there: the test removes the node (``Cluster.remove_node``) with the trial on it.

    Evaluations from ``lose_at`` on that run on ``head`` hold its CPU until the node is lost, so
    the next trial can only be placed on the other node: the fault is reached by construction,
    not by how fast trials finish."""

    def __init__(self, marks: Path, lose_at: int, head: str) -> None:
        self.marks, self.lose_at, self.head = Path(marks), lose_at, head

    def __call__(self, arch: Arch) -> dict:
        import ray

        n = _claim(self.marks, "eval_")
        node = ray.get_runtime_context().get_node_id()
        (self.marks / f"node_{n}").write_text(f"{node} {arch}")
        if n >= self.lose_at and node == self.head:
            deadline = time.monotonic() + 300
            while not (self.marks / "removed").exists() and time.monotonic() < deadline:
                time.sleep(0.2)
        elif n >= self.lose_at and _claim(self.marks, "lose_") == 0:
            (self.marks / "victim").write_text(str(arch))
            (self.marks / "lose_node").write_text(node)
            time.sleep(3600)  # the node goes down with this worker
        digest = hashlib.sha256(str(arch).encode()).digest()
        return {"arch": str(arch), "val_acc": digest[0] / 2.55, "params": 100}
