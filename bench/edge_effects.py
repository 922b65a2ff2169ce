"""Which op on which edge moves the score: ground truth vs a fidelity row's supernet estimates.

Fits, on the connected cells of the ground-truth sample (ground truth above 20%), a least-squares
model ``score ~ sum over edges of [op on that edge]`` with ``none`` as the reference op, once on the
standalone ground truth and once on the mean estimate of a row's supernet seeds. A coefficient is
how many accuracy points an op on an edge adds over ``none`` on that edge. Where the two tables
disagree, the supernet misjudges that edge.

    python -m bench.edge_effects fewshot-cost_binned-balanced [--estimator val_acc]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from bench.ground_truth import CUT_OFF, SAMPLES
from supernet.spaces import build_space

PROTOCOL_SEEDS = (0, 1, 2)  # the fidelity protocol's supernet seeds (bench/fidelity.py)
RUNS = Path(__file__).resolve().with_name("runs")


def add_run_args(parser: argparse.ArgumentParser, estimator: str = "val_acc") -> None:
    """The options every reader of cached fidelity runs takes: ``--sample``, ``--estimator``,
    ``--runs``, ``--seeds`` (the protocol's by default)."""
    parser.add_argument("--sample", choices=list(SAMPLES), default="stratified")
    parser.add_argument("--estimator", default=estimator, help="a key of the estimates file")
    parser.add_argument("--runs", type=Path, default=RUNS)
    parser.add_argument(
        "--seeds", nargs="+", type=int, default=list(PROTOCOL_SEEDS), help="cached seeds to read"
    )


def load_row(
    runs: Path,
    row: str,
    estimator: str,
    seeds: tuple[int, ...] = PROTOCOL_SEEDS,
    sample: str = "stratified",
) -> list[dict[str, float]]:
    """The ``estimator`` scores (arch -> score) of a fidelity row's cached runs on ``sample``, one
    per seed in ``seeds`` (extra seeds trained outside the protocol are left out unless asked
    for). The runs live in the gitignored ``bench/runs``: a fresh clone must run
    ``python -m bench.fidelity`` first."""
    name = SAMPLES[sample].estimates
    files = [runs / row / f"seed{k}" / name for k in seeds]
    absent = [str(f) for f in files if not f.exists()]
    if absent:
        raise LookupError(
            f"no cached run {', '.join(absent)}; run python -m bench.fidelity --sample {sample} "
            f"--rows {row} first"
        )
    payloads = [json.loads(f.read_text()) for f in files]
    missing = [str(f) for f, p in zip(files, payloads, strict=True) if estimator not in p]
    if missing:
        have = sorted(k for k, v in payloads[0].items() if isinstance(v, dict))
        raise LookupError(f"no {estimator!r} in {', '.join(missing)}; it has: {', '.join(have)}")
    return [p[estimator] for p in payloads]


def edge_effects(scores: dict[str, float], archs: list[str]) -> tuple[list, list, np.ndarray]:
    """(edges, ops, coefficients[edge, op]) of the least-squares fit, ``none`` as reference."""
    space = build_space("nb201")
    edges = list(space.choices())
    ops = [o for o in space.choices()[edges[0]] if o != "none"]
    parsed = [space.parse(a) for a in archs]
    x = np.array([[float(p[e] == o) for e in edges for o in ops] + [1.0] for p in parsed])
    y = np.array([scores[a] for a in archs])
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    return edges, ops, coef[:-1].reshape(len(edges), len(ops))


def _print(title: str, edges: list, ops: list, coef: np.ndarray) -> None:
    print(title)
    print(f"{'edge':10s}" + "".join(f"{o:>14s}" for o in ops))
    for e, row in zip(edges, coef, strict=True):
        print(f"{e:10s}" + "".join(f"{v:14.2f}" for v in row))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("row", help="a row of bench/fidelity.py with cached runs")
    add_run_args(parser)
    args = parser.parse_args(argv)
    truth = SAMPLES[args.sample].load()["mean"]
    archs = sorted(a for a, v in truth.items() if v > CUT_OFF)
    try:
        runs = load_row(args.runs, args.row, args.estimator, tuple(args.seeds), args.sample)
    except LookupError as err:
        print(f"error: {err}")
        return 2
    mean = {a: float(np.mean([r[a] for r in runs])) for a in archs}
    print(f"{len(archs)} connected cells; points added over `none` on the same edge\n")
    _print("standalone ground truth (test accuracy %)", *edge_effects(truth, archs))
    print()
    _print(f"{args.row}: mean {args.estimator} of {len(runs)} seeds", *edge_effects(mean, archs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
