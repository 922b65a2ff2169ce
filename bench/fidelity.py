"""Ranking-fidelity benchmark (DESIGN.md, "Ranking fidelity protocol").

For each row of ``bench/rows.yaml``: train the supernet with the same number of optimizer steps,
once per seed; score every arch of a fixed ground-truth sample with inherited weights (no
retraining) by each estimator of ``ESTIMATORS``; compare with the cached ground truth (mean test
accuracy of standalone nets, ``bench/ground_truth.py``). Prints mean +- std over supernet seeds of
Kendall tau-b, Spearman rho, precision@top-10%, top-1 regret, with wall time and parameter bytes,
next to the parameter-count baseline, retraining once, and the ground truth's own single-seed
noise level. A supernet trained for one sample is scored on the other without retraining.

    python -m bench.fidelity                        # every row, 3 seeds, stratified sample
    python -m bench.fidelity --sample uniform --rows full-uniform --seeds 0 1 2 3 4 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench import fidelity_tables
from bench.ground_truth import SAMPLES, Sample
from bench.rows import ROWS_FILE, load_rows
from search.estimators import log_cost
from search.zero_cost import ZERO_COST

HERE = Path(__file__).resolve().parent
RUNS = HERE / "runs"
RESULTS = HERE / "results"

# Estimators scored for every run, name -> (label suffix in the table, description). The first is
# the protocol's; the others are computed from a cached run's saved supernet.pt when it lacks them
# (``--rescore``, no retraining).
ESTIMATORS = {
    "val_acc": ("", "val accuracy, BN recalibrated on 256 training images (the protocol)"),
    "neg_val_loss": (" (-val loss)", "minus val loss, same recalibration"),
    "neg_train_loss": (
        " (-train loss)",
        "minus the loss on the whole training split (3,000 images), BN recalibrated on all of it",
    ),
    # separates the two changes -train loss makes (calibration set, scored split)
    "val_acc_full_calib": (
        " (val acc, full calib)",
        "val accuracy with BN recalibrated on the whole training split, as -train loss is",
    ),
    "angle": (
        " (angle)",
        "radians between the path's initial and trained weights (no forward pass; Hu et al. 2020)",
    ),
    **{name: (f" ({name})", f"zero-cost, inherited weights: {t}") for name, t in ZERO_COST.items()},
}
# Estimators computed from a run's other estimates and the archs' costs, never stored in a run.
DERIVED = {
    "train_loss+params": (
        " (-train loss+params)",
        "fixed-rule fusion: z(-train loss) + z(log params), standardised over the sample's archs",
    ),
    "val_loss+params": (
        " (-val loss+params)",
        "fixed-rule fusion: z(-val loss) + z(log params), as above (256 calibration images)",
    ),
    "val_loss+synflow": (
        " (-val loss+synflow)",
        "fixed-rule fusion: z(-val loss) + z(log synflow), as above",
    ),
}
#: Each fusion of ``DERIVED`` -> (the stored estimate, the cost whose log's z-score it adds).
FUSED = {
    "train_loss+params": ("neg_train_loss", "params"),
    "val_loss+params": ("neg_val_loss", "params"),
    "val_loss+synflow": ("neg_val_loss", "synflow"),
}
TRAINED = "trained.json"  # written next to supernet.pt when its training ends: overrides, seconds


@dataclass(frozen=True)
class Job:
    """One supernet of one row and seed, scored on one sample's archs."""

    row: str
    overrides: tuple[str, ...]  # the row's, with the seed last
    seed: int
    archs: tuple[str, ...]
    out: Path  # bench/runs/<row>/seed<k>
    estimates: str  # the sample's estimates file in ``out``
    rescore: bool = False
    rescore_only: tuple[str, ...] = ()  # with ``rescore``: only these estimators (empty: all)
    estimators: tuple[str, ...] = ()  # what a new run scores (empty: every one of ESTIMATORS)


def _score(out: Path, archs: tuple[str, ...], seed: int, want: set[str] | None = None) -> dict:
    """The estimators of ``ESTIMATORS`` (those in ``want``: all by default) for the supernet
    saved in ``out``."""
    from search.evaluate import Evaluator, path_angle
    from supernet.builder import initial_strategy, load_trained

    want = set(ESTIMATORS) if want is None else want
    built, state = load_trained(out / "supernet.pt")
    result: dict = {
        "param_bytes": built.strategy.parameter_bytes(),
        "num_supernets": built.strategy.num_supernets,
    }
    if want & {"val_acc", "neg_val_loss"}:
        protocol = Evaluator(built, count_flops=False, seed=seed)
        tic = time.time()
        records = {a: protocol(built.space.parse(a)) for a in archs}
        result["protocol_score_s"] = time.time() - tic
        result["val_acc"] = {a: r["val_acc"] for a, r in records.items()}
        result["neg_val_loss"] = {a: -r["val_loss"] for a, r in records.items()}
    if want & {"neg_train_loss", "val_acc_full_calib"}:
        full = Evaluator(built, calib_batches="all", count_flops=False, train_loss=True, seed=seed)
        trained = {a: full(built.space.parse(a)) for a in archs}
        result["neg_train_loss"] = {a: -r["train_loss"] for a, r in trained.items()}
        result["val_acc_full_calib"] = {a: r["val_acc"] for a, r in trained.items()}
    if want & set(ZERO_COST):
        result |= _zero_cost(built, archs, seed, sorted(want & set(ZERO_COST)))
    if "angle" in want:
        start, strategy = initial_strategy(state.config).supernets[0], built.strategy
        result["angle"] = {
            a: path_angle(start.extract(arch), strategy.extract(arch))
            for a, arch in ((a, built.space.parse(a)) for a in archs)
        }
    return result


def _zero_cost(built, archs: tuple[str, ...], seed: int, names: list[str]) -> dict:
    """The zero-cost proxies ``names`` of every arch, each on its path's net with BN recalibrated
    on the whole training split (as ``-train loss``), on one fixed batch of the seed."""
    from search.evaluate import Evaluator
    from search.zero_cost import PROXIES, proxy_batch

    evaluator = Evaluator(built, calib_batches="all", count_flops=False, seed=seed)
    batch = proxy_batch(built.splits.train, seed=seed)
    out: dict[str, dict[str, float]] = {name: {} for name in names}
    for a in archs:
        arch = built.space.parse(a)
        # synflow removes BN: its value does not depend on the calibration, which it skips
        calibrated = evaluator.calibrated(arch) if set(names) - {"synflow"} else None
        for name in names:
            net = built.strategy.extract(arch) if name == "synflow" else calibrated
            out[name][a] = PROXIES[name](net, batch)
    return out


def with_derived(run: dict, params: dict[str, float]) -> dict:
    """``run`` with the estimators of ``DERIVED`` added (those whose estimate it has), over the
    archs of ``params``."""
    costs = {"params": params, **({"synflow": run["synflow"]} if "synflow" in run else {})}
    derived = {}
    for name, (source, cost) in FUSED.items():
        if source in run and cost in costs:
            estimate = _z({a: run[source][a] for a in params})
            logs = _z({a: log_cost(costs[cost][a]) for a in params})
            derived[name] = {a: estimate[a] + logs[a] for a in params}
    return run | derived


def _z(values: dict[str, float]) -> dict[str, float]:
    """Each value standardised over ``values`` (population std; 1 when they are all equal)."""
    mean, std = statistics.fmean(values.values()), statistics.pstdev(values.values()) or 1.0
    return {a: (v - mean) / std for a, v in values.items()}


def _write(path: Path, payload: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload))
    os.replace(tmp, path)


def trained_before(out: Path, overrides: list[str]) -> float | None:
    """Training seconds of the supernet saved in ``out`` when ``trained.json`` or some sample's
    estimates file says it was trained with exactly ``overrides``; None when it must be trained
    (again)."""
    if not (out / "supernet.pt").exists():
        return None
    for path in sorted([*out.glob("estimates*.json"), out / TRAINED]):
        if not path.exists():
            continue
        payload = json.loads(path.read_text())
        if payload.get("overrides") == overrides and "train_s" in payload:
            return payload["train_s"]
    return None


def _train(overrides: list[str], out: Path) -> float:
    from hydra import compose, initialize_config_dir

    from supernet.cli import CONF_DIR
    from supernet.config import register_train_configs
    from supernet.training import train

    register_train_configs()
    if not any(o.startswith("recipe=") for o in overrides):
        # rows name their changes from the defaults they were written against (recipe=legacy,
        # the defaults before 2026-12-06); a row may name another recipe itself
        overrides = ["recipe=legacy", *overrides]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    cfg.trainer.overwrite = True  # a finished run of other overrides is retrained in place
    tic = time.time()
    train(cfg, out_dir=out)
    return time.time() - tic


def run_job(job: Job) -> dict:
    """Train (unless a run with the same overrides is saved) and score; runs in a worker process.
    A cached estimates file with the same overrides and archs is returned as it is, or completed
    with the estimators it lacks when ``job.rescore`` (delete the folder to redo a run)."""
    import torch

    torch.set_num_threads(1)
    overrides = list(job.overrides)
    cached = job.out / job.estimates
    if cached.exists():
        payload = json.loads(cached.read_text())
        if payload.get("overrides") == overrides and sorted(payload["val_acc"]) == sorted(
            job.archs
        ):
            wanted = set(job.rescore_only) or set(ESTIMATORS)
            if wanted <= set(payload) or not job.rescore:
                return payload
            if (job.out / "supernet.pt").exists():  # an older run: add the newer estimators
                tic = time.time()
                missing = {k for k in wanted if k not in payload}
                payload |= _score(job.out, job.archs, job.seed, missing)
                payload["rescore_s"] = time.time() - tic
                _write(cached, payload)
                return payload
    train_s = trained_before(job.out, overrides)
    if train_s is None:
        train_s = _train(overrides, job.out)
        # a run killed while scoring keeps its supernet: the next run scores it, never retrains
        _write(job.out / TRAINED, {"overrides": overrides, "train_s": train_s})
    scores = _score(job.out, job.archs, job.seed, set(job.estimators) or None)
    result = {
        "overrides": overrides,
        "row": job.row,
        "seed": job.seed,
        "train_s": train_s,
        **scores,
        "total_s": train_s + scores["protocol_score_s"],  # training + the protocol's scoring
    }
    _write(cached, result)
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", choices=list(SAMPLES), default="stratified")
    parser.add_argument("--rows", nargs="*", default=None, help="default: every row")
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument(
        "--jobs", type=int, default=2, help="worker processes (1 thread each; 1: in process)"
    )
    parser.add_argument("--out", type=Path, default=None, help=f"cached runs (default {RUNS})")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the summary goes")
    parser.add_argument("--rows-file", type=Path, default=ROWS_FILE)
    parser.add_argument(
        "--rescore",
        nargs="*",
        choices=list(ESTIMATORS),
        default=None,
        metavar="ESTIMATOR",
        help="add missing estimators (all, or those named) to cached runs from their saved "
        "supernet.pt (no retraining; a cached run without supernet.pt is trained again)",
    )
    parser.add_argument(
        "--estimators",
        nargs="+",
        choices=list(ESTIMATORS),
        default=None,
        metavar="ESTIMATOR",
        help="what a run trained now is scored with (default: all; val_acc always, it keys the "
        "cache); a table lacks the others for it",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="plumbing check: 1 epoch x 2 steps, 30 archs, runs in RUNS-smoke, no summary written",
    )
    return parser


def _smoke(overrides: list[str], smoke: bool) -> list[str]:
    """A plumbing check trains every row (the longer-budget ones too) for 1 epoch."""
    if not smoke:
        return overrides
    return [o for o in overrides if not o.startswith("trainer.epochs=")] + ["trainer.epochs=1"]


def summary_path(results: Path, sample: Sample) -> Path:
    """``fidelity.json`` for the protocol's stratified sample, ``fidelity_<name>.json`` else."""
    return results / (
        "fidelity.json" if sample.name == "stratified" else f"fidelity_{sample.name}.json"
    )


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        book = load_rows(args.rows_file)
        gt = SAMPLES[args.sample].load()
    except (OSError, ValueError) as err:
        parser.error(str(err))
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    rows = args.rows if args.rows is not None else list(book.rows)
    unknown = [r for r in rows if r not in book.rows]
    if unknown:
        parser.error(f"unknown row {unknown[0]!r}; allowed: {', '.join(book.rows)}")
    sample = SAMPLES[args.sample]
    # every drawn arch is scored, so a run's estimates stay valid while the ground truth of a
    # sample is still being computed; the tables use the archs that have ground truth
    drawn = sorted(map(str, sample.archs()))
    drawn = sorted(gt["mean"])[:30] if args.smoke else drawn
    archs = [a for a in drawn if a in gt["mean"]]
    base = book.base(steps_per_epoch=2 if args.smoke else None, sample=sample)
    out = args.out or (RUNS.with_name("runs-smoke") if args.smoke else RUNS)
    out = out if sample.space == "nb201" else out / sample.space  # a row's runs, per space
    jobs = [
        Job(
            row,
            (*_smoke(book.overrides(row, base), args.smoke), f"seed={seed}"),
            seed,
            tuple(drawn),
            out / row / f"seed{seed}",
            sample.estimates,
            args.rescore is not None,
            tuple(args.rescore or ()),
            tuple(sorted({"val_acc", *args.estimators})) if args.estimators else (),
        )
        for row in rows
        for seed in args.seeds
    ]
    for job in jobs:
        job.out.mkdir(parents=True, exist_ok=True)
    budget = (1, 2) if args.smoke else (book.epochs, book.steps_per_epoch)
    print(fidelity_tables.header(gt, archs, sample.name, budget, args.seeds), flush=True)
    if args.jobs == 1:
        runs = [run_job(job) for job in jobs]
    else:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            runs = list(pool.map(run_job, jobs))
    costs = fidelity_tables.Costs.of(sample, archs)
    params = {a: float(gt["params"][a]) for a in archs}
    runs = [with_derived(run, params) for run in runs]
    summary = fidelity_tables.tables(gt, archs, runs, rows, book, ESTIMATORS | DERIVED, costs)
    if args.smoke:
        return 0
    fidelity_tables.write(summary_path(args.results, sample), summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
