"""Ground truth for the fidelity benchmark: standalone NB201 nets trained from scratch.

Recipe (fixed before any strategy was tuned; stored in the output JSON with the results):
mnist5k pooled to 14x14, split seed 0 (3000 train / 1000 val / 1000 test), macro C=8, N=1,
SGD nesterov lr 0.05 momentum 0.9 wd 5e-4, cosine, batch 128, 6 epochs, seeds 0 1 2.
Ground truth = mean *test* accuracy over seeds (the supernet and the ranking never see test).

    python bench/ground_truth.py            # stratified sample (215 cells), 3 seeds
    python bench/ground_truth.py --sample uniform   # 300 cells drawn uniformly (seed 1), 5 seeds
Both resume: archs already in the cache are skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.sample import stratified_sample, uniform_sample  # noqa: E402
from supernet.data import load_splits  # noqa: E402
from supernet.models import Macro, standalone_from_scratch  # noqa: E402
from supernet.spaces import build_space  # noqa: E402
from supernet.standalone import StandaloneRecipe, accuracy, train_standalone  # noqa: E402

CACHE = Path(__file__).with_name("ground_truth") / "nb201_mnist5k14.json"
CACHE_UNIFORM = Path(__file__).with_name("ground_truth") / "nb201_mnist5k14_uniform.json"
DATA = dict(name="mnist5k", pool=2, val_fraction=0.2, test_fraction=0.2, seed=0)
MACRO = dict(channels=8, cells_per_stage=1)
#: accuracy below which a sampled cell is cut off (no path from input to output: ~8-10%)
CUT_OFF = 20.0
SEEDS = (0, 1, 2)
SAMPLE = dict(per_stratum=7, seed=2026)
#: the uniform sample: more cells and more seeds, because uniform cells differ less
UNIFORM = dict(n=300, seed=1)
UNIFORM_SEEDS = (0, 1, 2, 3, 4)


def _write(path: Path, payload: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--limit", type=int, default=None, help="only the first N archs (a dry run)"
    )
    parser.add_argument("--sample", choices=("stratified", "uniform"), default="stratified")
    args = parser.parse_args()
    uniform = args.sample == "uniform"
    cache, seeds = (CACHE_UNIFORM, UNIFORM_SEEDS) if uniform else (CACHE, SEEDS)
    sample = UNIFORM if uniform else SAMPLE
    torch.set_num_threads(1)
    space = build_space("nb201")
    splits = load_splits(**DATA)
    macro = Macro(**MACRO, in_channels=splits.in_channels, num_classes=splits.num_classes)
    recipe = StandaloneRecipe()
    draw = uniform_sample if uniform else stratified_sample
    archs = draw(space, **sample)[: args.limit]
    cache.parent.mkdir(exist_ok=True)
    payload = json.loads(cache.read_text()) if cache.exists() else {}
    payload.update(
        recipe=recipe.to_dict(),
        data=DATA,
        macro=MACRO,
        seeds=list(seeds),
        sample={"kind": args.sample, **sample},
        n_archs=len(archs),
        command=f"python bench/ground_truth.py --sample {args.sample}",
    )
    per_seed = payload.setdefault("per_seed", {})
    params = payload.setdefault("params", {})
    start = time.time()
    for n, arch in enumerate(archs):
        key = str(arch)
        if key in per_seed and len(per_seed[key]) == len(seeds):
            continue
        accs = []
        for seed in seeds:
            torch.manual_seed(seed)
            net = standalone_from_scratch(space, macro, arch)
            train_standalone(net, splits.train, recipe, seed)
            accs.append(accuracy(net, splits.test))
        per_seed[key] = accs
        params[key] = sum(p.numel() for p in net.parameters())
        payload["mean"] = {k: sum(v) / len(v) for k, v in per_seed.items()}
        _write(cache, payload)
        print(f"[{n + 1}/{len(archs)}] {time.time() - start:7.0f}s {key} {accs}", flush=True)


if __name__ == "__main__":
    main()
