"""search/backends/ray_connect.py: a ray:// join whose session the Ray Client server failed to
start is tried again, and said; any other failure is not. The real joins (a `ray start` head with
token auth, its Ray Client server) are tests/reliability/test_ray_faults.py."""

from __future__ import annotations

import pytest

from search.backends import ray_connect
from supernet.errors import SharenasError

ADDRESS = "ray://127.0.0.1:10001"
NOT_STARTED = (
    "Initialization failure from server:\nTraceback (most recent call last):\n"
    "RuntimeError: Starting Ray client server failed. See ray_client_server_23000.err for "
    "detailed logs."
)


@pytest.fixture
def joins(monkeypatch: pytest.MonkeyPatch) -> list[Exception | None]:
    """The outcomes ``ray.init`` gives in turn (None: joined); the calls are counted off it."""
    outcomes: list[Exception | None] = []

    def init(address: str, **_: object) -> None:
        assert address == ADDRESS
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome

    monkeypatch.setattr(ray_connect.ray, "init", init)
    monkeypatch.setattr(ray_connect.ray, "shutdown", lambda: None)
    monkeypatch.setattr(ray_connect, "CLIENT_RETRY_S", 0.0)
    monkeypatch.setattr(ray_connect, "check_reachable", lambda address: None)  # no real server
    return outcomes


def test_a_session_the_server_did_not_start_is_tried_again(joins, capsys):
    joins += [ConnectionError(NOT_STARTED), ConnectionError(NOT_STARTED), None]
    ray_connect.connect(ADDRESS, num_cpus=1)
    assert not joins  # three joins, the third worked
    said = capsys.readouterr().err
    assert said.count("did not start this driver's session") == 2
    assert "(attempt 1 of 3): trying again" in said and "(attempt 2 of 3)" in said


def test_after_the_last_attempt_the_failure_is_one_line(joins):
    joins += [ConnectionError(NOT_STARTED)] * ray_connect.CLIENT_ATTEMPTS
    with pytest.raises(SharenasError) as err:
        ray_connect.connect(ADDRESS, num_cpus=1)
    line = str(err.value)
    assert f"failed to start this driver's session {ray_connect.CLIENT_ATTEMPTS} times" in line
    assert ADDRESS in line and "ray_client_server_*.err" in line and "\n" not in line
    assert not joins


def test_other_failures_are_not_tried_again(joins):
    joins += [ConnectionError("connection refused"), None]
    with pytest.raises(SharenasError, match="check that the port is reachable"):
        ray_connect.connect(ADDRESS, num_cpus=1)
    assert joins == [None]  # one join only


def test_any_other_failure_is_one_line_naming_the_address(joins):
    joins.append(ValueError("Invalid Ray address\nsee RAY_ADDRESS"))
    with pytest.raises(SharenasError) as err:
        ray_connect.connect(ADDRESS, num_cpus=1)
    assert f"backend.address={ADDRESS} (Invalid Ray address" in str(err.value)
    assert "\n" not in str(err.value)


def test_an_address_nobody_listens_on_is_refused_at_once():
    import socket
    import time

    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    tic = time.monotonic()
    with pytest.raises(SharenasError, match=rf"cannot reach the Ray cluster at .*127.0.0.1:{port}"):
        ray_connect.check_reachable(f"127.0.0.1:{port}")
    assert time.monotonic() - tic < ray_connect.REACH_TIMEOUT_S + 1
    with socket.socket() as server:  # a listening port passes (Ray then joins or says why)
        server.bind(("127.0.0.1", 0))
        server.listen()
        ray_connect.check_reachable(f"ray://127.0.0.1:{server.getsockname()[1]}")
    for address in ("auto", "local", "anyscale://cluster", "http://127.0.0.1:6379"):
        ray_connect.check_reachable(address)  # Ray's own forms and errors: ray.init says


@pytest.mark.parametrize("address", ["127.0.0.1", "head:port", "ray://head", ":6379"])
def test_what_is_not_a_ray_address_is_named_with_the_forms(address):
    with pytest.raises(SharenasError, match=r"is not a Ray address: give host:port \(the head"):
        ray_connect.check_reachable(address)
