"""Paired comparison of two fidelity rows, seed by seed (no training: reads bench/runs).

Two rows whose supernets differ only in how they are scored (e.g. ``-ema0.998`` keeps an average
of the weights but trains bit-identical raw weights) are best compared per seed: the seed's
training noise cancels in the difference. Prints Kendall tau of each row per seed, the difference,
and how many seeds the second row wins.

    python bench/paired.py full-cost_binned-lr0.02 full-cost_binned-lr0.02-ema0.998
    python bench/paired.py ROW_A ROW_B --estimator neg_train_loss --seeds 0 1 2 3 4 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.edge_effects import add_run_args, load_row  # noqa: E402
from bench.ground_truth import CACHE  # noqa: E402
from search.fidelity import kendall_tau  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first")
    parser.add_argument("second")
    add_run_args(parser, estimator="neg_train_loss")
    args = parser.parse_args(argv)
    truth = json.loads(CACHE.read_text())["mean"]
    seeds = tuple(args.seeds)
    try:
        first, second = (
            load_row(args.runs, r, args.estimator, seeds) for r in (args.first, args.second)
        )
    except LookupError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"estimator {args.estimator}; Kendall tau against the ground truth, per supernet seed")
    print(f"{'seed':>4s} {'first':>8s} {'second':>8s} {'second - first':>15s}")
    deltas = []
    for seed, a, b in zip(seeds, first, second, strict=True):
        ta, tb = kendall_tau(a, truth), kendall_tau(b, truth)
        deltas.append(tb - ta)
        print(f"{seed:4d} {ta:8.3f} {tb:8.3f} {tb - ta:+15.3f}")
    mean = statistics.fmean(deltas)
    wins = sum(d > 0 for d in deltas)
    print(f"mean difference {mean:+.3f}; the second row is higher on {wins} of {len(deltas)} seeds")
    print(f"first: {args.first}\nsecond: {args.second}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
