"""search/calibrate.py: the rank regression behind the calibrated ranking."""

from __future__ import annotations

import numpy as np
import pytest

from search.calibrate import (
    Design,
    calibrate_ranking,
    fit,
    format_calibration,
    leave_one_out,
    percentiles,
)
from search.fidelity import kendall_tau
from supernet.spaces import build_space


def test_percentiles_share_ties_and_stay_inside_0_1():
    p = percentiles([3.0, 1.0, 3.0, 2.0])
    assert p.tolist() == pytest.approx([3.5 / 5, 1 / 5, 3.5 / 5, 2 / 5])


def _world(n: int = 60, seed: int = 0):
    """Archs whose accuracy is a known function of params and an op count, an estimate that is
    that accuracy plus noise, and two dead cells at chance accuracy with a very low estimate."""
    space = build_space("nb201")
    rng = np.random.default_rng(seed)
    from bench.sample import uniform_sample

    archs = [str(a) for a in uniform_sample(space, n=n, seed=seed)]
    records, acc = [], {}
    for i, a in enumerate(archs):
        convs = sum(c == "nor_conv_3x3" for c in space.parse(a).values())
        params = 10_000 + 5_000 * convs + int(rng.integers(0, 3_000))
        acc[a] = 90 + 1.5 * convs + rng.normal(0, 0.3) if i >= 2 else 10.0
        est = -2.3 if i < 2 else -1.0 + 0.05 * convs + rng.normal(0, 0.15)
        records.append({"arch": a, "score": est, "params": params, "rank": i + 1})
    return space, records, acc


def test_dead_cells_do_not_decide_the_fit():
    """Two chance-level cells among the labels: a fit on raw accuracies would be ruled by them;
    on ranks the calibrated order of the others still follows the truth."""
    space, records, acc = _world()
    design = Design("score", True, space.choices(), "counts")
    x = design.rows(records, [dict(space.parse(r["arch"])) for r in records])
    verified = list(range(0, 60, 2))  # includes both dead cells
    model = fit(x[verified], [acc[records[i]["arch"]] for i in verified])
    rest = [i for i in range(60) if i not in verified]
    predicted = dict(zip([records[i]["arch"] for i in rest], model.predict(x[rest]).tolist()))
    truth = {records[i]["arch"]: acc[records[i]["arch"]] for i in rest}
    raw = {records[i]["arch"]: records[i]["score"] for i in rest}
    assert kendall_tau(predicted, truth) > kendall_tau(raw, truth) + 0.1
    assert model.accuracy(x[rest]).min() >= 10.0 and model.accuracy(x[rest]).max() <= 100.0


def test_leave_one_out_never_sees_the_row_it_predicts():
    x = np.arange(10, dtype=float).reshape(5, 2)
    y = [1.0, 2.0, 3.0, 4.0, 100.0]
    loo = leave_one_out(x, y)
    for i in range(5):
        keep = [j for j in range(5) if j != i]
        assert loo[i] == pytest.approx(fit(x[keep], [y[j] for j in keep]).predict(x[i : i + 1])[0])


def test_calibrate_ranking_fills_every_row_or_says_why_not():
    space, records, acc = _world()
    decisions = [dict(space.parse(r["arch"])) for r in records]
    verified = [{"arch": r["arch"], "standalone_acc": acc[r["arch"]]} for r in records[:25]]
    design = Design("score", True, space.choices())
    few = calibrate_ranking(records, verified[:5], design, decisions, minimum=20)
    assert few == {"n": 5, "minimum": 20, "features": "none", "fitted": False}
    assert "calibrated_acc" not in records[0]
    assert "needs at least 20" in format_calibration(few, records, "score", 10)
    report = calibrate_ranking(records, verified, design, decisions, minimum=20)
    assert report["fitted"] and report["n"] == 25
    assert all(np.isfinite(r["calibrated_acc"]) for r in records)
    assert set(report["leave_one_out_kendall_tau"]) == {"calibrated", "supernet"}
    text = format_calibration(report, records, "score", 10, verified)
    assert "fitted on 25 verified archs" in text and "calibrated_acc" in text
    assert "parameter count, fitted" in text  # no feature words for features=none
    shown = {line.split()[-1]: line.split()[3] for line in text.splitlines()[3:]}
    for v in verified:  # verified archs among the top show their standalone accuracy
        if v["arch"] in shown:
            assert shown[v["arch"]] == f"{v['standalone_acc']:.2f}"
    flat = [{"arch": v["arch"], "standalone_acc": 10.0} for v in verified]
    same = calibrate_ranking(records, flat, design, decisions, minimum=20)
    assert not same["fitted"] and "fewer than 3 distinct values" in same["why"]


def test_unknown_features_are_refused():
    with pytest.raises(ValueError, match="allowed: none, counts, decisions"):
        Design("score", True, {"a": ["x"]}, "onehot")
