"""``sharenas-latency``: measure a latency lookup table for this device and write it as JSON.

``sharenas-latency`` (or ``python -m sharenas.latency``) times every part of a run's supernet on
the current device at the run's input size (``search.latency``).

    sharenas-latency --out lut_cpu.json [--checkpoint supernet.pt] [train overrides ...]
    sharenas-search evaluator.latency_table=lut_cpu.json constraints.latency_ms=2.5
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import torch

from search.latency import LatencyTable
from supernet.builder import Built
from supernet.errors import SharenasError


def built_for(checkpoint: str | None, overrides: Sequence[str]) -> Built:
    """The supernet layout and data of a checkpoint, or of the train config with ``overrides``
    (weights do not matter for timing, so none are loaded)."""
    if checkpoint is not None:
        from supernet.builder import build_from_file
        from supernet.checkpoint import load_checkpoint

        return build_from_file(load_checkpoint(checkpoint)["config"])
    from sharenas.config import compose
    from supernet.builder import build

    return build(compose("train", overrides))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="sharenas-latency", description=__doc__.split("\n")[0])
    parser.add_argument("overrides", nargs="*", help="train config overrides, e.g. space=mbv3")
    parser.add_argument("--checkpoint", help="measure for this supernet.pt's layout and data")
    parser.add_argument("--out", default="latency_table.json", help="where to write the table")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    parser.add_argument("--batch", type=int, default=1, help="samples per forward pass")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--min-run-time", type=float, default=0.2, help="seconds per part")
    parser.add_argument("--rounds", type=int, default=1, help="sweeps over all parts")
    parser.add_argument(
        "--calibrate", type=int, default=5, help="whole networks timed to fit the table's scale"
    )
    parser.add_argument(
        "--stat", choices=["median", "min"], default="median", help="min: for a busy host"
    )
    args = parser.parse_args(argv)
    try:
        if min(args.batch, args.threads, args.rounds) < 1 or not args.min_run_time > 0:
            raise SharenasError("--batch, --threads and --rounds must be >= 1, --min-run-time > 0")
        built = built_for(args.checkpoint, args.overrides)
        supernet = built.strategy.supernets[0]
        shape = tuple(built.splits.val.tensors[0].shape[1:])
        table = LatencyTable.measure(
            supernet,
            shape,
            batch=args.batch,
            device=args.device,
            threads=args.threads,
            min_run_time=args.min_run_time,
            statistic=args.stat,
            rounds=args.rounds,
            calibrate=args.calibrate,
        )
        path = table.save(args.out)
    except SharenasError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    print(
        f"{len(table.parts)} parts of {built.space.name} at input {shape} on "
        f"{table.meta['device']}: {path}"
    )


if __name__ == "__main__":
    main()
