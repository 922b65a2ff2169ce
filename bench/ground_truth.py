"""Ground truth for the fidelity benchmark: standalone NB201 nets trained from scratch, 3 seeds.

Recipe (fixed before any strategy was tuned; stored in the output JSON with the results):
mnist5k pooled to 14x14, split seed 0 (3000 train / 1000 val / 1000 test), macro C=8, N=1,
SGD nesterov lr 0.05 momentum 0.9 wd 5e-4, cosine, batch 128, 6 epochs, seeds 0 1 2.
Ground truth = mean *test* accuracy over seeds (the supernet and the ranking never see test).

    python bench/ground_truth.py            # resumes: archs already in the cache are skipped
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

from bench.sample import stratified_sample  # noqa: E402
from supernet.data import load_splits  # noqa: E402
from supernet.networks import Macro, standalone_from_scratch  # noqa: E402
from supernet.spaces import build_space  # noqa: E402
from supernet.standalone import StandaloneRecipe, accuracy, train_standalone  # noqa: E402

CACHE = Path(__file__).with_name("ground_truth") / "nb201_mnist5k14.json"
DATA = dict(name="mnist5k", pool=2, val_fraction=0.2, test_fraction=0.2, seed=0)
MACRO = dict(channels=8, cells_per_stage=1)
#: accuracy below which a sampled cell is cut off (no path from input to output: ~8-10%)
CUT_OFF = 20.0
SEEDS = (0, 1, 2)
SAMPLE = dict(per_stratum=7, seed=2026)


def _write(path: Path, payload: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--limit", type=int, default=None, help="only the first N archs (a dry run)"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    space = build_space("nb201")
    splits = load_splits(**DATA)
    macro = Macro(**MACRO, in_channels=splits.in_channels, num_classes=splits.num_classes)
    recipe = StandaloneRecipe()
    archs = stratified_sample(space, **SAMPLE)[: args.limit]
    CACHE.parent.mkdir(exist_ok=True)
    payload = json.loads(CACHE.read_text()) if CACHE.exists() else {}
    payload.update(
        recipe=recipe.to_dict(),
        data=DATA,
        macro=MACRO,
        seeds=list(SEEDS),
        sample=SAMPLE,
        n_archs=len(archs),
        command="python bench/ground_truth.py",
    )
    per_seed = payload.setdefault("per_seed", {})
    params = payload.setdefault("params", {})
    start = time.time()
    for n, arch in enumerate(archs):
        key = str(arch)
        if key in per_seed and len(per_seed[key]) == len(SEEDS):
            continue
        accs = []
        for seed in SEEDS:
            torch.manual_seed(seed)
            net = standalone_from_scratch(space, macro, arch)
            train_standalone(net, splits.train, recipe, seed)
            accs.append(accuracy(net, splits.test))
        per_seed[key] = accs
        params[key] = sum(p.numel() for p in net.parameters())
        payload["mean"] = {k: sum(v) / len(v) for k, v in per_seed.items()}
        _write(CACHE, payload)
        print(f"[{n + 1}/{len(archs)}] {time.time() - start:7.0f}s {key} {accs}", flush=True)


if __name__ == "__main__":
    main()
