"""bench/fidelity.py, bench/rows.py and bench/fidelity_tables.py: the rows file, a tiny real
train-and-score job with its cache, and the report on runs the test writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import fidelity, fidelity_tables
from bench.ground_truth import SAMPLES
from bench.rows import load_rows
from bench.sample import uniform_sample
from search.fidelity import kendall_tau
from supernet.spaces import build_space
from tests.bench.conftest import write_run
from tests.conftest import TINY_TRAIN

RESULTS = Path(fidelity.__file__).with_name("results") / "fidelity.json"


def test_every_row_with_committed_results_is_still_a_row():
    """Cached runs and bench/results are keyed by row name: renaming a row orphans them."""
    book = load_rows()
    labels = json.loads(RESULTS.read_text())["rows"]
    suffixes = [s for s, _ in (fidelity.ESTIMATORS | fidelity.DERIVED).values() if s]
    names = {next((k[: -len(s)] for s in suffixes if k.endswith(s)), k) for k in labels}
    assert names <= set(book.rows)
    assert all(row.why for row in book.rows.values())


def test_rows_extend_their_parent_and_may_replace_a_base_key():
    book = load_rows()
    assert book.rows["fewshot-cost_binned-balanced-lr0.02-ema0.998-shift2"].overrides == (
        "sharing=fewshot",
        "sharing.split_epoch=15",
        "sharing.train_all_leaves=true",
        "sampler=cost_binned",
        "trainer.optimizer.lr=0.02",
        "trainer.ema_decay=0.998",
        "trainer.augment.crop_pad=2",
    )
    assert book.base()[:2] == ["data=mnist5k", "data.pool=2"]
    assert "trainer.epochs=30" in book.base() and book.epochs_of("full-uniform") == 30
    longer = book.overrides("full-uniform-x3")
    assert [o for o in longer if o.startswith("trainer.epochs=")] == ["trainer.epochs=90"]
    assert book.epochs_of("full-uniform-x3") == 90
    assert book.budget_of("full-uniform") == "30 epochs x 45 steps"
    assert book.budget_of("full-uniform-x3") == "90 epochs x 45 steps"
    assert book.budget_of("recipe-default-user") == "15 epochs x every batch"


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("a: {why: x, overrides: [k=v], colour: red}", "unknown key 'colour'; allowed: why"),
        ("a: {overrides: [k=v]}", "row 'a' needs a short reason"),
        ("a: {why: x, overrides: [sharing]}", "overrides must be a list of key=value"),
        ("a: {why: x, extends: b, overrides: []}", "extends 'b', which is not a row above it"),
        ("a: {why: x, overrides: []}\n  a: {why: y, overrides: []}", "'a' is given twice"),
    ],
)
def test_a_bad_rows_file_fails_in_one_line(tmp_path, rows, message):
    path = tmp_path / "rows.yaml"
    path.write_text(f"budget: {{epochs: 2, steps_per_epoch: 3}}\nrows:\n  {rows}\n")
    with pytest.raises(ValueError, match=message) as err:
        load_rows(path)
    assert "\n" not in str(err.value)


def _no_training(*args):
    raise AssertionError("trained again")


def test_a_job_trains_once_and_scores_each_sample_from_the_saved_supernet(tmp_path, monkeypatch):
    space = build_space("nb201")
    archs = tuple(str(a) for a in uniform_sample(space, n=6, seed=0))
    overrides = (*TINY_TRAIN, "seed=0")
    job = fidelity.Job("tiny", overrides, 0, archs[:3], tmp_path, "estimates.json")
    first = fidelity.run_job(job)
    assert first["overrides"] == list(overrides) and sorted(first["val_acc"]) == sorted(archs[:3])
    assert set(fidelity.ESTIMATORS) <= set(first)
    assert all(v <= 0 for v in first["neg_train_loss"].values())
    assert (tmp_path / "supernet.pt").exists()

    monkeypatch.setattr(fidelity, "_train", _no_training)
    assert fidelity.run_job(job) == first  # the cache answers
    other = fidelity.Job("tiny", overrides, 0, archs[3:], tmp_path, "estimates_uniform.json")
    second = fidelity.run_job(other)  # another sample: scored from the saved supernet
    assert sorted(second["val_acc"]) == sorted(archs[3:]) and second["train_s"] == first["train_s"]
    assert fidelity.trained_before(tmp_path, [*overrides[:-1], "seed=1"]) is None
    # a run killed while scoring left no estimates file: trained.json still says it trained
    for path in tmp_path.glob("estimates*.json"):
        path.unlink()
    assert fidelity.trained_before(tmp_path, list(overrides)) == first["train_s"]


def test_main_reports_cached_runs_on_the_uniform_sample(
    fake_uniform, tmp_path, capsys, monkeypatch
):
    sample, truth = fake_uniform
    monkeypatch.setattr(fidelity, "_train", _no_training)
    rows = tmp_path / "rows.yaml"
    rows.write_text(
        "budget: {epochs: 2, steps_per_epoch: 3}\n"
        "rows:\n"
        "  perfect: {why: knows the truth, overrides: [sharing=full]}\n"
        "  counted: {why: counts parameters, extends: perfect, overrides: [sampler=uniform]}\n"
    )
    book = load_rows(rows)
    params = {a: float(p) for a, p in truth["params"].items()}
    runs = tmp_path / "runs"
    for row, scores in (("perfect", truth["mean"]), ("counted", params)):
        for seed in (0, 1):
            write_run(
                runs,
                sample,
                row,
                seed,
                scores,
                overrides=[*book.overrides(row), f"seed={seed}"],
                total_s=1.0,
                param_bytes=4e5,
                num_supernets=1,
            )
    args = ["--sample", "uniform", "--rows-file", str(rows), "--seeds", "0", "1", "--jobs", "1"]
    assert fidelity.main([*args, "--out", str(runs), "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "ground truth: 40 archs x 5 seeds" in out and "6 optimizer steps" in out
    perfect = next(line for line in out.splitlines() if line.startswith("perfect "))
    assert perfect.split()[1:4] == ["1.000", "+-", "0.000"]
    summary = json.loads((tmp_path / "fidelity_uniform.json").read_text())
    base = kendall_tau(params, truth["mean"])
    assert summary["baseline_params"]["kendall_tau"] == pytest.approx(base)
    assert summary["rows"]["counted (-train loss)"]["kendall_tau"] == pytest.approx([base, base])
    assert summary["rows"]["perfect"]["top1_regret"] == [0.0, 0.0]
    assert len(summary["noise_tau"]) == 10  # every pair of the 5 standalone seeds
    # the fixed fusion of a score that is the parameter count ranks as the parameter count
    assert summary["rows"]["counted (-train loss+params)"]["kendall_tau"] == pytest.approx(
        [base, base]
    )
    assert summary["rows"]["perfect (-train loss)"]["ensemble_tau"] == 1.0
    assert "FLOPs (baseline)" in out and -1.0 <= summary["baseline_flops"]["kendall_tau"] <= 1.0
    with pytest.raises(SystemExit):
        fidelity.main([*args, "--rows", "absent"])
    assert "unknown row 'absent'; allowed: perfect, counted" in capsys.readouterr().err


def test_the_summary_file_is_named_by_sample(tmp_path):
    assert fidelity.summary_path(tmp_path, SAMPLES["stratified"]).name == "fidelity.json"
    assert fidelity.summary_path(tmp_path, SAMPLES["uniform"]).name == "fidelity_uniform.json"


def test_a_partial_ground_truth_reports_on_the_cells_it_has(
    fake_uniform, tmp_path, capsys, monkeypatch
):
    """Runs score the whole drawn sample; the tables use the cells whose truth exists, so a
    ground truth still being computed can be reported on without rescoring later."""
    sample, truth = fake_uniform
    drawn = sorted(truth["mean"])
    for key in ("per_seed", "params", "mean"):
        truth[key] = {a: v for a, v in truth[key].items() if a not in drawn[:5]}
    sample.cache.write_text(json.dumps(truth))
    monkeypatch.setattr(fidelity, "_train", _no_training)
    rows = tmp_path / "rows.yaml"
    rows.write_text(
        "budget: {epochs: 2, steps_per_epoch: 3}\n"
        "rows:\n  counted: {why: counts parameters, overrides: [sampler=uniform]}\n"
    )
    book = load_rows(rows)
    scores = {a: float(i) for i, a in enumerate(drawn)}  # every drawn cell, with or without truth
    runs = tmp_path / "runs"
    write_run(
        runs,
        sample,
        "counted",
        0,
        scores,
        overrides=[*book.overrides("counted"), "seed=0"],
        total_s=1.0,
        param_bytes=4e5,
        num_supernets=1,
    )
    args = ["--sample", "uniform", "--rows-file", str(rows), "--seeds", "0", "--jobs", "1"]
    assert fidelity.main([*args, "--out", str(runs), "--results", str(tmp_path)]) == 0
    assert "ground truth: 35 archs x 5 seeds" in capsys.readouterr().out
    summary = json.loads((tmp_path / "fidelity_uniform.json").read_text())
    assert summary["rows"]["counted"]["kendall_tau"] == pytest.approx(
        [kendall_tau({a: scores[a] for a in truth["mean"]}, truth["mean"])]
    )


def test_the_mbv3_sample_trains_its_rows_in_its_own_space_and_macro():
    book, sample = load_rows(), SAMPLES["mbv3"]
    base = book.base(sample=sample)
    assert base[0] == "space=mbv3" and "space.macro.channels=4" in base
    assert not any("cells_per_stage" in o for o in base)
    assert "space=mbv3" not in book.base()  # the NB201 samples' base is unchanged
    archs = [str(a) for a in sample.archs()]
    assert len(archs) == len(set(archs)) == 100
    assert all(sample.archs()[k] == build_space("mbv3").parse(a) for k, a in enumerate(archs[:5]))


def test_flops_are_counted_on_each_arch_of_the_sample():
    from bench.fidelity_tables import Costs

    sample, space = SAMPLES["mbv3"], build_space("mbv3")
    small, large = str(space.smallest()), str(space.largest())
    costs = Costs.of(sample, [small, large])
    assert 0 < costs.flops[small] < costs.flops[large]


def test_rows_at_other_budgets_are_headed_once_per_block_with_their_own_budgets(tmp_path, capsys):
    path = tmp_path / "rows.yaml"
    path.write_text(
        "budget: {epochs: 2, steps_per_epoch: 3}\nrows:\n"
        "  same: {why: x, overrides: [k=v]}\n"
        "  longer: {why: y, overrides: [trainer.epochs=6]}\n"
        "  every: {why: z, overrides: [trainer.steps_per_epoch=null]}\n"
    )
    book = load_rows(path)
    archs = [f"a{i}" for i in range(8)]
    gt = {
        "mean": {a: 30.0 + i for i, a in enumerate(archs)},  # above the connected cut-off
        "per_seed": {a: [30.0 + i, 30.5 + i] for i, a in enumerate(archs)},
        "seeds": [0, 1],
        "params": {a: 10 * (8 - i) for i, a in enumerate(archs)},
    }
    runs = [
        {
            "row": row,
            "seed": 0,
            "val_acc": {a: float(i) for i, a in enumerate(archs)},
            "neg_val_loss": {a: float(-i) for i, a in enumerate(archs)},
            "total_s": 1.0,
            "param_bytes": 1e6,
            "num_supernets": 1,
        }
        for row in ("same", "longer", "every")
    ]
    estimators = {"val_acc": ("", "accuracy"), "neg_val_loss": (" (-val loss)", "minus the loss")}
    fidelity_tables.tables(gt, archs, runs, ["every", "same", "longer"], book, estimators)
    lines = capsys.readouterr().out.splitlines()
    head = (
        "-- other budgets, a separate comparison "
        "(every: 2 epochs x every batch; longer: 6 epochs x 3 steps) --"
    )
    assert lines.count(head) == 2  # once per estimator block
    first = lines.index(head)
    assert lines[first - 1].startswith("same ") and lines[first + 1].startswith("every ")
    assert lines[first + 2].startswith("longer ")
