"""Where a fidelity row's ranking is lost: the same estimates seen several ways (no training).

For each cached seed of a row, against the ground truth (every cell of the sample), mean over seeds:
- ``tau``: Kendall tau of the estimates as they are (the benchmark's figure);
- ``tau|e30 none`` / ``tau|e30 op``: inside the two groups of ``edge_3_0`` (none / an op), the
  edge the supernet misjudges most (``bench/edge_effects.py``), next to the parameter count's;
- ``oracle offset``: the best tau over 40 shifts of the ``edge_3_0 = none`` group by one
  constant (-20% to +58% of the estimates' range), chosen *with the ground truth*: about the
  most that fixing that bias alone could give;
- ``additive``: tau of a per-edge additive model fitted to the row's own estimates (connected
  cells), which keeps the supernet's edge effects and drops its interactions;
- ``rank avg+params``: tau of the plain average of the estimate's rank and the parameter
  count's rank (no fitted weight).

With ``--top-picks``, where each seed's top pick lands in the ground truth (its rank and its
regret), next to how many cells lie within the regret target (0.5 points) of the best.

With ``--by-count``, a second table: for each op and each count of it on the 6 edges, the mean
rank error (estimate's rank minus the ground truth's, both scaled to 0..1; > 0: ranked too high).

    python -m bench.rank_views fewshot-cost_binned-balanced [--estimator neg_train_loss]
    python -m bench.rank_views ROWS... --by-count [--sample uniform]
"""

from __future__ import annotations

import argparse
import statistics

from scipy.stats import rankdata

from bench.edge_effects import add_run_args, edge_effects, load_row
from bench.ground_truth import CUT_OFF, SAMPLES
from search.fidelity import kendall_tau
from supernet.spaces import build_space

SPACE = build_space("nb201")


def _rank(scores: dict[str, float]) -> dict[str, float]:
    """0-based ranks, ties sharing their average rank (scipy's ``rankdata``; the parameter count
    ties a lot, and breaking ties by arch name would order them by op name)."""
    keys = list(scores)
    return dict(zip(keys, (rankdata([scores[a] for a in keys]) - 1.0).tolist(), strict=True))


def views(est: dict[str, float], truth: dict[str, float], params: dict[str, float]) -> dict:
    """Every view of one seed's estimates (see the module docstring)."""
    none = {a for a in truth if "|none~0|" in a.split("+")[2]}  # edge_3_0 = none
    groups = {"none": none, "op": set(truth) - none}

    def tau(scores: dict[str, float], keys: set[str]) -> float:
        return kendall_tau({a: scores[a] for a in keys}, {a: truth[a] for a in keys})

    span = max(est.values()) - min(est.values())
    offsets = [span * k / 50 for k in range(-10, 30)]
    oracle = max(
        tau({a: est[a] + (c if a in none else 0.0) for a in est}, set(est)) for c in offsets
    )
    connected = sorted(a for a, v in truth.items() if v > CUT_OFF)
    edges, ops, coef = edge_effects(est, connected)
    fit = dict(est)  # cut-off cells keep their own estimate
    for a in connected:
        p = SPACE.parse(a)
        fit[a] = sum(coef[i, ops.index(p[e])] for i, e in enumerate(edges) if p[e] != "none")
    # the intercept (edge_effects returns the effects only): least squares leaves zero mean error
    intercept = statistics.fmean(est[a] - fit[a] for a in connected)
    fit.update({a: fit[a] + intercept for a in connected})
    rp, re_ = _rank(params), _rank(est)
    return {
        "tau": tau(est, set(est)),
        "tau|e30 none": tau(est, groups["none"]),
        "tau|e30 op": tau(est, groups["op"]),
        "oracle offset": oracle,
        "additive": tau(fit, set(fit)),
        "rank avg+params": tau({a: rp[a] + re_[a] for a in est}, set(est)),
        "params|e30 none": tau(params, groups["none"]),
        "params|e30 op": tau(params, groups["op"]),
    }


def rank_errors(est: dict[str, float], truth: dict[str, float]) -> dict[tuple[str, int], float]:
    """(op, count of it on the edges) -> mean scaled rank error of the cells with that count."""
    re_, rt = _rank(est), _rank(truth)
    top = len(truth) - 1
    errors: dict[tuple[str, int], list[float]] = {}
    for a in truth:
        ops = list(SPACE.parse(a).values())
        for op in SPACE.choices()["edge_1_0"]:
            errors.setdefault((op, ops.count(op)), []).append((re_[a] - rt[a]) / top)
    return {k: statistics.fmean(v) for k, v in errors.items()}


def _print_by_count(rows: dict[str, list[dict[str, float]]], truth: dict[str, float]) -> None:
    print("\nmean rank error by op count (> 0: ranked too high; cells with that count in brackets)")
    errs = {row: [rank_errors(r, truth) for r in runs] for row, runs in rows.items()}
    keys = sorted(next(iter(errs.values()))[0])
    sizes = {k: sum(list(SPACE.parse(a).values()).count(k[0]) == k[1] for a in truth) for k in keys}
    width = max(len(row) for row in rows) + 2
    print(f"{'op':14s}{'count [cells]':<14s}" + "".join(f"{row:>{width}s}" for row in rows))
    for k in keys:
        cells = "".join(f"{statistics.fmean(e[k] for e in errs[row]):{width}.3f}" for row in rows)
        print(f"{k[0]:14s}{f'{k[1]} [{sizes[k]}]':<14s}{cells}")


def _print_top_picks(rows: dict[str, list[dict[str, float]]], truth: dict[str, float]) -> None:
    best = max(truth.values())
    near = sum(v >= best - 0.5 for v in truth.values())
    above = {a: sum(v > truth[a] for v in truth.values()) for a in truth}  # ties share a rank
    print(
        f"\ntop picks: ground-truth best {best:.2f}; {near} of {len(truth)} cells within 0.5 of it"
    )
    for row, runs in rows.items():
        picks = [max(est, key=est.get) for est in runs]
        cells = ", ".join(f"rank {above[a] + 1} (regret {best - truth[a]:.2f})" for a in picks)
        print(f"{row:40s} {cells}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="+", help="rows of bench/fidelity.py with cached runs")
    add_run_args(parser)
    parser.add_argument("--by-count", action="store_true", help="rank error by op count too")
    parser.add_argument("--top-picks", action="store_true", help="where each top pick lands")
    args = parser.parse_args(argv)
    payload = SAMPLES[args.sample].load()
    truth = payload["mean"]
    params = {a: float(payload["params"][a]) for a in truth}
    names = list(views(truth, truth, params))
    print(f"estimator {args.estimator}; mean over the cached seeds of each row")
    print(f"{'row':40s}" + "".join(f"{n:>16s}" for n in names))
    loaded = {}
    for row in args.rows:
        try:
            runs = loaded[row] = load_row(
                args.runs, row, args.estimator, tuple(args.seeds), args.sample
            )
        except LookupError as err:
            print(f"error: {err}")
            return 2
        per_seed = [views(r, truth, params) for r in runs]
        print(
            f"{row:40s}"
            + "".join(f"{statistics.fmean(v[n] for v in per_seed):16.3f}" for n in names)
        )
    if args.top_picks:
        _print_top_picks({"param count (baseline)": [params], **loaded}, truth)
    if args.by_count:
        _print_by_count(loaded, truth)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
