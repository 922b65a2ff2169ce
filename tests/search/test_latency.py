"""Latency lookup table: which parts an arch runs, the JSON table as checked data, predictions used
by a search (ranked and constrained), the measuring command and the agreement bench."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import search
from bench.latency_lut import main as bench_main
from search.latency import LatencyTable, measure_keys, part_keys
from sharenas.latency import main as latency_main
from supernet.errors import SharenasError
from supernet.models import Macro, build_supernet
from supernet.spaces import build_space
from supernet.training import train
from tests.conftest import compose_tiny

TINY = ["space.macro.channels=4"]
SHAPE = (1, 8, 8)


def supernet(space: str = "nb201", channels: int = 4):
    return build_supernet(build_space(space), Macro(channels=channels)).eval()


def test_nb201_parts_follow_the_cell_structure():
    net = supernet()
    nb201 = net.space
    empty = nb201.parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    cells = [i for i, b in enumerate(net.blocks) if type(b).__name__ == "SuperCell"]
    keys = part_keys(net, empty)
    assert keys[0] == "stem" and keys[-1] == "head"
    assert sorted(k for k in keys if "/" in k) == sorted(
        [f"block{i}/zeros" for i in cells for _ in range(3)] + [f"block{i}/cell" for i in cells]
    )
    two = nb201.parse("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|avg_pool_3x3~1|none~2|")
    keys = part_keys(net, two)
    i = cells[0]
    # sum() starts from 0: node 1 adds once, node 3 (two terms) twice
    assert keys.count(f"block{i}/nor_conv_3x3") == 1 and keys.count(f"block{i}/add") == 3
    assert keys.count(f"block{i}/zeros") == 1  # node 2 has no input


@pytest.mark.parametrize("space", ["nb201", "mbv3"])
def test_every_part_an_arch_runs_is_measured(space):
    net = supernet(space)
    import random

    rng = random.Random(0)
    archs = (
        net.space.enumerate() if space == "nb201" else (net.space.sample(rng) for _ in range(300))
    )
    used = {k for arch in archs for k in part_keys(net, arch)}
    assert used <= set(measure_keys(net))
    assert len(used) > 10


@pytest.fixture(scope="module")
def table_path(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lut") / "lut.json"
    latency_main(
        [*TINY, "--out", str(out), "--threads", "1", "--min-run-time", "0.01", "--calibrate", "2"]
    )
    return out


def test_measured_table_is_plain_checked_data(table_path):
    data = json.loads(table_path.read_text())
    assert data["space"] == "nb201" and data["input_shape"] == list(SHAPE)
    assert data["layout"]["channels"] == 4 and data["threads"] == 1
    assert set(data["parts_ms"]) == set(measure_keys(supernet()))
    assert all(
        isinstance(v, float) and math.isfinite(v) and v >= 0 for v in data["parts_ms"].values()
    )
    table = LatencyTable.load(table_path, supernet(), SHAPE)
    arch = supernet().space.largest()
    assert data["calibration_archs"] == 2 and data["scale"] > 0
    assert table.predict(supernet(), arch) == pytest.approx(
        data["scale"] * sum(data["parts_ms"][k] for k in part_keys(supernet(), arch))
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["layout"].update(channels=16), "layout"),
        (lambda d: d.update(input_shape=[3, 32, 32]), "input_shape"),
        (lambda d: d["parts_ms"].pop("stem"), "'stem'"),
        (lambda d: d["parts_ms"].update(head="__import__('os')"), "'head'"),
        (lambda d: d["parts_ms"].update(head=-1.0), "'head'"),
        (lambda d: d.update(format=99), "format"),
        (lambda d: d.update(format=1), "before the channels-last CPU kernels.*measure it again"),
        (lambda d: d.update(format=True), "format 2$"),  # a bool is no format number
    ],
)
def test_a_table_that_does_not_fit_is_refused_in_one_line(table_path, tmp_path, change, message):
    data = json.loads(table_path.read_text())
    change(data)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(SharenasError, match=message) as err:
        LatencyTable.load(bad, supernet(), SHAPE)
    assert "\n" not in str(err.value)


def test_nan_in_a_table_is_refused(table_path, tmp_path):
    bad = tmp_path / "nan.json"
    bad.write_text(table_path.read_text().replace('"stem": ', '"stem": NaN, "x": ', 1))
    with pytest.raises(SharenasError, match="NaN"):
        LatencyTable.load(bad, supernet(), SHAPE)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("latency_train")
    return Path(train(compose_tiny("train", TINY), out_dir=out)["checkpoint"])


def test_search_ranks_and_constrains_by_predicted_latency(checkpoint, table_path, tmp_path):
    table = LatencyTable.load(table_path, supernet(), SHAPE)
    overrides = [
        f"supernet.checkpoint={checkpoint}",
        "searcher=random",
        "searcher.n_trials=8",
        f"evaluator.latency_table={table_path}",
        "results.key=latency_ms",
        "results.export_best=false",
    ]
    first = search.run(compose_tiny("search", overrides), out_dir=tmp_path / "a")
    space = build_space("nb201")
    for r in first["records"]:
        assert r["latency_ms"] == pytest.approx(table.predict(supernet(), space.parse(r["arch"])))
    lat = [r["latency_ms"] for r in first["leaderboard"]]
    assert lat == sorted(lat)  # lower is better
    limit = sorted(lat)[len(lat) // 2]
    out = search.run(
        compose_tiny("search", [*overrides, f"constraints.latency_ms={limit}"]),
        out_dir=tmp_path / "b",
    )
    assert all(r["feasible"] == (r["latency_ms"] <= limit) for r in out["records"])


def test_latency_needs_a_table_or_measuring(tmp_path, table_path):
    cfg = compose_tiny("search", ["constraints.latency_ms=1.0"])
    with pytest.raises(SharenasError, match="measure_latency"):
        search.run(cfg, out_dir=tmp_path)
    from search.evaluate import Evaluator
    from supernet.builder import build

    built = build(compose_tiny("train", TINY))
    with pytest.raises(SharenasError, match="pick one"):
        Evaluator(built, measure_latency=True, latency_table=str(table_path))


def test_bench_reports_agreement_figures(tmp_path):
    out = bench_main(
        [*TINY, "--archs", "4", "--min-run-time", "0.01", "--json", str(tmp_path / "b.json")]
    )
    assert out["archs"] == 4 and len(out["rows"]) == 4
    assert -1.0 <= out["kendall_tau"] <= 1.0 and out["mean_abs_error_pct"] >= 0
    assert json.loads((tmp_path / "b.json").read_text())["kendall_tau"] == out["kendall_tau"]


def test_timing_statistic_is_checked():
    from search.costs import time_ms

    assert time_ms(lambda: None, 1, 0.01, "min") >= 0
    with pytest.raises(ValueError, match="'median' or 'min'"):
        time_ms(lambda: None, 1, 0.01, "mean")


def test_calibrated_scale_multiplies_the_sum_and_is_checked(table_path, tmp_path):
    net = supernet()
    plain = LatencyTable.measure(net, SHAPE, threads=1, min_run_time=0.01)
    assert plain.meta["scale"] == 1.0 and plain.meta["calibration_archs"] == 0
    calibrated = LatencyTable.measure(
        net, SHAPE, calibrate=2, threads=1, min_run_time=0.01, statistic="min"
    )
    scale = calibrated.meta["scale"]
    assert scale > 0 and calibrated.meta["calibration_archs"] == 2
    arch = net.space.largest()
    summed = sum(calibrated.parts[k] for k in part_keys(net, arch))
    assert calibrated.predict(net, arch) == pytest.approx(scale * summed)
    data = json.loads(table_path.read_text())
    data["scale"] = 0
    bad = tmp_path / "scale.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(SharenasError, match="'scale'"):
        LatencyTable.load(bad, net, SHAPE)
