"""The fidelity benchmark's printed tables and summary file, from cached runs and a ground truth.

Pure functions of the runs' estimates (arch -> score maps) and the ground-truth payload of
``bench/ground_truth.py``; ``bench/fidelity.py`` trains and scores, this module reports.
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
from pathlib import Path

from bench.ground_truth import CUT_OFF
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


def references(gt: dict, archs: list[str]) -> dict:
    """What the supernet rows are read against: the parameter count's report, the ground truth's
    single-seed noise (pairwise tau between seeds) and retraining once (each standalone seed as
    the estimate of the mean of the others: leave-one-out, so a seed never grades itself; the
    mean of one seed fewer is noisier than the truth, so this reads a little low)."""
    truth = {a: gt["mean"][a] for a in archs}
    seeds = per_seed_truth(gt, archs)
    params = {a: float(gt["params"][a]) for a in archs}
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
    }


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
    return f"{label:28s} " + " ".join(f"{c:>15s}" for c in cells) + f" {wall:>8s} {mb:>6s}"


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
    gt: dict, archs: list[str], runs: list[dict], rows: list[str], book: RowBook, estimators: dict
) -> dict:
    """Print the main table (one block per estimator, longer budgets last) and the secondary
    views; return the summary written to ``bench/results``."""
    truth = {a: gt["mean"][a] for a in archs}
    ref = references(gt, archs)
    for suffix, text in estimators.values():
        print(f"estimator{suffix or ' (main rows)'}: {text}")
    head = _line(
        "estimator", ["kendall tau", "spearman rho", "P@top10%", "top1 regret"], "wall s", "MB"
    )
    print(head + "\n" + "-" * len(head))
    base = ref["baseline_params"]
    print(_line("param count (baseline)", [f"{base[m]:.3f}" for m in METRICS]))
    print(_line("retrain once (reference)", [fmt(ref["retrain_once"][m]) for m in METRICS]))
    summary = ref | {"rows": {}}
    equal = [r for r in rows if book.epochs_of(r) == book.epochs]
    longer = [r for r in rows if book.epochs_of(r) != book.epochs]  # a separate comparison
    for score, (suffix, _) in estimators.items():
        for row in equal + longer:
            if longer and row == longer[0]:
                steps = f"{book.epochs_of(row)} epochs x {book.steps_per_epoch} steps"
                print(f"-- longer budgets ({steps}) --")
            cols = row_reports(runs, truth, row, score)
            if cols is None:
                continue
            cells = [fmt(cols[m]) for m in METRICS]
            print(_line(row + suffix, cells, f"{cols['wall_s']:.0f}", f"{cols['param_mb']:.2f}"))
            summary["rows"][row + suffix] = cols
    params = {a: float(gt["params"][a]) for a in archs}
    summary["connected"] = secondary(truth, params, runs, rows, summary["rows"])
    return summary


def secondary(truth: dict, params: dict, runs: list[dict], rows: list[str], out_rows: dict) -> dict:
    """The seed-ensemble tau and the tau on connected cells (val_acc estimates), printed; the
    ensemble tau is added to ``out_rows``; returns the connected-cells summary."""
    connected = {a: v for a, v in truth.items() if v > CUT_OFF}
    base = kendall_tau({a: params[a] for a in connected}, connected)
    seeds = len({r["seed"] for r in runs})
    print(
        f"\nsecondary views (val_acc estimates): seed-ensemble = mean estimate of the {seeds} "
        f"supernet seeds ({seeds}x the training cost); connected = the {len(connected)} archs "
        f"whose ground truth is above {CUT_OFF:.0f}% (cut-off cells removed)"
    )
    print(f"{'estimator':28s} {'tau seed-ensemble':>18s} {'tau connected':>15s}")
    print(f"{'param count (baseline)':28s} {kendall_tau(params, truth):18.3f} {base:15.3f}")
    out = {"n": len(connected), "param_count_tau": base, "rows": {}}
    for row in rows:
        mine = [r for r in runs if r["row"] == row]
        if not mine:
            continue
        ensemble = {a: statistics.fmean(r["val_acc"][a] for r in mine) for a in truth}
        ens_tau = kendall_tau(ensemble, truth)
        conn = [kendall_tau({a: r["val_acc"][a] for a in connected}, connected) for r in mine]
        print(f"{row:28s} {ens_tau:18.3f} {fmt(conn):>15s}")
        if row in out_rows:
            out_rows[row]["ensemble_tau"] = ens_tau
        out["rows"][row] = conn
    return out


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
