"""bench/throughput.py, bench/gpu.py --smoke and bench/threads.py run and print the lines that
scripts read (correctness only: no figure is checked)."""

from __future__ import annotations

import re
import sys

from bench import gpu, racing, threads, throughput


def test_racing_trains_searches_and_prints_both_sides(capsys):
    racing.main(["--spaces", "nb201", "--trials", "14", "--epochs", "1"])
    out = capsys.readouterr().out
    assert re.search(
        r"^nb201 racing \(val_loss\+synflow, .* 14 archs .*\): \d+ of 14 stopped", out, re.M
    )
    assert re.search(r"^top 10 of the full evaluator on these archs: \d+ stopped", out, re.M), out
    assert re.search(r"^naive/racing \d+\.\d+ \(nb201;", out, re.M), out
    assert re.search(r"^naive/full \d+\.\d+ \(nb201;", out, re.M), out


def test_throughput_prints_every_ratio(capsys):
    throughput.main(
        [
            "--archs",
            "1",
            "--train-archs",
            "1",
            "--repeats",
            "1",
            "--trials",
            "3",
            "--race-trials",
            "0",
        ]
    )
    out = capsys.readouterr().out
    for space in ("nb201", "mbv3"):
        assert re.search(rf"^evaluator/floor \d+\.\d+ \({space};", out, re.M), out
        assert re.search(rf"^naive/evaluator \d+\.\d+ \({space};", out, re.M), out
        assert re.search(rf"^supernet/standalone \d+\.\d+ \({space};", out, re.M), out
    # the default estimator's record against train_loss's (nb201; mbv3's default is the angle)
    assert re.search(r"^train_loss/default \d+\.\d+ \(nb201;", out, re.M), out
    assert not re.search(r"^train_loss/default \d+\.\d+ \(mbv3;", out, re.M), out
    assert re.search(r"^synflow per arch: .* copy/twins \d+\.\d+ \(nb201\)", out, re.M), out
    assert re.search(r"^searcher share \d\.\d+", out, re.M), out
    assert re.search(r"^searcher alone .*: 3 archs, \d+ trials .* ms per arch$", out, re.M), out


def test_gpu_smoke_runs_every_cpu_path_and_checks_equality(capsys):
    assert gpu.main(["--smoke"]) == 0
    out = capsys.readouterr().out
    assert "max |static - eager|, |extracted - eager| = 0.00e+00" in out, out
    for row in ("eager supernet", "static supernet, eager", "standalone net, eager"):
        assert re.search(rf"^{row} +\d+ ", out, re.M), out


def test_threads_table_has_both_settings_on_both_machines(capsys):
    command = [sys.executable, "-c", "print('threads: 1 (test)')"]
    assert threads.main(["--reps", "1", "--hogs", "1", "--", *command]) == 0
    out = capsys.readouterr().out
    assert len(re.findall(r"^(as is|\+1 CPU hogs) +(default|auto) ", out, re.M)) == 4, out
    assert "threads: 1 (test)" in out
