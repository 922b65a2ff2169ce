"""Tests for search.fidelity ranking-fidelity metrics, loaders and CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from search.fidelity import (
    best_rank_at,
    fidelity_report,
    kendall_tau,
    load_scores,
    main,
    param_count_score,
    precision_at_top,
    spearman_rho,
    top1_regret,
)

NB201_TRUTH = Path(__file__).resolve().parents[2].parent / "shared/data/nb201/cifar10_test_acc.json"

TRUTH = {f"a{i:02d}": float(i) for i in range(20)}  # a19 is best
REVERSED = {k: -v for k, v in TRUTH.items()}


def test_perfect_order() -> None:
    est = {k: 10 * v + 3 for k, v in TRUTH.items()}  # monotone transform
    assert kendall_tau(est, TRUTH) == pytest.approx(1.0)
    assert spearman_rho(est, TRUTH) == pytest.approx(1.0)
    assert precision_at_top(est, TRUTH, 0.05) == 1.0
    assert precision_at_top(est, TRUTH, 0.5) == 1.0
    assert best_rank_at(est, TRUTH, 0.1) == pytest.approx(1 / 20)
    assert top1_regret(est, TRUTH) == 0.0


def test_reversed_order() -> None:
    assert kendall_tau(REVERSED, TRUTH) == pytest.approx(-1.0)
    assert spearman_rho(REVERSED, TRUTH) == pytest.approx(-1.0)
    # k = round(0.1 * 20) = 2: estimator picks a00, a01 -> truth ranks 20, 19.
    assert precision_at_top(REVERSED, TRUTH, 0.1) == 0.0
    assert best_rank_at(REVERSED, TRUTH, 0.1) == pytest.approx(19 / 20)
    assert top1_regret(REVERSED, TRUTH) == pytest.approx(19.0)


def test_ties_tau_b() -> None:
    est = {"a": 1.0, "b": 2.0, "c": 2.0, "d": 3.0}
    truth = {"a": 2.0, "b": 1.0, "c": 3.0, "d": 3.0}
    # Pairs: (a,b) discordant; (a,c), (a,d), (b,d) concordant; (b,c) tied in est only;
    # (c,d) tied in truth only. C=3, D=1, est-only ties=1, truth-only ties=1.
    # tau-b = (C - D) / sqrt((C + D + Tx) * (C + D + Ty)) = 2 / sqrt(5 * 5) = 0.4
    assert kendall_tau(est, truth) == pytest.approx(0.4)


def test_deterministic_tie_breaking() -> None:
    est = {"a": 1.0, "b": 1.0, "c": 0.0}
    truth = {"a": 5.0, "b": 9.0, "c": 7.0}
    # est tie between a and b -> key order picks "a"; truth best is b (9).
    assert top1_regret(est, truth) == pytest.approx(4.0)
    # k = max(1, round(0.2 * 3)) = 1: {a} vs {b}.
    assert precision_at_top(est, truth, 0.2) == 0.0
    # truth ranks: b=1, c=2, a=3 -> best among est top-1 {a} is 3 -> 3/3.
    assert best_rank_at(est, truth, 0.2) == pytest.approx(1.0)
    # k = round(0.67 * 3) = 2: est top {a, b}, truth top {b, c}; best truth rank 1.
    assert precision_at_top(est, truth, 0.67) == pytest.approx(0.5)
    assert best_rank_at(est, truth, 0.67) == pytest.approx(1 / 3)


def test_intersection_of_keys() -> None:
    est = {"a": 1.0, "b": 2.0, "c": 3.0, "only_est": 100.0}
    truth = {"a": 10.0, "b": 20.0, "c": 30.0, "only_truth": -5.0}
    report = fidelity_report(est, truth)
    assert report["n"] == 3
    assert report["kendall_tau"] == pytest.approx(1.0)
    assert report["top1_regret"] == 0.0


def test_too_few_common_keys() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        kendall_tau({"a": 1.0, "b": 2.0}, {"a": 1.0, "c": 2.0})
    with pytest.raises(ValueError, match="at least 2"):
        fidelity_report({}, {})


def test_report_keys() -> None:
    report = fidelity_report(REVERSED, TRUTH)
    assert set(report) == {
        "n",
        "kendall_tau",
        "spearman_rho",
        "precision_top5",
        "precision_top10",
        "best_rank_top5",
        "best_rank_top10",
        "top1_regret",
    }


def test_param_count_score() -> None:
    arch = "|nor_conv_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"
    assert param_count_score(arch) == 19.0
    with pytest.raises(ValueError):
        param_count_score("not a cell")


def test_nb201_param_count_tau() -> None:
    if not NB201_TRUTH.exists():
        pytest.skip(f"{NB201_TRUTH} not available")
    truth = load_scores(NB201_TRUTH)
    assert len(truth) == 15625
    est = {arch: param_count_score(arch) for arch in truth}
    tau = kendall_tau(est, truth)
    print(f"NB201 cifar10 param-count kendall tau-b = {tau:.4f}")
    # Measured 0.5777 on the 15625-cell cifar10 test-accuracy table.
    assert 0.5577 <= tau <= 0.5977


def _write(path: Path, obj: object) -> Path:
    path.write_text(json.dumps(obj))
    return path


def test_load_scores_shapes(tmp_path: Path) -> None:
    flat = {"x": 1.0, "y": 2}
    assert load_scores(_write(tmp_path / "flat.json", flat)) == {"x": 1.0, "y": 2.0}
    cache = {"recipe": {"epochs": 1}, "per_seed": {"0": flat}, "mean": flat}
    assert load_scores(_write(tmp_path / "cache.json", cache)) == {"x": 1.0, "y": 2.0}
    recs = [{"arch": "x", "val_acc": 0.5, "other": 9}, {"arch": "y", "val_acc": 0.7}]
    assert load_scores(_write(tmp_path / "bare.json", recs)) == {"x": 0.5, "y": 0.7}
    wrapped = {"records": recs}
    assert load_scores(_write(tmp_path / "wrapped.json", wrapped)) == {"x": 0.5, "y": 0.7}
    with pytest.raises(ValueError, match="record 1 .*'other'"):
        load_scores(tmp_path / "wrapped.json", key="other")


def test_a_verify_store_is_ground_truth_at_standalone_acc(tmp_path: Path, capsys) -> None:
    results = {
        a: {"arch": a, "standalone_acc": acc, "seeds": [0]} for a, acc in (("x", 90.0), ("y", 80.0))
    }
    store = _write(tmp_path / "standalone.json", {"format": 1, "results": results, "settings": {}})
    assert load_scores(store) == {"x": 90.0, "y": 80.0}
    assert load_scores(store, key="score") == {"x": 90.0, "y": 80.0}  # whatever --key says
    recs = [
        {"arch": "x", "val_acc": 1.0, "score": 2.0},
        {"arch": "y", "val_acc": 3.0, "score": 1.0},
    ]
    found = _write(tmp_path / "results.json", recs)
    assert main([str(found), str(store)]) == 0
    assert "reading val_acc; its records also hold score" in capsys.readouterr().err
    assert main(["--key", "score", str(found), str(store)]) == 0
    assert "reading val_acc" not in capsys.readouterr().err


def test_load_scores_custom_key(tmp_path: Path) -> None:
    recs = {"records": [{"arch": "x", "proxy": 3}, {"arch": "y", "proxy": 1}]}
    assert load_scores(_write(tmp_path / "r.json", recs), key="proxy") == {"x": 3.0, "y": 1.0}


@pytest.mark.parametrize(
    "obj",
    [
        {"x": "high", "y": 2.0},
        {"records": [{"arch": "x"}]},
        [{"name": "x", "val_acc": 1.0}],
        {"mean": {"x": None}},
        42,
    ],
)
def test_load_scores_bad_shapes(tmp_path: Path, obj: object) -> None:
    path = _write(tmp_path / "bad.json", obj)
    with pytest.raises(ValueError, match="bad.json"):
        load_scores(path)


def test_load_scores_missing_and_invalid(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="missing.json"):
        load_scores(tmp_path / "missing.json")
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="broken.json.*invalid JSON"):
        load_scores(bad)
    binary = tmp_path / "supernet.pt"
    binary.write_bytes(b"PK\x03\x04\x80\xff")  # a checkpoint given for a JSON file
    with pytest.raises(ValueError, match=r"supernet.pt: not a JSON text file \(byte 4 is not"):
        load_scores(binary)


def _cli_files(tmp_path: Path) -> tuple[Path, Path]:
    est = {"records": [{"arch": a, "val_acc": v} for a, v in [("a", 1), ("b", 2), ("c", 2)]]}
    truth = {"recipe": "r", "mean": {"a": 2.0, "b": 1.0, "c": 3.0, "d": 4.0}}
    return _write(tmp_path / "est.json", est), _write(tmp_path / "truth.json", truth)


def test_cli_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    est, truth = _cli_files(tmp_path)
    assert main([str(est), str(truth)]) == 0
    out = capsys.readouterr().out
    tau = kendall_tau(load_scores(est), load_scores(truth))
    lines = out.strip().splitlines()
    assert len(lines) == 8
    assert any(line.split() == ["Kendall", "tau-b", f"{tau:.4f}"] for line in lines)
    labels = [line.rsplit(None, 1)[0].strip() for line in lines]
    assert lines[labels.index("n (archs in both files)")].endswith(" 3")
    for label in ("precision@top-5%", "best-rank@top-5% (fraction of n)"):
        assert label in labels
    assert "top-1 regret (truth units)" in labels
    assert len({len(line) for line in lines}) == 1  # aligned columns


def test_infeasible_records_do_not_count(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    recs = [
        {"arch": "a", "val_acc": 1.0, "feasible": True},
        {"arch": "b", "val_acc": 2.0, "feasible": False},  # broke a constraint: left out
        {"arch": "c", "val_acc": 3.0},
    ]
    est = _write(tmp_path / "results.json", {"meta": {}, "records": recs})
    assert load_scores(est) == {"a": 1.0, "c": 3.0}
    with pytest.raises(ValueError, match="infeasible"):
        load_scores(_write(tmp_path / "none.json", {"records": recs[1:2]}))
    with pytest.raises(SystemExit):
        main(["--help"])
    assert '"feasible": false' in " ".join(capsys.readouterr().out.split())


def test_cli_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    est, truth = _cli_files(tmp_path)
    assert main([str(est), str(truth), "--key", "val_acc", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 3
    assert report["kendall_tau"] == pytest.approx(kendall_tau(load_scores(est), load_scores(truth)))


def test_cli_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, truth = _cli_files(tmp_path)
    bad = _write(tmp_path / "weird.json", {"records": "nope", "foo": [1]})
    assert main([str(bad), str(truth)]) != 0
    err = capsys.readouterr().err
    assert "weird.json" in err and "expected" in err


def test_cli_warns_when_few_archs_are_common(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    est = _write(tmp_path / "est.json", {"a": 1.0, "b": 2.0, "x": 9.0})
    truth = _write(tmp_path / "truth.json", {"a": 3.0, "b": 4.0, "y": 0.0})
    assert main([str(est), str(truth)]) == 0
    captured = capsys.readouterr()
    assert any(line.split() == ["Kendall", "tau-b", "1.0000"] for line in captured.out.splitlines())
    assert any(line.split()[-1] == "2" for line in captured.out.splitlines() if "n (" in line)
    warning = captured.err.strip().splitlines()
    assert len(warning) == 1 and warning[0].startswith("warning: only 2 archs are common")
    assert str(est) in warning[0] and str(truth) in warning[0] and "10" in warning[0]
    assert main([str(est), str(truth), "--json"]) == 0  # stdout stays valid JSON
    captured = capsys.readouterr()
    assert json.loads(captured.out)["n"] == 2 and "warning: only 2" in captured.err


def test_cli_no_warning_from_ten_common_archs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ten = {f"a{i}": float(i) for i in range(10)}
    est, truth = _write(tmp_path / "e.json", ten), _write(tmp_path / "t.json", ten)
    assert main([str(est), str(truth)]) == 0
    assert capsys.readouterr().err == ""


def test_cli_fails_with_one_common_arch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    est = _write(tmp_path / "est.json", {"a": 1.0, "x": 9.0})
    truth = _write(tmp_path / "truth.json", {"a": 3.0, "y": 0.0})
    assert main([str(est), str(truth)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: need at least 2 archs common")
    assert "got 1" in captured.err
