"""The fidelity benchmark's printed tables and summary file, from cached runs and a ground truth.

Pure functions of the runs' estimates (arch -> score maps) and the ground-truth payload of
``bench/ground_truth.py``; ``bench/fidelity.py`` trains and scores, this module reports.
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
from dataclasses import dataclass
from pathlib import Path

from bench.ground_truth import CUT_OFF, Sample
from bench.rows import RowBook
from search.fidelity import fidelity_report, kendall_tau

METRICS = ("kendall_tau", "spearman_rho", "precision_top10", "top1_regret")


def fmt(values: list[float], digits: int = 3) -> str:
    """``mean +- std`` (std 0 for a single value)."""
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.{digits}f} +- {std:.{digits}f}"


def per_seed_truth(gt: dict, archs: list[str]) -> list[dict[str, float]]:
    """One arch -> accuracy map per standalone seed of the ground truth."""
    return [{a: gt["per_seed"][a][i] for a in archs} for i in range(len(gt["seeds"]))]


@dataclass(frozen=True)
class Costs:
    """The cost baselines of a sample's archs: FLOPs of one forward pass at the sample's image
    size (``torch.utils.flop_counter``, through ``search.costs.flops``)."""

    flops: dict[str, float]

    @classmethod
    def of(cls, sample: Sample, archs: list[str]) -> Costs:
        """Count every arch's FLOPs on its standalone net in the sample's macro and data."""
        from search.costs import flops
        from supernet.data import load_splits
        from supernet.models import Macro, build_supernet
        from supernet.spaces import build_space

        splits = load_splits(**sample.data)
        space = build_space(sample.space)
        macro = Macro(
            **sample.macro, in_channels=splits.in_channels, num_classes=splits.num_classes
        )
        net = build_supernet(space, macro)
        shape = (splits.in_channels, splits.image_size, splits.image_size)
        return cls({a: float(flops(net.extract(space.parse(a)), shape)) for a in archs})


def references(gt: dict, archs: list[str], costs: Costs | None = None) -> dict:
    """What the supernet rows are read against: the cost baselines' reports (parameter count,
    and FLOPs when ``costs`` are given), the ground truth's single-seed noise (pairwise tau
    between seeds) and retraining once (each standalone seed as the estimate of the mean of the
    others: leave-one-out, so a seed never grades itself; the mean of one seed fewer is noisier
    than the truth, so this reads a little low)."""
    truth = {a: gt["mean"][a] for a in archs}
    seeds = per_seed_truth(gt, archs)
    params = {a: float(gt["params"][a]) for a in archs}
    flops = {"baseline_flops": fidelity_report(costs.flops, truth)} if costs else {}
    retrain = [
        fidelity_report(
            seeds[k],
            {a: statistics.fmean(s[a] for i, s in enumerate(seeds) if i != k) for a in archs},
        )
        for k in range(len(seeds))
    ]
    return {
        "baseline_params": fidelity_report(params, truth),
        "noise_tau": [kendall_tau(a, b) for a, b in itertools.combinations(seeds, 2)],
        "retrain_once": {m: [r[m] for r in retrain] for m in METRICS},
    } | flops


def header(
    gt: dict, archs: list[str], sample: str, budget: tuple[int, int], seeds: list[int]
) -> str:
    """The lines printed before training: the ground truth, its noise, the budget."""
    ref = references(gt, archs)
    noise = ref["noise_tau"]
    drawn = gt.get("n_archs", len(gt["mean"]))
    partial = f" (of {drawn} drawn: the cache is incomplete)" if len(gt["mean"]) < drawn else ""
    return "\n".join(
        [
            f"ground truth: {len(archs)} archs x {len(gt['seeds'])} seeds{partial}, {sample} "
            f"sample {gt['sample']}, recipe {gt['recipe']}, data {gt['data']}, "
            f"macro {gt['macro']}",
            f"ground-truth noise: mean pairwise Kendall tau between single seeds "
            f"{statistics.fmean(noise):.3f} ({', '.join(f'{t:.3f}' for t in noise)})",
            f"budget: {budget[0]} epochs x {budget[1]} steps = {budget[0] * budget[1]} "
            f"optimizer steps per supernet; seeds {seeds}\n",
        ]
    )


def _line(label: str, cells: list[str], wall: str = "-", mb: str = "-") -> str:
    return f"{label:40s} " + " ".join(f"{c:>15s}" for c in cells) + f" {wall:>8s} {mb:>6s}"


def row_reports(runs: list[dict], truth: dict, row: str, score: str) -> dict | None:
    """Metric -> per-seed values (and wall time, MB, sub-supernets) of one row and estimator;
    None when a cached run predates the estimator."""
    mine = [r for r in runs if r["row"] == row]
    if not mine or not all(score in r for r in mine):
        return None
    reports = [fidelity_report(r[score], truth) for r in mine]
    return {m: [rep[m] for rep in reports] for m in METRICS} | {
        "wall_s": statistics.fmean(r["total_s"] for r in mine),
        "param_mb": statistics.fmean(r["param_bytes"] for r in mine) / 1e6,
        "num_supernets": [r["num_supernets"] for r in mine],
    }


def tables(
    gt: dict,
    archs: list[str],
    runs: list[dict],
    rows: list[str],
    book: RowBook,
    estimators: dict,
    costs: Costs | None = None,
) -> dict:
    """Print the main table (one block per estimator, other budgets last) and the secondary
    views; return the summary written to ``bench/results``."""
    truth = {a: gt["mean"][a] for a in archs}
    ref = references(gt, archs, costs)
    for suffix, text in estimators.values():
        print(f"estimator{suffix or ' (main rows)'}: {text}")
    head = _line(
        "estimator", ["kendall tau", "spearman rho", "P@top10%", "top1 regret"], "wall s", "MB"
    )
    print(head + "\n" + "-" * len(head))
    base = ref["baseline_params"]
    print(_line("param count (baseline)", [f"{base[m]:.3f}" for m in METRICS]))
    if "baseline_flops" in ref:
        print(_line("FLOPs (baseline)", [f"{ref['baseline_flops'][m]:.3f}" for m in METRICS]))
    print(_line("retrain once (reference)", [fmt(ref["retrain_once"][m]) for m in METRICS]))
    summary = ref | {"rows": {}}
    budget = f"{book.epochs} epochs x {book.steps_per_epoch} steps"
    equal = [r for r in rows if book.budget_of(r) == budget]
    longer = [r for r in rows if book.budget_of(r) != budget]  # other budgets: apart
    budgets = "; ".join(f"{r}: {book.budget_of(r)}" for r in longer)
    for score, (suffix, _) in estimators.items():
        headed = False
        for row in equal + longer:
            cols = row_reports(runs, truth, row, score)
            if cols is None:
                continue
            if row in longer and not headed:  # once per estimator block, before its first row
                print(f"-- other budgets, a separate comparison ({budgets}) --")
                headed = True
            cells = [fmt(cols[m]) for m in METRICS]
            print(_line(row + suffix, cells, f"{cols['wall_s']:.0f}", f"{cols['param_mb']:.2f}"))
            summary["rows"][row + suffix] = cols
    params = {a: float(gt["params"][a]) for a in archs}
    summary["connected"] = secondary(truth, params, runs, rows, summary["rows"])
    return summary


def secondary(truth: dict, params: dict, runs: list[dict], rows: list[str], out_rows: dict) -> dict:
    """The seed-ensemble tau (val_acc and -train loss estimates) and the tau on connected cells
    (val_acc), printed; the ensemble taus are added to ``out_rows``; returns the
    connected-cells summary."""
    connected = {a: v for a, v in truth.items() if v > CUT_OFF}
    base = kendall_tau({a: params[a] for a in connected}, connected)
    seeds = len({r["seed"] for r in runs})
    print(
        f"\nsecondary views: seed-ensemble = mean estimate of the {seeds} supernet seeds "
        f"({seeds}x the training cost); connected = the {len(connected)} archs whose ground "
        f"truth is above {CUT_OFF:.0f}% (cut-off cells removed), val_acc estimates"
    )
    print(f"{'estimator':28s} {'tau ensemble':>13s} {'(-train loss)':>14s} {'tau connected':>15s}")
    everyone = kendall_tau(params, truth)
    print(f"{'param count (baseline)':28s} {everyone:13.3f} {'':>14s} {base:15.3f}")
    out = {"n": len(connected), "param_count_tau": base, "rows": {}}
    for row in rows:
        mine = [r for r in runs if r["row"] == row]
        if not mine:
            continue
        ens = {k: _ensemble_tau(mine, k, truth) for k in ("val_acc", "neg_train_loss")}
        conn = [kendall_tau({a: r["val_acc"][a] for a in connected}, connected) for r in mine]
        loss = "-" if ens["neg_train_loss"] is None else f"{ens['neg_train_loss']:.3f}"
        print(f"{row:28s} {ens['val_acc']:13.3f} {loss:>14s} {fmt(conn):>15s}")
        if row in out_rows:
            out_rows[row]["ensemble_tau"] = ens["val_acc"]
        if ens["neg_train_loss"] is not None and f"{row} (-train loss)" in out_rows:
            out_rows[f"{row} (-train loss)"]["ensemble_tau"] = ens["neg_train_loss"]
        out["rows"][row] = conn
    return out


def _ensemble_tau(runs: list[dict], score: str, truth: dict) -> float | None:
    """Kendall tau of the mean of ``score`` over ``runs`` (None when a run lacks it)."""
    if not all(score in r for r in runs):
        return None
    return kendall_tau({a: statistics.fmean(r[score][a] for r in runs) for a in truth}, truth)


def write(path: Path, summary: dict) -> None:
    """Write the summary (atomically). A run of some rows updates those rows and keeps the others
    already in the file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        old = json.loads(path.read_text())
        summary["rows"] = old.get("rows", {}) | summary["rows"]
        conn = old.get("connected", {}).get("rows", {}) | summary["connected"]["rows"]
        summary["connected"]["rows"] = conn
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(summary, indent=1))
    os.replace(tmp, path)
    print(f"\nwritten: {path}")
