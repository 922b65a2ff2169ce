"""Paired comparison of two fidelity rows, seed by seed (no training: reads bench/runs).

Two rows whose supernets differ only in how they are scored (e.g. ``-ema0.998`` keeps an average
of the weights but trains bit-identical raw weights) are best compared per seed: the seed's
training noise cancels in the difference. Prints Kendall tau of each row per seed, the difference,
and how many seeds the second row wins; then P@top-10% and top-1 regret of both rows per seed.

``--bootstrap N`` adds the other source of doubt: the sampled cells. It resamples the cells
with replacement N times (seeded), keeping the seeds fixed, and prints the 5th-95th percentile of
the mean tau difference and how often it is > 0. A gain that holds on most resamples is not
carried by a few cells; it says nothing about cells outside NB201 or about other seeds.

    python -m bench.paired full-cost_binned-lr0.02 full-cost_binned-lr0.02-ema0.998
    python -m bench.paired ROW_A ROW_B --estimator neg_train_loss --seeds 0 1 2 3 4 5
    python -m bench.paired ROW_A ROW_B --bootstrap 1000 [--sample uniform]
"""

from __future__ import annotations

import argparse
import statistics
import sys

import numpy as np
from scipy import stats

from bench.edge_effects import add_run_args, load_row
from bench.ground_truth import SAMPLES
from search.fidelity import fidelity_report, kendall_tau


def bootstrap_tau_gain(
    first: list[dict[str, float]],
    second: list[dict[str, float]],
    truth: dict[str, float],
    draws: int,
    seed: int = 0,
) -> np.ndarray:
    """``draws`` values of the mean-over-seeds tau difference (second - first), each on the
    cells resampled with replacement (the same resample for both rows and every seed)."""
    archs = sorted(set(truth).intersection(*first, *second))  # as kendall_tau: common cells
    t = np.array([truth[a] for a in archs])
    a = np.array([[run[k] for k in archs] for run in first])
    b = np.array([[run[k] for k in archs] for run in second])
    rng = np.random.default_rng(seed)
    out = np.empty(draws)
    for i in range(draws):
        idx = rng.integers(0, len(archs), len(archs))
        gains = [
            stats.kendalltau(y[idx], t[idx]).statistic - stats.kendalltau(x[idx], t[idx]).statistic
            for x, y in zip(a, b, strict=True)
        ]
        out[i] = np.mean(gains)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first")
    parser.add_argument("second")
    add_run_args(parser, estimator="neg_train_loss")
    parser.add_argument("--bootstrap", type=int, default=0, help="cell resamples (0: none)")
    args = parser.parse_args(argv)
    if args.bootstrap < 0:
        parser.error(f"--bootstrap must be >= 0 (0: none), got {args.bootstrap}")
    truth = SAMPLES[args.sample].load()["mean"]
    seeds = tuple(args.seeds)
    try:
        first, second = (
            load_row(args.runs, r, args.estimator, seeds, args.sample)
            for r in (args.first, args.second)
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
    print(f"{'seed':>4s} {'P@10 first':>11s} {'second':>8s} {'regret first':>13s} {'second':>8s}")
    for seed, a, b in zip(seeds, first, second, strict=True):
        ra, rb = fidelity_report(a, truth), fidelity_report(b, truth)
        print(
            f"{seed:4d} {ra['precision_top10']:11.3f} {rb['precision_top10']:8.3f} "
            f"{ra['top1_regret']:13.3f} {rb['top1_regret']:8.3f}"
        )
    if args.bootstrap:
        gains = bootstrap_tau_gain(first, second, truth, args.bootstrap)
        lo, hi = np.percentile(gains, [5, 95])
        print(
            f"cells resampled {args.bootstrap} times (seeds fixed): mean tau difference 5th-95th "
            f"percentile {lo:+.3f} .. {hi:+.3f}; > 0 on {np.mean(gains > 0):.0%} of the resamples"
        )
    print(f"first: {args.first}\nsecond: {args.second}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
