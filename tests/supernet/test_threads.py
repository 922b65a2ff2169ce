"""The one thread setting: ``auto`` takes the smallest limit and never oversubscribes."""

from __future__ import annotations

import os

import pytest
import torch

from supernet import threads as th
from supernet.errors import SharenasError


@pytest.fixture
def machine(monkeypatch):
    """A fake machine: 8 CPUs in the affinity mask, no quota, no OMP_NUM_THREADS, 8 idle."""
    state = {"affinity": 8, "quota": None, "idle": 8.0}
    monkeypatch.setattr(th, "affinity_cpus", lambda: state["affinity"])
    monkeypatch.setattr(th, "cgroup_quota", lambda: state["quota"])
    monkeypatch.setattr(th, "idle_cpus", lambda: state["idle"])
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    return state


def test_auto_takes_the_smallest_limit(machine, monkeypatch):
    assert th.resolve_threads("auto").n == 8
    machine["quota"] = 2.5  # 250000 100000: three CPUs' worth of time, rounded up
    assert th.resolve_threads("auto").n == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert th.resolve_threads(None).n == 2
    machine["idle"] = 0.2  # two CPU hogs beside us: one thread, never zero
    t = th.resolve_threads("auto")
    assert t.n == 1
    assert "idle CPUs 1" in str(t) and "OMP_NUM_THREADS 2" in str(t)


def test_parallel_workers_share_the_cpus(machine):
    assert th.resolve_threads("auto", workers=4).n == 2
    assert th.resolve_threads("auto", workers=16).n == 1
    assert th.resolve_threads("auto", workers=3, probe_idle=False).n == 2


def test_an_integer_is_used_as_given(machine):
    assert th.resolve_threads(3).n == 3
    assert th.resolve_threads("5", workers=8).n == 5


@pytest.mark.parametrize("bad", [0, -1, "many", 1.5, True])
def test_bad_setting_names_the_value_and_the_allowed_ones(bad):
    with pytest.raises(SharenasError, match=r"trainer.num_threads must be 'auto' or an integer"):
        th.check_threads(bad)


def test_cgroup_quota_files(tmp_path):
    assert th.cgroup_quota(tmp_path) is None  # no files: unknown
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert th.cgroup_quota(tmp_path) is None
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert th.cgroup_quota(tmp_path) == 1.5
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("200000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert th.cgroup_quota(tmp_path) == 2.0


def test_idle_cpus_reads_proc_stat():
    idle = th.idle_cpus(0.02)
    assert idle is None or 0.0 <= idle <= os.cpu_count() + 1e-6


def test_apply_sets_torch_and_prints(machine, capsys):
    before = torch.get_num_threads()
    try:
        machine["idle"] = 1.0
        assert th.apply_threads("auto") == 1
        assert torch.get_num_threads() == 1
        assert capsys.readouterr().out.strip().startswith("threads: 1 (auto: affinity 8")
        assert th.apply_threads(2, say=None) == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
