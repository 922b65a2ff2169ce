"""``--help`` and tab completion offer only options that the scripts accept."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from supernet.cli import group_options
from tests.conftest import REPO

GROUPS = ("space", "data", "trainer", "searcher", "backend")


def script(name: str, *args: str, comp_line: str | None = None) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    if comp_line is not None:
        env["COMP_LINE"] = comp_line
    proc = subprocess.run(
        [sys.executable, name, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("name", ["train.py", "search.py"])
def test_help_lists_each_group_with_its_real_options_only(name):
    text = script(name, "--help")
    section = text.split("== Config ==")[0]  # the groups section; the composed config follows
    groups = dict(line.split(": ", 1) for line in section.splitlines() if ": " in line)
    assert groups, text
    assert set(GROUPS) <= set(groups) if name == "search.py" else {"space", "data"} <= set(groups)
    for group, options in groups.items():
        assert options.split(", ") == group_options(group), (group, options)
    assert "_schema" not in text


@pytest.mark.parametrize("group", ["backend", "searcher", "data"])
def test_completion_offers_only_real_options(group):
    words = script("search.py", "-sc", "query=bash", comp_line=f"python search.py {group}=").split()
    assert words == [f"{group}={o}" for o in group_options(group)]
