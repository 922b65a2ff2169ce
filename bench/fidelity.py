"""Ranking-fidelity benchmark (DESIGN.md, "Ranking fidelity protocol").

For each strategy x sampler row: train the supernet with the same number of optimizer steps, with
3 seeds; score every arch of the fixed ground-truth sample by BN-recalibrated validation accuracy
with inherited weights (no retraining); compare with the cached ground truth (mean test accuracy of
standalone nets over 3 seeds, ``bench/ground_truth.py``). Prints mean +- std over supernet seeds of
Kendall tau-b, Spearman rho, precision@top-10%, top-1 regret, with wall time and parameter bytes,
next to the parameter-count baseline and the ground truth's own single-seed noise level.

    python bench/fidelity.py                       # every row, 3 seeds, 2 worker processes
    python bench/fidelity.py --rows full-uniform gm-uniform --seeds 0
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ground_truth import CACHE, CUT_OFF, DATA, MACRO  # noqa: E402
from search.fidelity import fidelity_report, kendall_tau  # noqa: E402

EPOCHS, STEPS_PER_EPOCH = 30, 45  # equal optimizer-step budget for every row: 1,350 steps
BASE = [
    "data=mnist5k",
    f"data.pool={DATA['pool']}",
    f"data.seed={DATA['seed']}",
    f"space.macro.channels={MACRO['channels']}",
    f"space.macro.cells_per_stage={MACRO['cells_per_stage']}",
    f"trainer.epochs={EPOCHS}",
    f"trainer.steps_per_epoch={STEPS_PER_EPOCH}",
    "trainer.progress=false",
    "trainer.num_threads=1",
]
# name -> overrides. The first five were fixed before any strategy was tuned; rows added later
# are appended, never edited (their history is in bench/README.md).
ROWS: dict[str, list[str]] = {
    "full-uniform": ["sharing=full", "sampler=uniform"],
    "full-sandwich": ["sharing=full", "sampler=sandwich"],
    "full-cost_binned": ["sharing=full", "sampler=cost_binned"],
    "fewshot-uniform": ["sharing=fewshot", "sharing.split_epoch=15"],
    "gm-uniform": ["sharing=gm", "sharing.split_epochs=[15]"],
    "full-fair": ["sharing=full", "sampler=fair"],
    "full-progressive": ["sharing=full", "sampler=progressive", "sampler.warmup_epochs=8"],
    "fewshot-balanced": [
        "sharing=fewshot",
        "sharing.split_epoch=15",
        "sharing.train_all_leaves=true",
    ],
    "gm-balanced": [
        "sharing=gm",
        "sharing.split_epochs=[10,20]",
        "sharing.max_splits=2",
        "sharing.train_all_leaves=true",
    ],
    "fewshot-fair-balanced": [
        "sharing=fewshot",
        "sharing.split_epoch=15",
        "sharing.train_all_leaves=true",
        "sampler=fair",
    ],
    "gm-fair-balanced": [
        "sharing=gm",
        "sharing.split_epochs=[10,20]",
        "sharing.max_splits=2",
        "sharing.train_all_leaves=true",
        "sampler=fair",
    ],
    # added after the equal-width fix made cost_binned the best row (run 3)
    "full-cost_binned10": ["sharing=full", "sampler=cost_binned", "sampler.bins=10"],
    "fewshot-cost_binned-balanced": [
        "sharing=fewshot",
        "sharing.split_epoch=15",
        "sharing.train_all_leaves=true",
        "sampler=cost_binned",
    ],
    "gm-cost_binned-balanced": [
        "sharing=gm",
        "sharing.split_epochs=[10,20]",
        "sharing.max_splits=2",
        "sharing.train_all_leaves=true",
        "sampler=cost_binned",
    ],
    # added after run 4 (few-shot + cost_binned + balanced children was the best row)
    "fewshot2-cost_binned-balanced": [
        "sharing=fewshot",
        "sharing.split_epoch=10",
        "sharing.split_every=10",
        "sharing.decisions=[edge_1_0,edge_3_0]",
        "sharing.train_all_leaves=true",
        "sampler=cost_binned",
    ],
    "gm3-cost_binned-balanced": [
        "sharing=gm",
        "sharing.split_epochs=[8,16,24]",
        "sharing.max_splits=3",
        "sharing.train_all_leaves=true",
        "sampler=cost_binned",
    ],
    # added after run 5: where and when to split
    "fewshot-cost_binned-balanced-e8": [
        "sharing=fewshot",
        "sharing.split_epoch=8",
        "sharing.train_all_leaves=true",
        "sampler=cost_binned",
    ],
    "fewshot30-cost_binned-balanced": [
        "sharing=fewshot",
        "sharing.split_epoch=15",
        "sharing.decisions=[edge_3_0]",
        "sharing.train_all_leaves=true",
        "sampler=cost_binned",
    ],
    # added in session 3: few-shot along cost (one child per parameter-count range)
    "costsplit-cost_binned": ["sharing=costsplit", "sharing.split_epoch=15", "sampler=cost_binned"],
    "costsplit-uniform": ["sharing=costsplit", "sharing.split_epoch=15", "sampler=uniform"],
    # session 3: the supernet scores paths with `none`/pooling on edge_3_0 (input -> output) ~3
    # points low while standalone training does not care (bench/README.md); split there at once
    "fewshot30-cost_binned-balanced-e1": [
        "sharing=fewshot",
        "sharing.split_epoch=1",
        "sharing.decisions=[edge_3_0]",
        "sharing.train_all_leaves=true",
        "sampler=cost_binned",
    ],
    # session 3, longer budget (3x the steps; a separate comparison, labelled x3): does ranking
    # keep improving with training?
    "full-uniform-x3": ["sharing=full", "sampler=uniform", "trainer.epochs=90"],
    "full-cost_binned-x3": ["sharing=full", "sampler=cost_binned", "trainer.epochs=90"],
    "fewshot-cost_binned-balanced-x3": [
        "sharing=fewshot",
        "sharing.split_epoch=45",
        "sharing.train_all_leaves=true",
        "sampler=cost_binned",
        "trainer.epochs=90",
    ],
    # session 3: one path from each of the 5 cost bins in every optimizer step
    "full-cost_binned-k5": ["sharing=full", "sampler=cost_binned", "sampler.paths_per_step=5"],
}
# session 4: variants of earlier rows, each the earlier row's overrides plus one
VARIANTS = {
    "noaffine": "space.macro.bn_affine=false",  # no learnable BN scale/shift (NB201's search net)
    "b128": "trainer.batch_size=128",  # the ground truth's batch size, same optimizer steps
    "wd5e4": "trainer.optimizer.weight_decay=5e-4",  # session 5: the ground truth's weight decay
    "lr0.1": "trainer.optimizer.lr=0.1",  # session 5: learning rate x2 and x0.4
    "lr0.02": "trainer.optimizer.lr=0.02",
    "lr0.01": "trainer.optimizer.lr=0.01",  # session 5: after lr0.02 won with the loss estimators
    "lr0.005": "trainer.optimizer.lr=0.005",
    "b32": "trainer.batch_size=32",  # session 5: half the batch (b128 lost), same optimizer steps
    "m0.8": "trainer.optimizer.momentum=0.8",  # session 6: momentum, screened at lr 0.02
    "m0.95": "trainer.optimizer.momentum=0.95",
    "ema0.99": "trainer.ema_decay=0.99",  # session 6: score with an EMA of the weights
    "ema0.998": "trainer.ema_decay=0.998",
    "ema0.999": "trainer.ema_decay=0.999",
    # session 7: less memorisation of the 3,000 training images, screened on the EMA full row
    "ls0.1": "trainer.label_smoothing=0.1",
    "shift1": "trainer.augment.crop_pad=1",  # random shifts of up to 1 pixel (14x14 images)
    "shift2": "trainer.augment.crop_pad=2",
}
for _base, _suffix in [
    ("full-uniform", "noaffine"),
    ("full-cost_binned", "noaffine"),
    ("fewshot-cost_binned-balanced", "noaffine"),
    ("fewshot-cost_binned-balanced-e8", "noaffine"),
    ("full-cost_binned10", "noaffine"),
    ("full-cost_binned", "b128"),
    ("fewshot-cost_binned-balanced", "b128"),
    ("full-cost_binned", "wd5e4"),
    ("fewshot-cost_binned-balanced", "wd5e4"),
    ("full-cost_binned", "lr0.1"),
    ("full-cost_binned", "lr0.02"),
    ("full-cost_binned", "b32"),
    ("full-cost_binned", "lr0.01"),
    ("full-cost_binned", "lr0.005"),
    ("fewshot-cost_binned-balanced", "lr0.02"),
    ("full-uniform", "lr0.02"),
    ("fewshot-cost_binned-balanced-lr0.02", "noaffine"),  # session 5: the lr0.02 winner combined
    ("full-cost_binned-lr0.02", "noaffine"),
    ("fewshot-cost_binned-balanced", "lr0.01"),
    ("gm-cost_binned-balanced", "lr0.02"),
    ("fewshot-cost_binned-balanced-lr0.02", "wd5e4"),
    ("fewshot-cost_binned-balanced-e8", "lr0.02"),
    ("full-cost_binned10", "lr0.02"),
    ("full-cost_binned-lr0.02", "m0.8"),  # session 6: screened on the cheap full row first
    ("full-cost_binned-lr0.02", "m0.95"),
    ("full-cost_binned-lr0.02", "ema0.99"),
    ("full-cost_binned-lr0.02", "ema0.998"),
    ("full-cost_binned-lr0.02", "ema0.999"),
    ("fewshot-cost_binned-balanced-lr0.02-wd5e4", "ema0.998"),  # after ema0.998 won on full
    ("fewshot-cost_binned-balanced-lr0.02", "ema0.998"),
    ("gm-cost_binned-balanced-lr0.02", "ema0.998"),  # after the few-shot EMA rows: is it general?
    ("full-uniform-lr0.02", "ema0.998"),
    ("costsplit-cost_binned", "lr0.02"),  # session 6: the fourth strategy at lr 0.02, then + EMA
    ("costsplit-cost_binned-lr0.02", "ema0.998"),
    ("full-cost_binned-lr0.02-ema0.998", "ls0.1"),  # session 7
    ("full-cost_binned-lr0.02-ema0.998", "shift1"),
    ("full-cost_binned-lr0.02-ema0.998", "shift2"),
    ("full-cost_binned-lr0.02-ema0.998-shift1", "ls0.1"),  # after both helped, alone
    ("full-cost_binned-lr0.02-ema0.998-shift2", "ls0.1"),
    ("fewshot-cost_binned-balanced-lr0.02-ema0.998", "shift1"),  # the shifts on the best rows
    ("fewshot-cost_binned-balanced-lr0.02-ema0.998", "shift2"),
    ("fewshot-cost_binned-balanced-lr0.02-ema0.998", "ls0.1"),
    ("fewshot-cost_binned-balanced-lr0.02-ema0.998-shift2", "ls0.1"),
]:
    ROWS[f"{_base}-{_suffix}"] = [*ROWS[_base], VARIANTS[_suffix]]
# session 5: the stratified sampler (uniform over (op, count) strata), in place of cost_binned
for _base in ["full-cost_binned", "fewshot-cost_binned-balanced"]:
    ROWS[_base.replace("cost_binned", "stratified")] = [
        "sampler=stratified" if o == "sampler=cost_binned" else o for o in ROWS[_base]
    ]
# session 6: fewer, wider cost bins (10 bins lost to 5 at both learning rates)
ROWS["full-cost_binned3-lr0.02"] = [*ROWS["full-cost_binned-lr0.02"], "sampler.bins=3"]
METRICS = ("kendall_tau", "spearman_rho", "precision_top10", "top1_regret")


# Estimators scored for every run, name -> (label suffix in the table, description). The first is
# the protocol's; the others were added in session 3 and are computed from the saved supernet.pt
# when an older cached run lacks them (no retraining).
ESTIMATORS = {
    "val_acc": ("", "val accuracy, BN recalibrated on 256 training images (the protocol)"),
    "neg_val_loss": (" (-val loss)", "minus val loss, same recalibration"),
    "neg_train_loss": (
        " (-train loss)",
        "minus the loss on the whole training split (3,000 images), BN recalibrated on all of it",
    ),
    # session 4: separates the two changes -train loss makes (calibration set, scored split)
    "val_acc_full_calib": (
        " (val acc, full calib)",
        "val accuracy with BN recalibrated on the whole training split, as -train loss is",
    ),
}
FULL_CALIB = 47  # x 64 = every training image of mnist5k (3,000)


def _score(out: Path, archs: list[str], seed: int) -> dict:
    """Every estimator of ``ESTIMATORS`` for the supernet saved in ``out``."""
    from search.evaluate import Evaluator
    from supernet.builder import load_trained

    built, _ = load_trained(out / "supernet.pt")
    protocol = Evaluator(built, count_flops=False, seed=seed)
    full = Evaluator(built, calib_batches=FULL_CALIB, count_flops=False, train_loss=True, seed=seed)
    tic = time.time()
    records = {a: protocol(built.space.parse(a)) for a in archs}
    protocol_s = time.time() - tic
    trained = {a: full(built.space.parse(a)) for a in archs}
    return {
        "protocol_score_s": protocol_s,
        "param_bytes": built.strategy.parameter_bytes(),
        "num_supernets": built.strategy.num_supernets,
        "val_acc": {a: r["val_acc"] for a, r in records.items()},
        "neg_val_loss": {a: -r["val_loss"] for a, r in records.items()},
        "neg_train_loss": {a: -r["train_loss"] for a, r in trained.items()},
        "val_acc_full_calib": {a: r["val_acc"] for a, r in trained.items()},
    }


def _epochs(row: str) -> int:
    """The row's training epochs (rows with more than EPOCHS are labelled longer budgets)."""
    given = [o.split("=")[1] for o in ROWS[row] if o.startswith("trainer.epochs=")]
    return int(given[-1]) if given else EPOCHS


def _overrides(row: str) -> list[str]:
    """BASE + the row's overrides; a row may replace a BASE key (the longer-budget rows do)."""
    keys = {o.split("=")[0] for o in ROWS[row]}
    return [b for b in BASE if b.split("=")[0] not in keys] + ROWS[row]


def _one(row: str, seed: int, archs: list[str], out_root: Path, rescore: bool = False) -> dict:
    """Train one supernet and score the sample; runs in a worker process."""
    import torch
    from hydra import compose, initialize_config_dir

    from supernet.config import register_train_configs
    from supernet.training import train

    torch.set_num_threads(1)
    overrides = _overrides(row) + [f"seed={seed}"]
    out = out_root / row / f"seed{seed}"
    cached = out / "estimates.json"
    if cached.exists():  # same overrides -> reuse the finished run (delete the folder to redo it)
        payload = json.loads(cached.read_text())
        if payload.get("overrides") == overrides and sorted(payload["val_acc"]) == sorted(archs):
            if all(k in payload for k in ESTIMATORS) or not rescore:
                return payload
            if (out / "supernet.pt").exists():  # an older run: add the newer estimators
                tic = time.time()
                payload |= _score(out, archs, seed)
                payload["rescore_s"] = time.time() - tic
                cached.write_text(json.dumps(payload))
                return payload
    register_train_configs()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    tic = time.time()
    train(cfg, out_dir=out)
    train_s = time.time() - tic
    scores = _score(out, archs, seed)
    result = {
        "overrides": overrides,
        "row": row,
        "seed": seed,
        "train_s": train_s,
        **scores,
        "total_s": train_s + scores["protocol_score_s"],  # training + the protocol's scoring
    }
    cached.write_text(json.dumps(result))
    return result


def _fmt(values: list[float], digits: int = 3) -> str:
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.{digits}f} +- {std:.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="*", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (1 thread each)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "runs")
    parser.add_argument(
        "--rescore",
        action="store_true",
        help="add missing estimators to cached runs from their saved supernet.pt (no retraining; "
        "a cached run without supernet.pt is trained again)",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="plumbing check: 1 epoch x 2 steps, 30 archs, no save"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        global BASE
        BASE = [b for b in BASE if not b.startswith(("trainer.epochs", "trainer.steps_per"))]
        BASE += ["trainer.epochs=1", "trainer.steps_per_epoch=2"]
    gt_payload = json.loads(CACHE.read_text())
    truth = gt_payload["mean"]
    archs = sorted(truth)[:30] if args.smoke else sorted(truth)
    truth = {a: truth[a] for a in archs}
    print(
        f"ground truth: {len(archs)} archs x {len(gt_payload['seeds'])} seeds, recipe "
        f"{gt_payload['recipe']}, data {gt_payload['data']}, macro {gt_payload['macro']}"
    )
    per_seed = [
        {a: gt_payload["per_seed"][a][i] for a in archs} for i in range(len(gt_payload["seeds"]))
    ]
    noise = [kendall_tau(a, b) for a, b in itertools.combinations(per_seed, 2)]
    print(
        f"ground-truth noise: mean pairwise Kendall tau between single seeds "
        f"{statistics.fmean(noise):.3f} ({', '.join(f'{t:.3f}' for t in noise)})"
    )
    params = {a: float(gt_payload["params"][a]) for a in archs}
    base = fidelity_report(params, truth)
    # the retraining reference: one standalone seed as the estimate of the mean of the other
    # seeds (leave-one-out, so a seed never grades itself; a 2-seed mean is noisier
    # than the 3-seed truth, so this reads a little low)
    retrain = [
        fidelity_report(
            per_seed[k],
            {a: statistics.fmean(s[a] for i, s in enumerate(per_seed) if i != k) for a in archs},
        )
        for k in range(len(per_seed))
    ]
    print(
        f"budget: {EPOCHS} epochs x {STEPS_PER_EPOCH} steps = {EPOCHS * STEPS_PER_EPOCH} "
        f"optimizer steps per supernet; seeds {args.seeds}\n"
    )
    jobs = [(row, seed) for row in args.rows for seed in args.seeds]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [
            pool.submit(_one, row, seed, archs, args.out, args.rescore) for row, seed in jobs
        ]
        runs = [f.result() for f in futures]
    for suffix, text in ESTIMATORS.values():
        print(f"estimator{suffix or ' (main rows)'}: {text}")
    header = (
        f"{'estimator':28s} {'kendall tau':>15s} {'spearman rho':>15s} {'P@top10%':>15s} "
        f"{'top1 regret':>15s} {'wall s':>8s} {'MB':>6s}"
    )
    print(header)
    print("-" * len(header))
    print(
        f"{'param count (baseline)':28s} {base['kendall_tau']:15.3f} {base['spearman_rho']:15.3f} "
        f"{base['precision_top10']:15.3f} {base['top1_regret']:15.3f} {'-':>8s} {'-':>6s}"
    )
    retrain_cols = {m: [rep[m] for rep in retrain] for m in METRICS}
    print(
        f"{'retrain once (reference)':28s} "
        + " ".join(f"{_fmt(retrain_cols[m]):>15s}" for m in METRICS)
        + f" {'-':>8s} {'-':>6s}"
    )
    summary = {
        "baseline_params": base,
        "noise_tau": noise,
        "retrain_once": retrain_cols,
        "rows": {},
    }
    equal = [r for r in args.rows if _epochs(r) == EPOCHS]
    longer = [r for r in args.rows if _epochs(r) != EPOCHS]  # a separate comparison
    for score, (suffix, _) in ESTIMATORS.items():
        for row in equal + longer:
            if row == (longer or [None])[0]:
                print(f"-- longer budgets ({_epochs(row)} epochs x {STEPS_PER_EPOCH} steps) --")
            mine = [r for r in runs if r["row"] == row]
            if not all(score in r for r in mine):  # a cached run from before this estimator
                continue
            reports = [fidelity_report(r[score], truth) for r in mine]
            cols = {m: [rep[m] for rep in reports] for m in METRICS}
            wall = statistics.fmean(r["total_s"] for r in mine)
            mb = statistics.fmean(r["param_bytes"] for r in mine) / 1e6
            label = row + suffix
            print(
                f"{label:28s} "
                + " ".join(f"{_fmt(cols[m]):>15s}" for m in METRICS)
                + f" {wall:8.0f} {mb:6.2f}"
            )
            summary["rows"][label] = {m: cols[m] for m in METRICS} | {
                "wall_s": wall,
                "param_mb": mb,
                "num_supernets": [r["num_supernets"] for r in mine],
            }
    connected = {a: v for a, v in truth.items() if v > CUT_OFF}
    conn_base = kendall_tau({a: params[a] for a in connected}, connected)
    print(
        f"\nsecondary views (val_acc estimates): seed-ensemble = mean estimate of the "
        f"{len(args.seeds)} supernet seeds ({len(args.seeds)}x the training cost); connected = the "
        f"{len(connected)} archs whose ground truth is above 20% (cut-off cells removed)"
    )
    print(f"{'estimator':28s} {'tau seed-ensemble':>18s} {'tau connected':>15s}")
    print(f"{'param count (baseline)':28s} {base['kendall_tau']:18.3f} {conn_base:15.3f}")
    summary["connected"] = {"n": len(connected), "param_count_tau": conn_base, "rows": {}}
    for row in args.rows:
        mine = [r for r in runs if r["row"] == row]
        ensemble = {a: statistics.fmean(r["val_acc"][a] for r in mine) for a in archs}
        ens_tau = kendall_tau(ensemble, truth)
        conn = [kendall_tau({a: r["val_acc"][a] for a in connected}, connected) for r in mine]
        print(f"{row:28s} {ens_tau:18.3f} {_fmt(conn):>15s}")
        summary["rows"][row]["ensemble_tau"] = ens_tau
        summary["connected"]["rows"][row] = conn
    if args.smoke:
        return 0
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = out / "fidelity.json"
    if path.exists():  # a run of some rows updates those rows and keeps the others
        old = json.loads(path.read_text())
        summary["rows"] = old.get("rows", {}) | summary["rows"]
        conn = old.get("connected", {}).get("rows", {}) | summary["connected"]["rows"]
        summary["connected"]["rows"] = conn
    path.write_text(json.dumps(summary, indent=1))
    print(f"\nwritten: {out / 'fidelity.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
