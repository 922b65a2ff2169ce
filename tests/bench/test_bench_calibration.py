"""bench/calibration.py on a made-up ground truth: held-out tau of raw, params and calibrated."""

from __future__ import annotations

import pytest

from bench import calibration
from tests.bench.conftest import write_run


def test_prints_a_row_per_size_with_every_ranking(fake_uniform, tmp_path, capsys):
    sample, truth = fake_uniform
    estimate = {a: -2.0 + m / 100 for a, m in truth["mean"].items()}  # a perfect estimate
    write_run(tmp_path, sample, "row", 0, estimate)
    args = ["--sample", "uniform", "--row", "row", "--seeds", "0", "--sizes", "10", "20"]
    args += ["--estimator", "neg_train_loss"]
    assert calibration.main([*args, "--draws", "3", "--runs", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("uniform sample: 40 archs with ground truth")
    assert "calibrated (none)" in lines[1] and "calibrated (decisions)" in lines[1]
    rows = [ln.split() for ln in lines[2:]]
    assert [r[0] for r in rows] == ["10", "20"]
    for r in rows:
        assert float(r[1]) == pytest.approx(1.0)  # the raw estimate is the truth itself
        assert all(-1.0 <= float(v) <= 1.0 for v in r[2:6])


def test_no_runs_is_one_clear_error(fake_uniform, tmp_path):
    with pytest.raises(SystemExit):
        calibration.main(["--sample", "uniform", "--row", "absent", "--runs", str(tmp_path)])


def test_the_default_estimate_is_the_fusion_derived_from_the_run(fake_uniform, tmp_path, capsys):
    sample, truth = fake_uniform
    estimate = {a: -2.0 + m / 100 for a, m in truth["mean"].items()}
    args = ["--sample", "uniform", "--row", "row", "--seeds", "0", "--sizes", "10", "--draws", "2"]
    write_run(tmp_path, sample, "row", 0, estimate)  # no neg_val_loss: no val_loss+synflow
    with pytest.raises(SystemExit):
        calibration.main([*args, "--runs", str(tmp_path)])
    assert "has no 'val_loss+synflow' estimate" in capsys.readouterr().err
    flow = {a: float(truth["params"][a]) ** 2 for a in estimate}  # a made-up synflow
    write_run(tmp_path, sample, "row", 0, estimate, neg_val_loss=estimate, synflow=flow)
    assert calibration.main([*args, "--runs", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "estimator val_loss+synflow" in out.splitlines()[0]
    raw = float(out.splitlines()[2].split()[1])
    assert -1.0 <= raw < 1.0  # the fusion adds the synflow score: no longer the truth itself
