"""bench/rank_views.py: every view of a perfect estimate, rank errors, and the printed tables."""

from __future__ import annotations

import pytest

from bench.rank_views import main, rank_errors, views
from tests.bench.conftest import write_run


def test_a_perfect_estimate_scores_one_in_every_view_and_has_no_rank_error(fake_uniform):
    _, truth = fake_uniform
    params = {a: float(p) for a, p in truth["params"].items()}
    perfect = views(truth["mean"], truth["mean"], params)
    for name in ("tau", "tau|e30 none", "tau|e30 op", "oracle offset"):
        assert perfect[name] == pytest.approx(1.0)
    assert perfect["rank avg+params"] < 1.0 and perfect["params|e30 op"] < 1.0
    assert all(
        err == pytest.approx(0.0) for err in rank_errors(truth["mean"], truth["mean"]).values()
    )
    reversed_ = {a: -v for a, v in truth["mean"].items()}
    assert views(reversed_, truth["mean"], params)["tau"] == pytest.approx(-1.0)
    errors = rank_errors(reversed_, truth["mean"])
    assert any(e > 0 for e in errors.values()) and any(e < 0 for e in errors.values())


def test_main_prints_views_top_picks_and_counts(fake_uniform, tmp_path, capsys):
    sample, truth = fake_uniform
    for seed in (0, 1, 2):
        write_run(tmp_path, sample, "perfect", seed, truth["mean"])
    args = ["--sample", "uniform", "--runs", str(tmp_path), "--top-picks", "--by-count"]
    assert main(["perfect", *args]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[2].split()[:2] == ["perfect", "1.000"]
    assert "perfect" in out.split("top picks")[1] and "rank 1 (regret 0.00)" in out
    assert "mean rank error by op count" in out
    assert main(["absent", *args]) == 2
