"""How many CPU threads torch uses: one setting (``trainer.num_threads``), derived once per process.

``auto`` (the default) never oversubscribes the CPUs this process may use. It takes the smallest
of
- the CPUs in the process's affinity mask (``os.sched_getaffinity``: ``taskset``, cpusets),
- the cgroup CPU quota (``/sys/fs/cgroup/cpu.max``, or cgroup v1's ``cpu.cfs_quota_us``), rounded
  up,
- ``OMP_NUM_THREADS`` when it is set (Ray sets it in each worker to the CPUs of its trial),
- the CPUs left idle by other processes, measured over 0.1 s from ``/proc/stat`` (a busy machine
  gets fewer threads: OpenMP threads that wait on a descheduled peer thrash),
then divides by the number of workers that run in parallel, never below one. An integer is used
as given. The thread count can change the last bits of float sums: set an integer for
bit-identical reruns across machines and loads.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from supernet.errors import SharenasError

#: Seconds of /proc/stat sampling to measure idle CPUs (once per process, at start-up).
IDLE_PROBE_S = 0.1


@dataclass(frozen=True)
class Threads:
    """A derived thread count and the reason, as printed."""

    n: int
    why: str

    def __str__(self) -> str:
        return f"threads: {self.n} ({self.why})"


def check_threads(setting: Any) -> int | None:
    """The integer of ``setting``, or None for ``auto`` / None; one clear line otherwise."""
    if setting is None or (isinstance(setting, str) and setting.strip().lower() == "auto"):
        return None
    if isinstance(setting, bool) or not isinstance(setting, int | str):
        raise SharenasError(
            f"trainer.num_threads must be 'auto' or an integer >= 1, got {setting!r}"
        )
    try:
        n = int(setting)
    except ValueError:
        n = 0
    if n < 1:
        raise SharenasError(
            f"trainer.num_threads must be 'auto' or an integer >= 1, got {setting!r}"
        )
    return n


def affinity_cpus() -> int:
    """CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cgroup_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """The cgroup CPU quota in CPUs (e.g. 1.5), or None when unlimited or unknown."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:  # cgroup v1
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None


def omp_threads() -> int | None:
    """``OMP_NUM_THREADS`` when set to a positive integer."""
    try:
        n = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        return None
    return n if n >= 1 else None


def _cpu_times() -> tuple[int, int] | None:
    """(idle + iowait, total) jiffies of all CPUs, from /proc/stat; None off Linux."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    return fields[3] + fields[4], sum(fields[:8])


def idle_cpus(seconds: float = IDLE_PROBE_S) -> float | None:
    """CPUs idle over ``seconds`` (machine-wide), or None when /proc/stat is unreadable."""
    before = _cpu_times()
    if before is None:
        return None
    time.sleep(seconds)
    after = _cpu_times()
    total = after[1] - before[1]
    if total <= 0:
        return None
    return (os.cpu_count() or 1) * (after[0] - before[0]) / total


def local_world_size() -> int:
    """Processes ``torchrun`` started on this machine (1 outside ``torchrun``)."""
    try:
        return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        return 1


def resolve_threads(setting: Any = "auto", workers: int = 1, probe_idle: bool = True) -> Threads:
    """The thread count for ``setting`` with ``workers`` processes computing at once."""
    n = check_threads(setting)
    if n is not None:
        return Threads(n, "trainer.num_threads")
    limits = {"affinity": affinity_cpus()}
    quota = cgroup_quota()
    if quota is not None:
        limits["cgroup quota"] = max(1, math.ceil(quota))
    omp = omp_threads()
    if omp is not None:
        limits["OMP_NUM_THREADS"] = omp
    idle = idle_cpus() if probe_idle else None
    if idle is not None:
        limits["idle CPUs"] = max(1, math.floor(idle + 0.5))
    n = min(limits.values())
    why = ", ".join(f"{k} {v}" for k, v in limits.items())
    if workers > 1:
        n, why = max(1, n // workers), f"{why}, / {workers} parallel workers"
    return Threads(n, f"auto: {why}")


def apply_threads(
    setting: Any = "auto", workers: int = 1, probe_idle: bool = True, say: Any = print
) -> int:
    """Derive the thread count, ``torch.set_num_threads`` it, print it with its reason; returns it.
    Call it at the start of each process that computes (``train``, ``search``, verify and Ray
    workers: ``probe_idle=False`` there, as their peers are busy by design)."""
    threads = resolve_threads(setting, workers, probe_idle)
    torch.set_num_threads(threads.n)
    if say is not None:
        say(str(threads))
    return threads.n
