"""Racing (``evaluator.race=true``) on trained supernets: cost per arch and what it changed.

Its cost per arch against the full evaluator and the naive baseline, and what it changed at the
top.

    python -m bench.racing [--spaces nb201 mbv3] [--trials 200 200] [--epochs 0] [--estimator auto]

Per space: a supernet is trained on digits with the default recipe (``--epochs`` > 0 overrides
its epochs), then an Optuna TPE search of ``--trials`` trials runs with the racing evaluator (the
default search's estimator: ``val_loss+synflow`` on nb201, which races on a hopeful first stage,
and the angle on mbv3, which races on its exact score; ``--estimator`` picks another for every
space). The archs it visited are then scored in the same order by the full
evaluator and by the naive baseline (``bench.throughput.naive_fn``). Each figure is the CPU time of
one call per arch (one thread), summed over the archs; the fusion's reference archs are scored
before the clock starts, for both evaluators. The lines starting ``naive/racing`` and
``naive/full`` are for scripts; ``naive/full`` is the full evaluator's ratio over a search's archs
in order, where its prefix cache (``search.prefix``) holds what the earlier archs shared.
``bench/throughput.py`` runs each space's part with its default arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from bench.throughput import _local_search, compose_search, naive_fn
from search.estimators import resolve_estimator
from search.evaluate import Evaluator, initial_for
from search.racing import EXACT_ESTIMATORS, RACE_ESTIMATORS
from supernet.builder import load_trained

TOP = 10  # the leaderboard's top (results.top_k's default), which racing keeps


def _trained(space: str, epochs: int, out: Path) -> Path:
    """A supernet trained on digits with the default recipe (``epochs`` > 0: that many)."""
    from supernet.training import train

    overrides = [f"space={space}", "trainer.progress=false"]
    if epochs > 0:
        overrides.append(f"trainer.epochs={epochs}")
    with contextlib.redirect_stdout(sys.stderr):  # the training's epoch lines: not figures
        return Path(train(compose_search(overrides), out_dir=out)["checkpoint"])


def _cpu_ms(fn: Callable[[], object]) -> float:
    tic = time.process_time()
    fn()
    return 1000 * (time.process_time() - tic)


def race_report(space: str, trials: int, epochs: int = 0, estimator: str = "auto") -> dict:
    """Train, search with racing, score the same archs in full and the naive way; print the
    figures and return them."""
    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = _trained(space, epochs, Path(tmp))
        built, state = load_trained(checkpoint, space)
    torch.set_num_threads(threads)  # training applied trainer.num_threads=auto
    estimator = resolve_estimator(estimator, space)
    if estimator not in RACE_ESTIMATORS:
        print(f"{space}: {estimator} does not race; racing val_loss instead", file=sys.stderr)
        estimator = "val_loss"
    cfg = compose_search(
        [f"space={space}", f"searcher.n_trials={trials}", f"evaluator.estimator={estimator}"]
    )
    settings = {**cfg.evaluator, "calib_batches": 4}  # the default's calibration for these
    initial = initial_for(estimator, state.config)  # the angle's initial supernet, or None
    race = {**settings, "race": True, "race_top_k": TOP}
    racing = Evaluator.from_config(built, race, seed=0, initial=initial)
    full = Evaluator.from_config(built, settings, seed=0, initial=initial)
    racing.prepare(), full.prepare()
    spent = {"racing": 0.0, "full": 0.0, "naive": 0.0}
    records = {}

    def timed(arch) -> dict:
        tic = time.process_time()
        record = racing(arch)
        spent["racing"] += 1000 * (time.process_time() - tic)
        records[str(arch)] = record
        return record

    study = _local_search(cfg, built.space, timed)
    archs = [built.space.parse(r.arch) for r in sorted(study.records(), key=lambda r: r.trial)]
    scores = {}
    for arch in archs:
        spent["full"] += _cpu_ms(lambda a=arch: scores.__setitem__(str(a), full(a)["score"]))
        spent["naive"] += _cpu_ms(naive_fn(built, full, arch))
    return _print(space, estimator, archs, records, scores, spent)


def _print(space: str, estimator: str, archs: list, records: dict, scores: dict, spent: dict):
    n = len(archs)
    raced = sum(records[str(a)]["raced"] is not None for a in archs)
    top_full = sorted(scores, key=scores.get, reverse=True)[:TOP]
    top_race = sorted(records, key=lambda k: records[k]["score"], reverse=True)[:TOP]
    stopped = sum(records[k]["raced"] is not None for k in top_full)
    how = "its exact score" if estimator in EXACT_ESTIMATORS else "a hopeful first stage"
    print(
        f"\n{space} racing ({estimator}, on {how}; a TPE search of {n} archs on a trained "
        f"digits supernet): {raced} of {n} stopped after the first stage ({raced / n:.0%})"
    )
    print(
        f"ms per arch: racing {spent['racing'] / n:.1f}, full evaluator {spent['full'] / n:.1f}, "
        f"naive {spent['naive'] / n:.1f}"
    )
    print(
        f"top {TOP} of the full evaluator on these archs: {stopped} stopped by racing; "
        f"{len(set(top_full) & set(top_race))} of {TOP} in racing's top {TOP}"
    )
    print(f"full/racing {spent['full'] / spent['racing']:.2f} ({space})")
    print(f"naive/racing {spent['naive'] / spent['racing']:.2f} ({space}; target >= 3)")
    print(
        f"naive/full {spent['naive'] / spent['full']:.2f} ({space}; the full evaluator without "
        "racing, on a search's archs in its order: its prefix cache warm)"
    )
    return {"raced": raced, "n": n, "stopped_top": stopped, **spent}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", nargs="*", default=["nb201", "mbv3"])
    parser.add_argument("--trials", nargs="*", type=int, default=[200, 200], help="per space")
    parser.add_argument("--epochs", type=int, default=0, help="0: the default recipe's")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--estimator", default="auto", help="auto: each space's default")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    trials = args.trials + args.trials[-1:] * (len(args.spaces) - len(args.trials))
    for space, n in zip(args.spaces, trials, strict=False):
        torch.manual_seed(0)
        race_report(space, n, args.epochs, args.estimator)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
