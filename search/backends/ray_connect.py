"""Joining Ray: a local instance on 127.0.0.1, or a cluster, with one clear line when the cluster
wants a token the driver does not send."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import tempfile
import time
from collections.abc import Iterator

import ray

from supernet.errors import SharenasError

_TOKEN = (
    "set RAY_AUTH_MODE=token in this environment, with the cluster's token in ~/.ray/auth_token, "
    "RAY_AUTH_TOKEN_PATH or RAY_AUTH_TOKEN (`ray start` turns token authentication on by default)"
)
# What Ray's GCS client prints (about once a second for 20 s) when its token is refused.
_REFUSED = ("InvalidAuthToken", "Unauthenticated", "AuthenticationError")
# What a Ray Client server answers when the process it starts for a new driver exits at once.
_CLIENT_START = "Starting Ray client server failed"
CLIENT_ATTEMPTS = 3  # joins of a ray:// address whose server did not start the session
CLIENT_RETRY_S = 2.0  # seconds between them
REACH_TIMEOUT_S = 5.0  # a cluster's port that accepts no TCP connection in this time is refused
_FORMS = (
    "host:port (the head's GCS port, 6379 unless `ray start --port` said otherwise), "
    "ray://host:port (Ray Client, 10001 by default) or auto"
)


def connect(address: str | None, num_cpus: int) -> None:
    """``ray.init``: a local instance with ``num_cpus`` on 127.0.0.1 (``address`` None), else the
    cluster at ``address`` ("auto", "host:port", "ray://host:10001"). An address that does not
    answer, refused authentication and any other failed join end in one ``SharenasError`` line
    (after Ray's own output of the failed join, which is kept). A
    ``ray://`` join whose session the server failed to start is tried again (``CLIENT_ATTEMPTS``
    in all, each retry said on stderr)."""
    quiet = dict(log_to_driver=False, logging_level=logging.WARNING)
    if address is None:
        local = dict(num_cpus=num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1")
        ray.init(address="local", **local, **quiet)  # a new instance, even beside a running one
        return
    check_reachable(address)  # again: training since RayBackend's check may have taken hours
    for attempt in range(1, CLIENT_ATTEMPTS + 1):
        failure: BaseException | None = None
        with _stderr_held() as held:
            try:
                ray.init(address=address, **quiet)
            except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as err:
                failure = err
        said = held.text
        if attempt == CLIENT_ATTEMPTS or not _session_not_started(address, failure):
            break
        print(
            f"the Ray Client server at backend.address={address} did not start this driver's "
            f"session (attempt {attempt} of {CLIENT_ATTEMPTS}): trying again",
            file=sys.stderr,
        )
        with contextlib.suppress(Exception):  # leave no half-made client context behind
            ray.shutdown()
        time.sleep(CLIENT_RETRY_S)
    if failure is None:
        sys.stderr.write(said)  # warnings of a join that worked are the user's to see
        return
    if _session_not_started(address, failure):
        raise SharenasError(
            f"the Ray Client server at backend.address={address} failed to start this driver's "
            f"session {CLIENT_ATTEMPTS} times ({_CLIENT_START}): see ray_client_server_*.err "
            f"in the session logs on the cluster's head (by default /tmp/ray/session_latest/logs)"
        ) from None
    if _refused(failure, said):
        raise SharenasError(
            f"the Ray cluster at backend.address={address} refused this "
            f"driver's authentication: {_TOKEN}"
        ) from None
    first = (str(failure).strip().splitlines() or [type(failure).__name__])[0]
    if address.startswith("ray://") and "auth_token" not in said:
        raise SharenasError(
            f"cannot connect to Ray Client at backend.address={address} ({first}): check that "
            f"the port is reachable; if the cluster uses token authentication, {_TOKEN}"
        ) from None
    hint = ""
    if isinstance(failure, ConnectionError) and not address.startswith("ray://"):
        hint = " (a Ray Client port is given as ray://host:port)"
    if said.strip():  # Ray's own words on the failed join, held while it ran
        sys.stderr.write(said)
    raise SharenasError(
        f"cannot join the Ray cluster at backend.address={address}: {first}{hint}"
    ) from None


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of ``host:port`` or ``ray://host:port`` (IPv6 in brackets), else None."""
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if "://" in target or not sep or not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def check_reachable(address: str) -> None:
    """One line, within ``REACH_TIMEOUT_S``, when ``address`` has the form ``host:port`` or
    ``ray://host:port`` and nothing accepts a TCP connection there, or when it is none of Ray's
    forms. ``auto``, ``local`` and other ``scheme://`` client addresses are Ray's to check."""
    if address in ("auto", "local") or ("://" in address and not address.startswith("ray://")):
        return
    target = _host_port(address)
    if target is None:
        raise SharenasError(f"backend.address={address!r} is not a Ray address: give {_FORMS}")
    try:
        socket.create_connection(target, timeout=REACH_TIMEOUT_S).close()
    except OSError as err:
        why = err.strerror or type(err).__name__
        raise SharenasError(
            f"cannot reach the Ray cluster at backend.address={address} ({why}): is Ray "
            f"running there (`ray start --head`) and the port open? Forms: {_FORMS}"
        ) from None


def _session_not_started(address: str, err: BaseException | None) -> bool:
    """Whether a ``ray://`` join failed because the server's per-driver process did not start:
    a failure on the cluster's side, for this session only (the next join gets a new one)."""
    return address.startswith("ray://") and err is not None and _CLIENT_START in str(err)


def _refused(err: BaseException | None, said: str) -> bool:
    if any(word in said for word in _REFUSED):
        return True
    while err is not None:
        if type(err).__name__ == "AuthenticationError" or "InvalidAuthToken" in str(err):
            return True
        err = err.__cause__ or err.__context__
    return False


class _Held:
    """What was written to stderr while held (``text``, set when the hold ends)."""

    text = ""


@contextlib.contextmanager
def _stderr_held() -> Iterator[_Held]:
    """File descriptor 2 into a temporary file: Ray's C++ client writes there directly."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as file:
        os.dup2(file.fileno(), 2)
        held = _Held()
        try:
            yield held
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            file.seek(0)
            held.text = file.read().decode(errors="replace")
