"""What the study's handling of repeated proposals costs and finds, on NAS-Bench-201's table.

A search of ``--trials`` distinct networks (``searcher.dedupe=true``, the default) whose evaluator
looks each cell's CIFAR-10 test accuracy up in NAS-Bench-201's table (``--table``: a JSON map arch
-> accuracy; by default ``../shared/data/nb201/cifar10_test_acc.json`` beside the repository, all
15,625 cells; no network is run), once per seed, with a sampler's proposals of archs the study
already holds handled two ways:

- ``redirect``: moved to an unseen neighbour before the trial takes them (the default);
- ``repeat``: told again with the known value, the study steering to a random unseen arch after
  ``Study.max_repeats`` repeats in a row (what sharenas did before).

Per seed and mode it prints the trials told, the searcher's CPU seconds, the best accuracy found
and how many of the table's top 1% of cells the search evaluated. Usage:
``python -m bench.searcher_quality [--trials 500] [--seeds 0 1 2 3 4] [--sampler tpe]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from search.objective import Objective
from search.searchers.optuna_searcher import OptunaSearcher
from search.study import Study
from supernet.spaces.registry import build_space

TABLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb201" / "cifar10_test_acc.json"


def run(table: dict[str, float], sampler: str, seed: int, trials: int, redirect: bool) -> dict:
    """One search: trials told, distinct archs, searcher CPU s, best accuracy, top-1% hits."""
    space = build_space("nb201")
    searcher = OptunaSearcher(space, seed=seed, n_trials=trials, sampler=sampler, dedupe=True)
    study = Study(searcher, Objective(["score"], key="score"))
    study.redirect_repeats = redirect
    cpu = time.process_time()
    while (proposal := study.ask()) is not None:
        acc = table[str(proposal.arch)]
        study.tell(proposal, {"score": acc, "val_acc": acc, "params": 1, "flops": 1})
    cpu = time.process_time() - cpu
    found = [r.val_acc for r in study.records()]
    cut = sorted(table.values(), reverse=True)[max(1, len(table) // 100) - 1]
    return {
        "trials": len(study.trials()),
        "archs": len(found),
        "cpu": cpu,
        "best": max(found),
        "top1pct": sum(a >= cut for a in found),
        "redirected": study.n_redirected,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--sampler", default="tpe")
    parser.add_argument("--table", type=Path, default=TABLE)
    args = parser.parse_args(argv)
    if not args.table.is_file():
        parser.error(f"--table {args.table}: no such file (a JSON map arch -> accuracy)")
    table = json.loads(args.table.read_text())
    best = max(table.values())
    print(
        f"NAS-Bench-201 CIFAR-10 test accuracy, {len(table)} cells (best {best:.2f}); "
        f"{args.sampler} searches of {args.trials} archs, seeds {args.seeds}"
    )
    head = ("mode", "seed", "trials", "moved", "cpu s", "best", "top1%")
    print(" ".join(f"{h:>{w}}" for h, w in zip(head, (8, 4, 6, 5, 6, 6, 5), strict=True)))
    summary: dict[str, list[dict]] = {}
    for redirect in (True, False):
        mode = "redirect" if redirect else "repeat"
        for seed in args.seeds:
            r = run(table, args.sampler, seed, args.trials, redirect)
            summary.setdefault(mode, []).append(r)
            print(
                f"{mode:>8} {seed:4d} {r['trials']:6d} {r['redirected']:5d} {r['cpu']:6.2f} "
                f"{r['best']:6.2f} {r['top1pct']:5d}"
            )
    means = {
        mode: {k: statistics.mean(r[k] for r in rows) for k in ("trials", "cpu", "best", "top1pct")}
        for mode, rows in summary.items()
    }
    for mode, m in means.items():
        print(
            f"mean {mode}: {m['trials']:.0f} trials, {m['cpu']:.2f} s searcher CPU, best "
            f"{m['best']:.2f} (regret {best - m['best']:.2f} pt), {m['top1pct']:.1f} of the "
            f"top 1% found"
        )
    print(f"repeat/redirect searcher CPU {means['repeat']['cpu'] / means['redirect']['cpu']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
