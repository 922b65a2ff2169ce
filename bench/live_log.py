"""The cost of live TensorBoard logging: a search with ``results.live_log=true`` against the same
search with it off (the same records, sessions and curves, written at the end), paired and
interleaved, from one trained checkpoint.

    python -m bench.live_log [--trials 200] [--reps 3] [OVERRIDE ...]

Extra Hydra overrides (e.g. ``recipe=legacy``) go to both the training and the searches.

Prints the median wall time of each setting and their ratio (live / at the end).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(command: list[str]) -> float:
    """Wall seconds of one run of ``command`` from the repository root."""
    tic = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True)
    return time.perf_counter() - tic


def search_command(
    checkpoint: Path, out: Path, trials: int, live: bool, extra: list[str] = ()
) -> list[str]:
    return [
        sys.executable,
        "search.py",
        f"supernet.checkpoint={checkpoint}",
        "searcher=random",
        f"searcher.n_trials={trials}",
        "verify=off",
        "results.export_best=false",
        f"results.live_log={str(live).lower()}",
        "trainer.num_threads=1",
        f"hydra.run.dir={out}",
        *extra,
    ]


def ratio_line(live: list[float], end: list[float]) -> str:
    """The figures line: medians and the ratio live / end."""
    a, b = statistics.median(live), statistics.median(end)
    return f"live {a:.1f} s  at-the-end {b:.1f} s  live/end {a / b:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for training and searches")
    args = parser.parse_args()
    extra = list(args.overrides)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        train = [sys.executable, "train.py", "trainer.num_threads=1", f"hydra.run.dir={root / 't'}"]
        train += extra
        subprocess.run(train, cwd=ROOT, check=True, capture_output=True)
        checkpoint = root / "t" / "supernet.pt"
        times: dict[bool, list[float]] = {True: [], False: []}
        for rep in range(args.reps):
            order = (True, False) if rep % 2 == 0 else (False, True)
            for live in order:
                out = root / f"s{rep}{int(live)}"
                times[live].append(timed(search_command(checkpoint, out, args.trials, live, extra)))
            print(f"rep {rep}: live {times[True][-1]:.1f} s, at the end {times[False][-1]:.1f} s")
        what = " ".join(extra) or "the defaults"
        print(f"{args.trials}-trial random search on digits ({what}), {args.reps} paired runs:")
        print(ratio_line(times[True], times[False]))


if __name__ == "__main__":
    main()
