"""Ranking-fidelity metrics between an estimated and a ground-truth score map (higher = better)."""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scipy import stats

Scores = dict[str, float]

_NB201_OP = re.compile(r"([A-Za-z0-9_]+)~\d+")
#: Below this many common archs the metrics are mostly noise (two archs give tau = +-1).
MIN_RELIABLE = 10


def _common(est: Scores, truth: Scores) -> list[str]:
    keys = sorted(set(est) & set(truth))
    if len(keys) < 2:
        raise ValueError(
            f"need at least 2 archs common to both score maps, got {len(keys)} "
            f"(estimate has {len(est)}, truth has {len(truth)}); the arch strings must match"
        )
    return keys


def _ranked(scores: Scores, keys: Sequence[str]) -> list[str]:
    """Keys sorted best-first; ties broken deterministically by (-score, key)."""
    return sorted(keys, key=lambda k: (-scores[k], k))


def _top_k(n: int, fraction: float) -> int:
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    return min(n, max(1, round(fraction * n)))


def kendall_tau(est: Scores, truth: Scores) -> float:
    """Kendall tau-b over the common keys (scipy's default variant, ties handled as tau-b)."""
    keys = _common(est, truth)
    res = stats.kendalltau([est[k] for k in keys], [truth[k] for k in keys])
    return float(res.statistic)


def spearman_rho(est: Scores, truth: Scores) -> float:
    """Spearman rank correlation over the common keys (ties get average ranks)."""
    keys = _common(est, truth)
    res = stats.spearmanr([est[k] for k in keys], [truth[k] for k in keys])
    return float(res.statistic)


def precision_at_top(est: Scores, truth: Scores, fraction: float) -> float:
    """|top-k by est ∩ top-k by truth| / k, with k = max(1, round(fraction * n)). Ties in
    truth are broken by arch string, as in every figure in bench/ (means of a few seeds on a
    finite test split tie often: a tie-aware count would change those figures)."""
    keys = _common(est, truth)
    k = _top_k(len(keys), fraction)
    top_est = set(_ranked(est, keys)[:k])
    top_truth = set(_ranked(truth, keys)[:k])
    return len(top_est & top_truth) / k


def best_rank_at(est: Scores, truth: Scores, fraction: float) -> float:
    """Best ground-truth rank found among the estimator's top-k picks, as a fraction of n.

    Ground-truth ranks are 1-based positions in the truth ordering (best = 1, ties broken by
    (-score, key)). Among the top-k archs by the estimate (k = max(1, round(fraction * n)),
    same tie-breaking), take the smallest ground-truth rank r and return r / n. Lower is
    better: 1/n means the true best arch is inside the estimator's top-k.
    """
    keys = _common(est, truth)
    n = len(keys)
    k = _top_k(n, fraction)
    truth_rank = {a: i + 1 for i, a in enumerate(_ranked(truth, keys))}
    return min(truth_rank[a] for a in _ranked(est, keys)[:k]) / n


def top1_regret(est: Scores, truth: Scores) -> float:
    """Truth of the ground-truth best minus truth of the estimator's top pick (truth units)."""
    keys = _common(est, truth)
    pick = _ranked(est, keys)[0]
    return float(max(truth[k] for k in keys) - truth[pick])


def fidelity_report(est: Scores, truth: Scores) -> dict[str, float]:
    """All fidelity metrics for the common keys of ``est`` and ``truth``."""
    keys = _common(est, truth)
    return {
        "n": float(len(keys)),
        "kendall_tau": kendall_tau(est, truth),
        "spearman_rho": spearman_rho(est, truth),
        "precision_top5": precision_at_top(est, truth, 0.05),
        "precision_top10": precision_at_top(est, truth, 0.10),
        "best_rank_top5": best_rank_at(est, truth, 0.05),
        "best_rank_top10": best_rank_at(est, truth, 0.10),
        "top1_regret": top1_regret(est, truth),
    }


def param_count_score(arch: str) -> float:
    """Parameter-count proxy for an NB201 cell: 9 * #nor_conv_3x3 + #nor_conv_1x1."""
    ops = _NB201_OP.findall(arch)
    if not ops:
        raise ValueError(f"not an NB201 cell string: {arch!r}")
    return float(9 * ops.count("nor_conv_3x3") + ops.count("nor_conv_1x1"))


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _as_map(obj: object) -> Scores | None:
    if isinstance(obj, dict) and obj and all(_is_number(v) for v in obj.values()):
        return {str(k): float(v) for k, v in obj.items()}
    return None


def _from_records(records: list, path: Path, key: str) -> Scores:
    """Records with a string "arch" and a numeric ``key``; records with ``"feasible": false``
    (they broke a search constraint, see results.json) are left out."""
    out: Scores = {}
    for i, rec in enumerate(records):
        arch = rec.get("arch") if isinstance(rec, dict) else None
        if not arch or not isinstance(arch, str):
            raise ValueError(f"{path}: record {i} is not an object with a string 'arch'")
        if rec.get("feasible") is False:
            continue
        if not _is_number(rec.get(key)):
            raise ValueError(f"{path}: record {i} ({arch}) has no finite numeric {key!r}")
        out[arch] = float(rec[key])
    if not out:
        raise ValueError(f"{path}: no records found (infeasible records do not count)")
    return out


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as e:
        raise ValueError(f"{path}: cannot read file ({e.strerror or e})") from e
    except UnicodeDecodeError as e:  # e.g. a checkpoint (supernet.pt) given for a JSON file
        raise ValueError(f"{path}: not a JSON text file (byte {e.start} is not UTF-8)") from e
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: invalid JSON ({e})") from e


def load_scores(path: str | Path, key: str | None = None) -> Scores:
    """Read an arch -> score map from JSON.

    Accepted shapes: a flat ``{arch: number}`` map; an object whose ``"mean"`` key holds such a
    map (ground-truth cache files); a list of records with ``"arch"`` and a numeric ``key`` field
    (``val_acc`` by default), either bare or wrapped as ``{"records": [...]}`` (results.json
    files); or the verify stage's store (``verify/standalone.json``: ``{"results": {arch:
    result}}``, always read at ``standalone_acc``, its measured accuracy). Records with a
    ``"feasible": false`` field are left out: only archs that met the constraints count.
    """
    path = Path(path)
    data = _read(path)
    if isinstance(data, dict) and isinstance(data.get("results"), dict):  # verify/standalone.json
        return _from_records(list(data["results"].values()), path, "standalone_acc")
    if isinstance(data, dict) and isinstance(data.get("records"), list):
        return _from_records(data["records"], path, key or "val_acc")
    if isinstance(data, list):
        return _from_records(data, path, key or "val_acc")
    if isinstance(data, dict) and isinstance(data.get("mean"), dict):
        mean = _as_map(data["mean"])
        if mean is None:
            raise ValueError(f"{path}: 'mean' must be a non-empty map arch -> finite number")
        return mean
    flat = _as_map(data)
    if flat is None:
        raise ValueError(
            f"{path}: expected a JSON map arch -> number, an object with a 'mean' map, "
            f"or a list of records with 'arch' and numeric {key or 'val_acc'!r} (bare or under "
            f"'records')"
        )
    return flat


def score_note(path: str | Path) -> str | None:
    """For records read at the default ``val_acc``: a line saying that they also hold ``score``,
    the value a search ranks by, and how to compare that instead."""
    data = _read(Path(path))
    records = data.get("records") if isinstance(data, dict) else data
    if not isinstance(records, list) or not records:
        return None
    if not all(isinstance(r, dict) and "score" in r for r in records):
        return None
    return (
        f"note: {path}: reading val_acc; its records also hold score, the estimator's value the "
        f"search ranked by (pass --key score to compare that)"
    )


#: Report key -> row label of the text table (with the unit of the value).
LABELS = {
    "n": "n (archs in both files)",
    "kendall_tau": "Kendall tau-b",
    "spearman_rho": "Spearman rho",
    "precision_top5": "precision@top-5%",
    "precision_top10": "precision@top-10%",
    "best_rank_top5": "best-rank@top-5% (fraction of n)",
    "best_rank_top10": "best-rank@top-10% (fraction of n)",
    "top1_regret": "top-1 regret (truth units)",
}


def small_sample_warning(n: int, est_path: str, truth_path: str) -> str | None:
    """A one-line warning when only ``n`` < ``MIN_RELIABLE`` archs are common to both files: with
    so few pairs a perfect tau or precision is likely chance, and the report alone does not
    say so."""
    if n >= MIN_RELIABLE:
        return None
    return (
        f"warning: only {n} archs are common to {est_path} and {truth_path}: with fewer than "
        f"{MIN_RELIABLE} the metrics are mostly chance (2 archs always give tau = +-1); "
        f"compare files that share more archs"
    )


def format_report(report: dict[str, float]) -> str:
    """Aligned two-column text table of a fidelity report, rows labelled with their units."""
    labels = {name: LABELS.get(name, name) for name in report}
    width = max(len(label) for label in labels.values())
    lines = []
    for name, value in report.items():
        if name == "n":
            text = str(int(value))
        else:
            text = f"{value:.3e}" if 0 < abs(value) < 1e-3 else f"{value:.4f}"
        lines.append(f"{labels[name]:<{width}}  {text:>10}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m search.fidelity",
        description="Ranking fidelity of estimated arch scores against ground truth (higher "
        "scores are better). Only archs present in both files count; in a results.json, records "
        'with "feasible": false (they broke a search constraint) are left out.',
    )
    parser.add_argument("estimates", help="JSON file of estimated scores")
    parser.add_argument("ground_truth", help="JSON file of ground-truth scores")
    parser.add_argument(
        "--key",
        default=None,
        help="score field in record lists (default: val_acc); a verify store is always read at "
        "standalone_acc",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    try:
        est = load_scores(args.estimates, key=args.key)
        truth = load_scores(args.ground_truth, key=args.key)
        report = fidelity_report(est, truth)
        notes = [] if args.key else [score_note(p) for p in (args.estimates, args.ground_truth)]
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for note in filter(None, notes):
        print(note, file=sys.stderr)
    if warning := small_sample_warning(int(report["n"]), args.estimates, args.ground_truth):
        print(warning, file=sys.stderr)
    if args.json:
        print(json.dumps({**report, "n": int(report["n"])}, indent=2))
    else:
        print(format_report(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
