"""Calibrated ranking on the dev samples: how many verified archs it needs to beat the raw ranking.

    python -m bench.calibration [--sample stratified] [--row recipe-default] [--seeds 0 1 2 3 4 5]
                                [--sizes 5 10 20 30 50] [--draws 50] [--runs bench/runs]
                                [--estimator val_loss+synflow]

For each supernet seed of ``--row`` (its cached ``bench/fidelity.py`` estimates of ``--estimator``,
by default ``val_loss+synflow``, the default's on nb201) and each number of verified archs n:
``--draws`` times, n archs are drawn at random (as the verify stage's controls are) and given one
standalone seed's accuracy
as their label (the ground truth's seed 0, as ``verify.seeds=[0]`` gives one); the calibration of
``search/calibrate.py`` is fitted on them and ranks the archs *not* drawn. Printed: Kendall tau on
those held-out archs, against the ground-truth mean, of the raw estimate, the parameter count
and the calibrated ranking with each feature set, and the share of draws where calibration beat
the raw estimate. Nothing is tuned here: the ridge penalty is ``search.calibrate.ALPHA``.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np

from bench.fidelity import DERIVED, ESTIMATORS, RUNS, with_derived
from bench.ground_truth import SAMPLES
from search.calibrate import FEATURES, Design, fit
from search.fidelity import kendall_tau
from supernet.spaces import build_space

ESTIMATOR = "val_loss+synflow"  # the default estimator on nb201 (evaluator.estimator=auto)


def held_out_taus(
    estimate: dict[str, float],
    truth: dict[str, dict],
    n: int,
    draw: int,
    designs: dict[str, Design],
) -> dict[str, float]:
    """Tau on the archs not drawn, for the raw estimate, params and each calibration."""
    space = build_space("nb201")
    archs = sorted(a for a in estimate if a in truth["mean"])
    rng = np.random.default_rng(draw)
    picked = set(rng.choice(len(archs), size=n, replace=False).tolist())
    train = [a for i, a in enumerate(archs) if i in picked]
    rest = [a for i, a in enumerate(archs) if i not in picked]
    mean = {a: truth["mean"][a] for a in rest}
    records = {a: {"estimate": estimate[a], "params": truth["params"][a]} for a in archs}
    out = {
        "raw estimate": kendall_tau({a: estimate[a] for a in rest}, mean),
        "params": kendall_tau({a: float(truth["params"][a]) for a in rest}, mean),
    }
    decisions = [dict(space.parse(a)) for a in archs]
    index = {a: i for i, a in enumerate(archs)}
    for name, design in designs.items():
        x = design.rows([records[a] for a in archs], decisions)  # percentiles among all archs
        model = fit(x[[index[a] for a in train]], [truth["per_seed"][a][0] for a in train])
        predicted = model.predict(x[[index[a] for a in rest]])
        out[name] = kendall_tau(dict(zip(rest, predicted.tolist(), strict=True)), mean)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", choices=list(SAMPLES), default="stratified")
    parser.add_argument("--row", default="recipe-default")
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2, 3, 4, 5])
    parser.add_argument("--sizes", nargs="*", type=int, default=[5, 10, 20, 30, 50])
    parser.add_argument("--draws", type=int, default=50)
    parser.add_argument("--runs", type=Path, default=RUNS)
    parser.add_argument("--estimator", choices=[*ESTIMATORS, *DERIVED], default=ESTIMATOR)
    args = parser.parse_args(argv)
    sample = SAMPLES[args.sample]
    truth = sample.load()
    params = {a: float(p) for a, p in truth["params"].items()}
    estimates = {}
    for seed in args.seeds:
        path = args.runs / args.row / f"seed{seed}" / sample.estimates
        if path.exists():
            run = with_derived(json.loads(path.read_text()), params)
            if args.estimator not in run:
                parser.error(f"{path} has no {args.estimator!r} estimate")
            estimates[seed] = run[args.estimator]
    if not estimates:
        parser.error(f"no estimates of row {args.row!r} under {args.runs} for seeds {args.seeds}")
    choices = build_space("nb201").choices()
    designs = {
        f"calibrated ({extra})": Design("estimate", True, choices, extra) for extra in FEATURES
    }
    n_truth = len([a for a in next(iter(estimates.values())) if a in truth["mean"]])
    print(
        f"{args.sample} sample: {n_truth} archs with ground truth; row {args.row}, estimator "
        f"{args.estimator}, supernet seeds "
        f"{sorted(estimates)}; {args.draws} random draws of n verified archs per seed; labels: "
        f"one standalone seed; Kendall tau on the archs not drawn, against the ground-truth mean"
    )
    names = ["raw estimate", "params", *designs]
    print(f"{'n':>4} " + " ".join(f"{name:>24}" for name in names) + "   calibrated beats raw")
    for n in args.sizes:
        if n >= n_truth - 2:
            continue
        taus = {name: [] for name in names}
        for seed, estimate in estimates.items():
            for draw in range(args.draws):
                got = held_out_taus(estimate, truth, n, 1000 * seed + draw, designs)
                for name in names:
                    taus[name].append(got[name])
        wins = [
            f"{statistics.mean(c > r for c, r in zip(taus[d], taus['raw estimate'])):.0%}"
            for d in designs
        ]
        cells = " ".join(f"{statistics.mean(taus[name]):>24.3f}" for name in names)
        print(f"{n:>4} {cells}   {' / '.join(wins)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
