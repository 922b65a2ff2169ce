"""bench/edge_effects.py: the fit recovers made-up edge effects; cached runs are read per sample."""

from __future__ import annotations

import numpy as np
import pytest

from bench.edge_effects import edge_effects, load_row, main
from bench.sample import uniform_sample
from supernet.spaces import build_space
from tests.bench.conftest import write_run


def test_the_fit_recovers_additive_edge_effects():
    space = build_space("nb201")
    archs = [str(a) for a in uniform_sample(space, n=120, seed=3)]
    effect = {"nor_conv_3x3": 2.0, "nor_conv_1x1": 1.0, "skip_connect": -0.5, "avg_pool_3x3": 0.25}
    scale = {e: 1.0 + i for i, e in enumerate(space.choices())}  # each edge weighs differently
    scores = {
        a: 90.0 + sum(scale[e] * effect.get(op, 0.0) for e, op in space.parse(a).items())
        for a in archs
    }
    edges, ops, coef = edge_effects(scores, archs)
    expected = np.array([[scale[e] * effect[o] for o in ops] for e in edges])
    assert "none" not in ops and len(edges) == 6
    np.testing.assert_allclose(coef, expected, atol=1e-8)


def test_load_row_reads_the_sample_s_estimates_and_names_what_is_missing(fake_uniform, tmp_path):
    sample, truth = fake_uniform
    write_run(tmp_path, sample, "row", 0, truth["mean"])
    assert load_row(tmp_path, "row", "val_acc", (0,), "uniform") == [truth["mean"]]
    with pytest.raises(LookupError, match="--sample stratified --rows row"):
        load_row(tmp_path, "row", "val_acc", (0,), "stratified")  # only the uniform one exists
    with pytest.raises(LookupError, match="no 'neg_val_loss' in .* it has: neg_train_loss"):
        load_row(tmp_path, "row", "neg_val_loss", (0,), "uniform")


def test_main_prints_the_ground_truth_and_the_row_tables(fake_uniform, tmp_path, capsys):
    sample, truth = fake_uniform
    for seed in (0, 1, 2):
        write_run(tmp_path, sample, "perfect", seed, truth["mean"])
    assert main(["perfect", "--sample", "uniform", "--runs", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("38 connected cells")
    truth_table, row_table = out.split("\n\n")[1:3]
    assert truth_table.splitlines()[2:] == row_table.splitlines()[2:]  # the row is the truth
    assert main(["absent", "--sample", "uniform", "--runs", str(tmp_path)]) == 2
