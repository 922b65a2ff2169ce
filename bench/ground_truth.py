"""Ground truth for the fidelity benchmark: standalone nets trained from scratch.

Recipe (fixed before any strategy was tuned; stored in the output JSON with the results):
mnist5k pooled to 14x14, split seed 0 (3000 train / 1000 val / 1000 test), macro C=8, N=1,
SGD nesterov lr 0.05 momentum 0.9 wd 5e-4, cosine, batch 128, 6 epochs.
Ground truth = mean *test* accuracy over seeds (the supernet and the ranking never see test).
Three samples, each cached in its own file (``SAMPLES``); two of NB201 cells:
- ``stratified``: 215 cells, every op at every count 0..6 (``bench/sample.py``), seeds 0 1 2;
- ``uniform``: 300 cells drawn uniformly at random (draw seed 1), seeds 0-4, because uniform
  cells differ less and 3 seeds are too noisy to rank them;
and ``mbv3``: 100 archs of the elastic mbv3 space drawn uniformly (draw seed 1), seeds 0 1 2, in
a narrower macro (C=4; ``MBV3_MACRO``, below).

    python -m bench.ground_truth                    # the stratified sample
    python -m bench.ground_truth --sample uniform   # the uniform sample
    python -m bench.ground_truth --sample uniform --shard 0/2 &   # two processes, one cache
    python -m bench.ground_truth --sample uniform --shard 1/2
    python -m bench.ground_truth --sample mbv3 --limit 24 --pilot 2 10   # try C=2, 10 epochs
All resume: archs already in the cache are skipped. Each finished arch is merged into the cache
under a file lock (``fcntl``), so shards never overwrite each other's results.
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import itertools
import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from bench.sample import stratified_sample, uniform_sample
from search.fidelity import kendall_tau
from supernet.arch import Arch
from supernet.data import Splits, load_splits
from supernet.models import Macro, standalone_from_scratch
from supernet.spaces import build_space
from supernet.spaces.base import Space
from supernet.standalone import StandaloneRecipe, accuracy, train_standalone

HERE = Path(__file__).resolve().parent
DATA = dict(name="mnist5k", pool=2, val_fraction=0.2, test_fraction=0.2, seed=0)
MACRO = dict(channels=8, cells_per_stage=1)
#: accuracy below which a sampled cell is cut off (no path from input to output: ~8-10%)
CUT_OFF = 20.0
# The mbv3 sample's setting: the NB201 samples' data and recipe, a narrower macro (C=4). Pilots of
# uniform archs x 3 seeds (std of the 3-seed means / per-seed sd / mean pairwise seed tau):
# C=4 at 14x14 0.50 / 0.62 / 0.22 (the first 25 archs of this sample); C=4 at 7x7 1.17 / 1.49 /
# 0.02 (11 archs); C=4 with a 2,000-image test split 0.59 / 0.98 / 0.20 (8 archs); C=2 and C=8
# with 2-3 epochs were noisier or did not learn. None separates mbv3 archs much better than C=8
# (0.34 / 0.43 / 0.22 on 23 archs); C=4 at 14x14 spreads its means the widest against its seed
# noise (0.50 against 0.62; C=8: 0.34 against 0.43), at 15 s per training
# on one core. On all 100 archs it reads 0.47 / 0.69 / 0.10: the archs differ less than the seeds
# do. ``python -m bench.ceiling --sample mbv3`` gives what any estimator could reach (tau 0.33).
# Two later pilots on the faster CPU kernels (same statistics) did no better: C=2 for 10 epochs
# 0.66 / 1.04 / 0.13 (24 archs), C=4 for 15 epochs 0.34 / 0.55 / -0.04 (16 archs): a narrower
# macro trained longer is noisier, and longer training makes the archs more alike.
MBV3_CACHE = "mbv3_mnist5k14_c4.json"
MBV3_DATA = DATA
MBV3_MACRO = dict(channels=4)
MBV3_RECIPE = StandaloneRecipe()


@dataclass(frozen=True)
class Sample:
    """A fixed, seeded set of archs of one space, the standalone seeds that grade it, the setting
    they are trained in (data, macro, recipe) and its cache."""

    name: str
    cache: Path
    seeds: tuple[int, ...]
    draw: Callable[..., list[Arch]]
    params: dict = field(default_factory=dict)  # keyword arguments of ``draw``
    estimates: str = "estimates.json"  # a fidelity run's scores of this sample (bench/runs/...)
    space: str = "nb201"
    data: dict = field(default_factory=lambda: dict(DATA))
    macro: dict = field(default_factory=lambda: dict(MACRO))
    recipe: StandaloneRecipe = field(default_factory=StandaloneRecipe)

    def archs(self) -> list[Arch]:
        """The drawn archs, in their fixed order."""
        return self.draw(build_space(self.space), **self.params)

    def load(self) -> dict:
        """The cached ground truth (per_seed, mean, params, recipe, ...)."""
        if not self.cache.exists():
            raise FileNotFoundError(
                f"no ground truth for the {self.name} sample at {self.cache}; "
                f"run python -m bench.ground_truth --sample {self.name}"
            )
        return json.loads(self.cache.read_text())


SAMPLES = {
    "stratified": Sample(
        "stratified",
        HERE / "ground_truth" / "nb201_mnist5k14.json",
        (0, 1, 2),
        stratified_sample,
        dict(per_stratum=7, seed=2026),
    ),
    "uniform": Sample(
        "uniform",
        HERE / "ground_truth" / "nb201_mnist5k14_uniform.json",
        (0, 1, 2, 3, 4),
        uniform_sample,
        dict(n=300, seed=1),
        "estimates_uniform.json",
    ),
    "mbv3": Sample(
        "mbv3",
        HERE / "ground_truth" / MBV3_CACHE,
        (0, 1, 2),
        uniform_sample,
        dict(n=100, seed=1),
        "estimates_mbv3.json",
        space="mbv3",
        data=MBV3_DATA,
        macro=MBV3_MACRO,
        recipe=MBV3_RECIPE,
    ),
}
CACHE = SAMPLES["stratified"].cache  # the protocol's sample


def _write(path: Path, payload: dict) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    os.replace(tmp, path)


def _merge(path: Path, header: dict, key: str, accs: list[float], n_params: int) -> dict:
    """Add one arch's result to the cache at ``path``, read again under an exclusive lock so
    that results other processes (shards) wrote meanwhile are kept; returns the new payload."""
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        payload = json.loads(path.read_text()) if path.exists() else {}
        payload.update(header)
        payload.setdefault("per_seed", {})[key] = accs
        payload.setdefault("params", {})[key] = n_params
        payload["mean"] = {k: sum(v) / len(v) for k, v in payload["per_seed"].items()}
        _write(path, payload)
    return payload


def _train_seeds(
    space: Space, macro: Macro, arch: Arch, splits: Splits, recipe: StandaloneRecipe, seeds: tuple
) -> tuple[list[float], int]:
    """(test accuracy per seed, parameters) of ``arch`` trained alone once per seed."""
    accs = []
    for seed in seeds:
        torch.manual_seed(seed)
        net = standalone_from_scratch(space, macro, arch)
        train_standalone(net, splits.train, recipe, seed)
        accs.append(accuracy(net, splits.test))
    return accs, sum(p.numel() for p in net.parameters())


def measure(
    archs: list[Arch],
    sample: Sample,
    splits: Splits,
    recipe: StandaloneRecipe,
    log: Callable[[str], None] = print,
    shard: tuple[int, int] = (0, 1),
) -> dict:
    """Train every arch of ``archs`` not yet in ``sample.cache`` once per seed, merging each
    finished arch into the cache; returns the cache's payload. ``shard=(k, n)``: only the archs
    whose position is k modulo n (n processes share the work)."""
    space = build_space(sample.space)
    macro = Macro(**sample.macro, in_channels=splits.in_channels, num_classes=splits.num_classes)
    sample.cache.parent.mkdir(parents=True, exist_ok=True)
    header = dict(
        recipe=recipe.to_dict(),
        data=sample.data,
        macro=sample.macro,
        space=sample.space,
        seeds=list(sample.seeds),
        sample={"kind": sample.name, **sample.params},
        n_archs=len(archs),
        command=f"python -m bench.ground_truth --sample {sample.name}",
    )
    payload = json.loads(sample.cache.read_text()) if sample.cache.exists() else header
    done = payload.get("per_seed", {})
    start = time.time()
    for n, arch in enumerate(archs):
        key = str(arch)
        if n % shard[1] != shard[0] or len(done.get(key, ())) == len(sample.seeds):
            continue
        accs, n_params = _train_seeds(space, macro, arch, splits, recipe, sample.seeds)
        payload = _merge(sample.cache, header, key, accs, n_params)
        log(f"[{n + 1}/{len(archs)}] {time.time() - start:7.0f}s {key} {accs}")
    return payload


def pilot(
    archs: list[Arch], sample: Sample, splits: Splits, recipe: StandaloneRecipe, channels: int
) -> dict:
    """Try a setting before caching anything: train ``archs`` once per seed of ``sample`` at
    width ``channels`` and print how well it separates them (the std of the seed means, the mean
    per-seed sd and the mean pairwise Kendall tau between single seeds); nothing is written."""
    space = build_space(sample.space)
    macro = Macro(
        **{**sample.macro, "channels": channels},
        in_channels=splits.in_channels,
        num_classes=splits.num_classes,
    )
    per_seed, start = {}, time.time()
    for n, arch in enumerate(archs):
        accs, _ = _train_seeds(space, macro, arch, splits, recipe, sample.seeds)
        per_seed[str(arch)] = accs
        print(f"[{n + 1}/{len(archs)}] {time.time() - start:7.0f}s {arch} {accs}", flush=True)
    columns = list(zip(*per_seed.values(), strict=True))
    taus = [
        kendall_tau(dict(zip(per_seed, a, strict=True)), dict(zip(per_seed, b, strict=True)))
        for a, b in itertools.combinations(columns, 2)
    ]
    means = [statistics.fmean(v) for v in per_seed.values()]
    figures = {
        "std_of_means": statistics.pstdev(means),
        "per_seed_sd": statistics.fmean(statistics.stdev(v) for v in per_seed.values()),
        "seed_tau": statistics.fmean(taus),
        "seconds_per_training": (time.time() - start) / len(archs) / len(sample.seeds),
    }
    print(
        f"pilot: C={channels}, {recipe.epochs} epochs, {len(archs)} archs x {len(sample.seeds)} "
        f"seeds, mean accuracy {statistics.fmean(means):.2f}: std of means "
        f"{figures['std_of_means']:.2f} / per-seed sd {figures['per_seed_sd']:.2f} / seed tau "
        f"{figures['seed_tau']:.3f}, {figures['seconds_per_training']:.1f} s per training"
    )
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--limit", type=int, default=None, help="only the first N archs (a dry run)"
    )
    parser.add_argument(
        "--sample", choices=list(SAMPLES), default="stratified", help="which sample (see above)"
    )
    parser.add_argument(
        "--shard", default="0/1", help="K/N: this process trains the archs at positions K mod N"
    )
    parser.add_argument(
        "--pilot",
        nargs=2,
        type=int,
        metavar=("CHANNELS", "EPOCHS"),
        help="try the sample's archs (with --limit) at this width and epochs; writes nothing",
    )
    args = parser.parse_args(argv)
    k, n = (int(v) for v in args.shard.split("/"))
    if not 0 <= k < n:
        parser.error(f"--shard {args.shard}: need K/N with 0 <= K < N")
    torch.set_num_threads(1)
    sample = SAMPLES[args.sample]
    archs = sample.archs()[: args.limit]
    splits = load_splits(**sample.data)
    if args.pilot:
        channels, epochs = args.pilot
        pilot(archs, sample, splits, dataclasses.replace(sample.recipe, epochs=epochs), channels)
        return
    measure(archs, sample, splits, sample.recipe, lambda s: print(s, flush=True), (k, n))


if __name__ == "__main__":
    main()
