"""A throwaway PostgreSQL server on loopback, in a temporary directory (Debian's ``postgresql``)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _bin(name: str) -> str | None:
    """A PostgreSQL server program: on PATH, or in Debian's /usr/lib/postgresql/<v>/bin."""
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return versions[-1] if versions else None


def missing() -> str | None:
    """Why no server can be started here (None when it can)."""
    absent = [n for n in ("initdb", "pg_ctl") if _bin(n) is None]
    if absent:
        names = ", ".join(absent)
        return f"PostgreSQL server programs not found ({names}): apt-get install postgresql"
    if os.geteuid() == 0 and (shutil.which("runuser") is None or not _user_exists("postgres")):
        return "running as root, and no 'postgres' user with runuser to start the server as"
    return None


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(*cmd: str) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout}{done.stderr}")


@contextmanager
def server() -> Iterator[str]:
    """Start a server with its data in a new temporary directory; yields its URL. initdb refuses
    to run as root, so as root the server runs as the ``postgres`` user (``runuser``), in a
    directory of its own under /tmp (pytest's temporary directories are private to root)."""
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    root = Path(tempfile.mkdtemp(prefix="sharenas-pg-"))
    if as_user:
        shutil.chown(root, user="postgres")
    data, port = root / "data", _free_port()
    try:
        _run(*as_user, _bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust")
        opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c max_connections=50"
        _run(
            *as_user,
            _bin("pg_ctl"),
            "-D",
            str(data),
            "-o",
            opts,
            "-l",
            f"{root}/log",
            "-w",
            "start",
        )
        try:
            yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
        finally:
            _run(*as_user, _bin("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)
