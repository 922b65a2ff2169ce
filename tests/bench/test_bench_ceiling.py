"""bench/ceiling.py: the oracle's posterior draws on made-up seeds, and a run on the real cache."""

from __future__ import annotations

import numpy as np
import pytest

from bench.ceiling import main, noise_variances, oracle_draws


def test_without_seed_noise_the_oracle_is_the_ground_truth():
    means = np.linspace(90.0, 97.0, 40)
    per_seed = np.repeat(means[:, None], 3, axis=1)
    draws, _ = oracle_draws(per_seed, 5, seed=0)
    np.testing.assert_allclose(draws, np.tile(means, (5, 1)))


def test_noise_is_measured_by_level_and_shrinks_the_draws():
    rng = np.random.default_rng(0)
    means = np.linspace(90.0, 97.0, 500)
    sd = np.where(means > 95.0, 0.2, 1.0)  # the better cells are the quieter ones
    per_seed = means[:, None] + rng.normal(0.0, 1.0, (500, 3)) * sd[:, None]
    variances, fifths = noise_variances(per_seed, pooled=False)
    assert fifths[0] == pytest.approx(1.0, rel=0.2) and fifths[-1] < 0.2 * fifths[0]
    assert variances[np.argmax(per_seed.mean(1))] == fifths[-1]
    draws, text = oracle_draws(per_seed, 200, seed=0)
    assert "by fifth" in text
    observed = per_seed.mean(1)
    # the posterior pulls the noisy cells towards the middle, and it centres on the truth
    assert np.abs(draws.mean(0) - means).mean() < np.abs(observed - means).mean()


def test_main_prints_each_metric_for_both_noise_models(capsys):
    main(["--draws", "3"])
    out = capsys.readouterr().out
    assert out.count("precision_top10") == 2 and out.count("top1_regret") == 2
    assert "noise by level" in out and "noise pooled" in out
    with pytest.raises(SystemExit):
        main(["--draws", "0"])


def test_main_reads_the_uniform_sample_with_its_own_targets(fake_uniform, capsys):
    main(["--sample", "uniform", "--draws", "3"])
    out = capsys.readouterr().out
    assert out.startswith("uniform sample, 40 cells x 5 seeds")
    assert ">= param count + 0.15 (param count" in out and "<= param count (param count" in out
    assert "38 connected" in out  # the two cut-off cells are left out of the noise model
