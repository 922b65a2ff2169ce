"""How well a latency lookup table predicts measured latency: Kendall tau and mean error (%).

Measures the table (``search.latency``) for a run's layout on this device, then times the whole
extracted network of ``--archs`` distinct archs drawn uniformly (seeded) and compares the table's
sums (times the scale fitted on ``--calibrate`` other networks) with those times. Both use
``torch.utils.benchmark.Timer.blocked_autorange``.

    python -m bench.latency_lut [--archs 50] [--seed 0] [--threads 1] [--device cpu]
        [--json out.json] [train overrides ...]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics

from scipy.stats import kendalltau, spearmanr

from search.latency import LatencyTable, measure_networks
from sharenas.latency import built_for


def compare(args: argparse.Namespace) -> dict:
    built = built_for(args.checkpoint, args.overrides)
    supernet = built.strategy.supernets[0]
    shape = tuple(built.splits.val.tensors[0].shape[1:])
    timing = {"threads": args.threads, "min_run_time": args.min_run_time, "statistic": args.stat}
    kw = {"batch": args.batch, "device": args.device, "rounds": args.rounds, **timing}
    # the calibration networks come from another seed than the compared ones
    table = LatencyTable.measure(
        supernet, shape, calibrate=args.calibrate, calibration_seed=args.seed + 1, **kw
    )
    rng = random.Random(args.seed)
    archs = list(dict.fromkeys(supernet.space.sample(rng) for _ in range(50 * args.archs)))
    archs = archs[: args.archs]
    measured = measure_networks(supernet, archs, shape, **kw)
    rows = [
        {"arch": str(a), "measured_ms": m, "predicted_ms": table.predict(supernet, a)}
        for a, m in zip(archs, measured, strict=True)
    ]
    meas = [r["measured_ms"] for r in rows]
    pred = [r["predicted_ms"] for r in rows]
    errors = [abs(p - m) / m * 100 for p, m in zip(pred, meas, strict=True)]
    return {
        **table.meta,
        "archs": len(rows),
        "seed": args.seed,
        "kendall_tau": float(kendalltau(pred, meas).statistic),
        "spearman_rho": float(spearmanr(pred, meas).statistic),
        "mean_abs_error_pct": statistics.fmean(errors),
        "median_abs_error_pct": statistics.median(errors),
        "mean_signed_error_pct": statistics.fmean(
            (p - m) / m * 100 for p, m in zip(pred, meas, strict=True)
        ),
        "measured_ms_range": [min(meas), max(meas)],
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("overrides", nargs="*", help="train config overrides, e.g. space=mbv3")
    parser.add_argument("--checkpoint")
    parser.add_argument("--archs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--min-run-time", type=float, default=0.2)
    parser.add_argument("--stat", choices=["median", "min"], default="median")
    parser.add_argument("--rounds", type=int, default=1, help="sweeps over all parts / archs")
    parser.add_argument("--calibrate", type=int, default=5, help="whole networks for the scale")
    parser.add_argument("--json", help="also write the figures and every row here")
    args = parser.parse_args(argv)
    out = compare(args)
    print(
        f"{out['space']} {out['layout']} input {out['input_shape']} batch {out['batch']} on "
        f"{out['device']}, {out['threads']} thread(s): {out['archs']} archs (seed {out['seed']}), "
        f"measured {out['measured_ms_range'][0]:.3f}-{out['measured_ms_range'][1]:.3f} ms"
    )
    print(
        f"kendall tau {out['kendall_tau']:.3f}  spearman rho {out['spearman_rho']:.3f}  "
        f"mean |error| {out['mean_abs_error_pct']:.1f}%  median |error| "
        f"{out['median_abs_error_pct']:.1f}%  "
        f"mean signed error {out['mean_signed_error_pct']:+.1f}%"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return out


if __name__ == "__main__":
    main()
