"""Run sharenas in a child process (the CLI, or a short script), as a user or a crash would."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence

from tests.conftest import REPO, TINY_TRAIN


def run_cli(
    script: str, overrides: Sequence[str], timeout: int = 300
) -> subprocess.CompletedProcess:
    """``python <script> <tiny overrides> <overrides>`` in the repository, one thread."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, script, *TINY_TRAIN, *overrides],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_script(code: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """``python -c code`` in the repository (``tests`` importable), one thread."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def error_line(proc: subprocess.CompletedProcess) -> str:
    """The one ``error:`` line a refused command prints (asserting there is exactly one and no
    traceback)."""
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, proc.stderr
    return lines[0]
