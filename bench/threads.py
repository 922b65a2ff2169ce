"""Threads: wall and CPU time of a command with torch's default threads vs ``trainer.num_threads``
auto, on the machine as it is and with CPU hogs beside it, in paired, interleaved repetitions.

    python -m bench.threads [--reps 3] [--hogs 2] [--default 2] [-- COMMAND ...]

The command defaults to the README's first one (``python search.py``, set-up excluded); each
setting is appended to it as a Hydra override. Repetition k runs default then auto (or auto then
default on odd k, so neither always goes first), and the figures are medians over repetitions.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOG = "while 1: pass"
CHOSEN: set[str] = set()  # the "threads: N (why)" lines the runs printed


def run_once(command: list[str], timeout: float) -> tuple[float, float]:
    """(wall s, CPU s of the children) of one run of ``command`` (its thread line kept); a run
    still going after ``timeout`` s is stopped and counts as ``inf`` wall time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    tic = time.perf_counter()
    try:
        done = subprocess.run(
            command, cwd=ROOT, check=True, capture_output=True, text=True, timeout=timeout
        )
        wall = time.perf_counter() - tic
        CHOSEN.update(ln for ln in done.stdout.splitlines() if ln.startswith("threads:"))
    except subprocess.TimeoutExpired:
        wall = math.inf
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def paired(
    command: list[str], settings: dict[str, str], reps: int, out: Path, timeout: float
) -> dict:
    """Setting -> [(wall, cpu), ...], repetitions interleaved and alternating in order."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in settings}
    names = list(settings)
    for k in range(reps):
        for name in names if k % 2 == 0 else names[::-1]:
            run_dir = f"hydra.run.dir={out / f'{name}{k}'}"
            times[name].append(run_once([*command, settings[name], run_dir], timeout))
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600, help="s per run; then inf")
    parser.add_argument("--hogs", type=int, default=2, help="busy-loop processes when loaded")
    parser.add_argument(
        "--default",
        type=int,
        default=os.cpu_count() or 1,
        help="torch's default thread count here (one per core)",
    )
    parser.add_argument("command", nargs="*", default=[sys.executable, "search.py"])
    args = parser.parse_args(argv)
    settings = {
        "default": f"trainer.num_threads={args.default}",
        "auto": "trainer.num_threads=auto",
    }
    print(
        f"command: {' '.join(args.command)} (+ the setting); {args.reps} paired repetitions; "
        f"{os.cpu_count()} CPUs; load average before: {os.getloadavg()[0]:.2f}"
    )
    print(
        f"{'machine':<22} {'setting':<34} {'wall s (median)':>16} {'CPU s (median)':>15} "
        f"{'walls':>24}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for machine, hogs in (("as is", 0), (f"+{args.hogs} CPU hogs", args.hogs)):
            procs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(hogs)]
            try:
                times = paired(
                    args.command, settings, args.reps, Path(tmp) / f"h{hogs}", args.timeout
                )
            finally:
                for p in procs:
                    p.kill()
                    p.wait()
            for name, runs in times.items():
                wall = statistics.median(w for w, _ in runs)
                cpu = statistics.median(c for _, c in runs)
                walls = " ".join(f"{w:.1f}" for w, _ in runs)
                print(
                    f"{machine:<22} {name + ' (' + settings[name] + ')':<34} {wall:>16.1f} "
                    f"{cpu:>15.1f} {walls:>24}"
                )
    print(f"load average after: {os.getloadavg()[0]:.2f}; printed by the runs:")
    for line in sorted(CHOSEN):
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
