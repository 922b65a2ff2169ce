"""What the verify stage tells the user: agreement figures, the printed block, TensorBoard.

Tables of arch strings and numbers only. Rank agreement uses ``search.fidelity``'s metrics;
bootstrap intervals resample the verified archs (paired) with ``scipy.stats.bootstrap``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

from search.fidelity import kendall_tau, spearman_rho
from search.tables import format_table

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

Row = dict[str, Any]
CONFIDENCE = 0.95
ROUGH_BELOW = 10  # verified archs below which the printed intervals get a caution


def _interval(est: list[float], truth: list[float], metric: str, resamples: int, seed: int):
    """(low, high) percentile interval of ``metric`` over paired bootstrap resamples of the archs
    (resamples where the metric is undefined, e.g. one distinct arch, are left out), and how many
    resamples counted. None when fewer than 3 archs."""
    if len(est) < 3:
        return None, 0
    fn = {"kendall_tau": stats.kendalltau, "spearman_rho": stats.spearmanr}[metric]

    def statistic(x: np.ndarray, y: np.ndarray) -> float:
        return float(fn(x, y).statistic)

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        res = stats.bootstrap(
            (np.asarray(est), np.asarray(truth)),
            statistic,
            paired=True,
            vectorized=False,
            n_resamples=resamples,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    dist = res.bootstrap_distribution[np.isfinite(res.bootstrap_distribution)]
    if not len(dist):
        return None, 0
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = np.percentile(dist, [tail, 100 - tail])
    return [float(low), float(high)], int(len(dist))


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None  # strict JSON has no NaN


def _agreement(scores: Mapping[str, float], truth: Mapping[str, float], resamples: int, seed: int):
    keys = sorted(truth)
    est, tru = [scores[k] for k in keys], [truth[k] for k in keys]
    out: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a constant input gives NaN (reported as null)
        for name, fn in (("kendall_tau", kendall_tau), ("spearman_rho", spearman_rho)):
            out[name] = _finite(fn(scores, truth))
            out[f"{name}_interval"], out[f"{name}_resamples"] = _interval(
                est, tru, name, resamples, seed
            )
    return out


def agreement_report(
    rows: Sequence[Row],
    key: str,
    descending: bool,
    resamples: int,
    seed: int,
    val_images: int | None = None,
) -> dict[str, Any]:
    """Agreement of the supernet's estimate (``key``) and of the parameter count with standalone
    accuracy over ``rows`` (the verified archs: arch, key, params, standalone_acc, rank), where
    the supernet's pick (leaderboard rank 1) lands and its regret, and the best verified arch.
    ``val_images``: the size of the split the accuracies were measured on (what a tie is)."""
    truth = {r["arch"]: float(r["standalone_acc"]) for r in rows}
    sign = 1.0 if descending else -1.0
    est = {r["arch"]: sign * float(r[key]) for r in rows}
    params = {r["arch"]: float(r["params"]) for r in rows}
    # equal standalone accuracies: the better leaderboard rank first (the supernet's pick wins)
    order = sorted(rows, key=lambda r: (-r["standalone_acc"], r["rank"], r["arch"]))
    pick = min(rows, key=lambda r: r["rank"])
    best = order[0]
    return {
        "n": len(rows),
        "estimate_key": key,
        "supernet": _agreement(est, truth, resamples, seed) if len(rows) > 1 else None,
        "params": _agreement(params, truth, resamples, seed) if len(rows) > 1 else None,
        "supernet_pick": {
            "arch": pick["arch"],
            "leaderboard_rank": pick["rank"],
            "standalone_acc": pick["standalone_acc"],
            # ties share the better rank: an arch is not beaten by an equal accuracy
            "standalone_rank": 1 + sum(r["standalone_acc"] > pick["standalone_acc"] for r in rows),
            "regret_points": float(best["standalone_acc"] - pick["standalone_acc"]),
        },
        "best": {k: best[k] for k in ("arch", "rank", "standalone_acc", key, "params", "role")},
        "bootstrap": {"resamples": resamples, "confidence": CONFIDENCE, "seed": seed},
        "val_images": val_images,
    }


def _figure(fig: dict[str, Any] | None) -> str:
    if fig is None:
        return "      -"
    value = "   n/a" if fig["value"] is None else f"{fig['value']:6.2f}"
    iv = fig["interval"]
    return value + ("" if iv is None else f"  [{iv[0]:5.2f}, {iv[1]:5.2f}]")


def format_block(report: Mapping[str, Any], rows: Sequence[Row], header: str) -> str:
    """The printed verify block: header, agreement table, the pick, the best, verified archs."""
    lines = [header, ""]
    pct = int(round(report["bootstrap"]["confidence"] * 100))
    lines.append(f"{'':<28}{'Kendall tau  ' + str(pct) + '% interval':<32}Spearman rho  interval")
    for label, part in ((f"supernet ({report['estimate_key']})", "supernet"), ("params", "params")):
        fig = report[part]
        tau = rho = None
        if fig is not None:
            tau = {"value": fig["kendall_tau"], "interval": fig["kendall_tau_interval"]}
            rho = {"value": fig["spearman_rho"], "interval": fig["spearman_rho_interval"]}
        name = "parameter count" if part == "params" else label
        lines.append(f"{name:<28}{_figure(tau):<32}{_figure(rho)}")
    pick, best, n = report["supernet_pick"], report["best"], report["n"]
    if n < ROUGH_BELOW:
        lines.append(
            f"({n} archs: a bootstrap over so few gives rough intervals, often narrower than the "
            f"truth; raise verify.control to about 20 for a measurement)"
        )
    lines += [
        "",
        f"the supernet's pick ranks {pick['standalone_rank']} of {n} by standalone accuracy "
        f"({pick['standalone_acc']:.2f}%), regret {pick['regret_points']:.2f} points",
        f"best verified: {best['arch']} standalone {best['standalone_acc']:.2f}% (leaderboard "
        f"rank {best['rank']}, {best['role']})",
        *_tie_note(report),
        "",
        format_table(
            sorted(rows, key=lambda r: r["rank"]),
            k=len(rows),
            columns=["rank", report["estimate_key"], "standalone_acc", "params", "role", "arch"],
        ),
    ]
    return "\n".join(lines)


def noise_points(acc: float, n_images: int) -> float:
    """About one standard error, in points, of the difference of two accuracies near ``acc`` (%)
    each measured on ``n_images`` images: 100 * sqrt(2 p (1 - p) / n)."""
    n = max(n_images, 1)
    p = min(max(acc / 100.0, 1.0 / n), 1.0 - 1.0 / n)
    return 100.0 * math.sqrt(2.0 * p * (1.0 - p) / n)


def _tie_note(report: Mapping[str, Any]) -> list[str]:
    """A line when the best verified arch leads the supernet's pick by no more than the noise of
    the validation split (``report["val_images"]``): the two are as good as tied."""
    pick, best, n = report["supernet_pick"], report["best"], report.get("val_images")
    if not n or best["arch"] == pick["arch"]:
        return []
    lead, noise = pick["regret_points"], noise_points(pick["standalone_acc"], n)
    if lead > noise:
        return []
    return [
        f"its lead over the supernet's pick, {lead:.2f} points, is within about one standard "
        f"error of a difference of two accuracies on {n} validation images ({noise:.2f} points): "
        f"the two are as good as tied"
    ]


def log_verify_to_tensorboard(
    writer: SummaryWriter, rows: Sequence[Row], report: Mapping[str, Any]
) -> None:
    """A scatter of the supernet's estimate against standalone accuracy (tau in the title). The
    standalone accuracy also joins each verified arch's HParams session as a metric
    (``search.tensorboard_live.LiveSearchLog.add_standalone``)."""
    key = report["estimate_key"]
    tau = (report["supernet"] or {}).get("kendall_tau")
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        writer.add_text("verify", "matplotlib is not installed: verify scatter skipped.")
    else:
        fig = Figure(figsize=(5, 4), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for role, colour in (("top", "red"), ("control", "grey")):
            mine = [r for r in rows if r["role"] == role]
            ax.scatter(
                [r[key] for r in mine],
                [r["standalone_acc"] for r in mine],
                c=colour,
                s=16,
                label=role,
            )
        title = "n/a" if tau is None else f"{tau:.2f}"
        ax.set(
            xlabel=f"supernet estimate ({key})",
            ylabel="standalone val accuracy (%)",
            title=f"verify: Kendall tau {title} (n={len(rows)})",
        )
        ax.legend()
        fig.tight_layout()
        writer.add_figure("verify/estimate_vs_standalone", fig)
    writer.flush()
