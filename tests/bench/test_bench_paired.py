"""bench/paired.py on cached runs written here: the truth itself scores tau 1 on every seed."""

from __future__ import annotations

import json

from bench.ground_truth import CACHE
from bench.paired import main
from search.fidelity import kendall_tau


def test_paired_prints_each_seed_and_the_difference(tmp_path, capsys):
    gt = json.loads(CACHE.read_text())
    params = {a: float(gt["params"][a]) for a in gt["mean"]}
    for row, scores in (("counted", params), ("perfect", gt["mean"])):
        for seed in (0, 1):
            out = tmp_path / row / f"seed{seed}"
            out.mkdir(parents=True)
            (out / "estimates.json").write_text(json.dumps({"neg_train_loss": scores}))
    assert main(["counted", "perfect", "--seeds", "0", "1", "--runs", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    base = kendall_tau(params, gt["mean"])
    for line in lines[2:4]:
        seed, first, second, delta = line.split()
        assert (float(first), float(second)) == (round(base, 3), 1.0)
        assert float(delta) == round(1.0 - base, 3)
    assert "the second row is higher on 2 of 2 seeds" in lines[4]
    for line in lines[6:8]:  # the perfect row finds the whole top 10% and the best cell
        seed, p_first, p_second, r_first, r_second = line.split()
        assert (float(p_second), float(r_second)) == (1.0, 0.0)
    boot = ["--runs", str(tmp_path), "--seeds", "0", "--bootstrap", "20"]
    assert main(["counted", "perfect", *boot]) == 0
    lo, hi = capsys.readouterr().out.split("percentile ")[1].split(";")[0].split(" .. ")
    assert 0 < float(lo) <= 1.0 - base <= float(hi) < 1  # every resample: perfect beats counted
    assert main(["counted", "absent", "--runs", str(tmp_path)]) == 2
    assert "no cached run" in capsys.readouterr().err
