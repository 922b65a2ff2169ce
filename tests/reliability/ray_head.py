"""A real Ray head (``ray start --head --block``) on 127.0.0.1, with token authentication or
without, and a Ray Client server, in its own process group: stopped by killing that group and
any process still naming its temp dir, never ``ray stop``."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import REPO

RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Head:
    """Where the head listens, and the token a driver must send (None: no token auth)."""

    address: str  # host:port of the GCS
    client: str  # ray://host:port of the Ray Client server
    token: str | None
    temp_dir: Path  # the head's --temp-dir (its session logs)

    def client_logs(self) -> str:
        """The tails of the Ray Client servers' error logs (why a ``ray://`` driver failed)."""
        logs = sorted(self.temp_dir.glob("session_*/logs/ray_client_server*.err"))
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in logs)


def _pids_naming(marker: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker in (proc / "cmdline").read_text(errors="replace"):
                pids.append(int(proc.name))
        except OSError:
            pass
    return pids


@contextmanager
def ray_head(start_timeout: float = 180, auth: bool = True) -> Iterator[Head]:
    """A head with ``RAY_AUTH_MODE=token`` and its own token (``auth``), else with token auth
    off (Ray 2.60 turns it on for ``ray start`` whenever ``~/.ray/auth_token`` exists); workers
    import this repository."""
    temp_dir = tempfile.mkdtemp(prefix="rayh", dir="/tmp")  # short: socket paths are limited
    port, client = free_port(), free_port()
    token = secrets.token_hex(16) if auth else None
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    mode = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token} if auth else {}
    mode = mode or {"RAY_AUTH_MODE": "disabled"}
    env |= {**RAY_ENV, **mode, "PYTHONPATH": str(REPO)}
    env["OMP_NUM_THREADS"] = "1"
    cmd = [
        str(Path(sys.executable).parent / "ray"),
        "start",
        "--head",
        "--block",
        "--node-ip-address=127.0.0.1",
        f"--port={port}",
        "--num-cpus=2",
        "--include-dashboard=false",
        "--disable-usage-stats",
        f"--temp-dir={temp_dir}",
        f"--ray-client-server-port={client}",
        f"--dashboard-port={free_port()}",
        f"--dashboard-agent-listen-port={free_port()}",
    ]
    log_path = Path(temp_dir) / "head.log"
    with open(log_path, "w") as log:
        head = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO, start_new_session=True
        )
    try:
        deadline = time.monotonic() + start_timeout
        while "Ray runtime started" not in log_path.read_text():
            if head.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ray start failed:\n{log_path.read_text()}")
            time.sleep(0.5)
        yield Head(f"127.0.0.1:{port}", f"ray://127.0.0.1:{client}", token, Path(temp_dir))
    finally:
        for sig, wait in ((signal.SIGTERM, 3), (signal.SIGKILL, 1)):
            try:
                os.killpg(head.pid, sig)
            except ProcessLookupError:
                pass
            time.sleep(wait)
        for pid in _pids_naming(temp_dir):  # workers that left the process group
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        head.wait(timeout=30)
        shutil.rmtree(temp_dir, ignore_errors=True)
        assert not _pids_naming(temp_dir), "processes of the Ray head outlived it"
