"""How well could any estimator score on this ground truth? An oracle under a noise model.

The ground truth is a k-seed mean of standalone test accuracies (3 or 5 seeds), so even an
estimator that knew each cell's *expected* accuracy exactly would not reach tau 1, P@top-10% 1 and
regret 0 against it. This script estimates what that oracle would score, to tell a target the
benchmark cannot resolve from one that only our estimators miss.

Model (empirical Bayes, connected cells only; the cut-off cells score 8.4% on every seed):
- a seed's accuracy of cell a is ``mu_a + e``, ``e ~ N(0, s_a^2)``. ``s_a^2`` is the mean
  within-cell variance of the k seeds over the cells of a's fifth by mean accuracy (the best
  cells are the least noisy), or over all cells (``pooled``, printed as a sensitivity check);
- ``mu_a ~ N(m, t^2)`` over cells, with ``m`` and ``t^2 = var(means) - mean(s_a^2) / k`` fitted
  to the cached means.
For each of ``--draws`` draws of every ``mu_a`` from its posterior given its k seeds, the oracle
(estimate = ``mu``) is scored against the cached ground truth with the benchmark's metrics.
Printed: mean, 10th and 90th percentile of each metric over the draws, and how often it meets
the sample's target (``TARGETS``; "param count" is the parameter count's figure).

A normal prior is a simplification (the means are skewed), so read the figures as a scale, not a
bound.

    python -m bench.ceiling [--sample stratified|uniform] [--draws 2000] [--seed 0]
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np

from bench.ground_truth import CUT_OFF, SAMPLES
from search.fidelity import fidelity_report

# The targets for the best supernet, per sample: metric -> (test(value, param count's), text).
TARGETS = {
    "stratified": {
        "kendall_tau": (lambda v, base: v >= base + 0.05, ">= param count + 0.05"),
        "precision_top10": (lambda v, base: v >= 0.5, ">= 0.5"),
        "top1_regret": (lambda v, base: v <= 0.5, "<= 0.5"),
    },
    "uniform": {
        "kendall_tau": (lambda v, base: v >= base + 0.15, ">= param count + 0.15"),
        "precision_top10": (lambda v, base: v >= base, ">= param count"),
        "top1_regret": (lambda v, base: v <= base, "<= param count"),
    },
}
TARGETS["mbv3"] = TARGETS["uniform"]  # a uniform draw too: beat the cost baselines clearly
NOISE_BINS = 5


def noise_variances(per_seed: np.ndarray, pooled: bool) -> tuple[np.ndarray, list[float]]:
    """Each cell's per-seed noise variance: the mean within-cell variance over its fifth of the
    cells by mean accuracy, or over all cells (``pooled``); and the fifths' variances, from the
    least to the most accurate fifth."""
    within = per_seed.var(1, ddof=1)
    if pooled:
        return np.full(len(within), within.mean()), [float(within.mean())]
    order = np.argsort(per_seed.mean(1), kind="stable")
    out, fifths = np.empty(len(within)), []
    for part in np.array_split(order, NOISE_BINS):
        out[part] = within[part].mean()
        fifths.append(float(within[part].mean()))
    return out, fifths


def oracle_draws(
    per_seed: np.ndarray, draws: int, seed: int, pooled: bool = False
) -> tuple[np.ndarray, str]:
    """``draws`` x cells posterior draws of the expected accuracies (cut-off cells kept at their
    mean), and a line describing the fitted noise model."""
    means = per_seed.mean(1)
    connected = means > CUT_OFF
    k = per_seed.shape[1]
    noise_var, fifths = noise_variances(per_seed[connected], pooled)
    m, v = means[connected].mean(), means[connected].var(ddof=1)
    spread_var = max(v - noise_var.mean() / k, 1e-12)
    shrink = spread_var / (spread_var + noise_var / k)
    rng = np.random.default_rng(seed)
    out = np.tile(means, (draws, 1))
    centre = m + shrink * (means[connected] - m)
    out[:, connected] = centre + rng.normal(0.0, 1.0, (draws, connected.sum())) * np.sqrt(
        shrink * noise_var / k
    )
    sds = " ".join(f"{np.sqrt(x):.2f}" for x in fifths)
    text = (
        f"per-seed sd {np.sqrt(noise_var.mean()):.3f} points"
        + (" (pooled)" if pooled else f" (by fifth, least to most accurate cells: {sds})")
        + f"; spread of the expected accuracies {np.sqrt(spread_var):.3f}"
        + f"; {connected.sum()} connected"
    )
    return out, text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", choices=list(SAMPLES), default="stratified")
    parser.add_argument("--draws", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.draws < 1:
        parser.error(f"--draws must be >= 1, got {args.draws}")
    try:
        gt = SAMPLES[args.sample].load()
    except OSError as err:
        parser.error(str(err))
    archs = sorted(gt["mean"])
    truth = {a: gt["mean"][a] for a in archs}
    per_seed = np.array([gt["per_seed"][a] for a in archs], dtype=float)
    base = fidelity_report({a: float(gt["params"][a]) for a in archs}, truth)
    print(
        f"{args.sample} sample, {len(archs)} cells x {per_seed.shape[1]} seeds; oracle (knows "
        f"every expected accuracy), {args.draws} posterior draws, seed {args.seed}"
    )
    for pooled in (False, True):
        draws, text = oracle_draws(per_seed, args.draws, args.seed, pooled)
        print(f"noise {'pooled' if pooled else 'by level'}: {text}")
        reports = [
            fidelity_report(dict(zip(archs, map(float, mu), strict=True)), truth) for mu in draws
        ]
        print(
            f"  {'metric':16s} {'mean':>7s} {'p10':>7s} {'p90':>7s}  {'meets target':>12s}  target"
        )
        for metric, (test, target) in TARGETS[args.sample].items():
            values = np.array([r[metric] for r in reports])
            hits = statistics.fmean(test(v, base[metric]) for v in values)
            p10, p90 = np.percentile(values, [10, 90])
            counted = f" (param count {base[metric]:.3f})" if "param count" in target else ""
            print(
                f"  {metric:16s} {values.mean():7.3f} {p10:7.3f} {p90:7.3f}  {hits:11.0%}   "
                + target
                + counted
            )


if __name__ == "__main__":
    main()
