"""Headless Chromium driven through the Chrome DevTools protocol, for the browser checks in
``bench/``: a fresh profile, loopback only, one page, killed with its whole process group."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

CHROMIUM_NAMES = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def find_chromium(explicit: str | None = None) -> str | None:
    """The headless Chromium binary: ``explicit``, else the first of CHROMIUM_NAMES on PATH."""
    if explicit:
        return explicit if Path(explicit).is_file() else None
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


def get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (loopback only)
        return response.read()


def wait_for(check, timeout: float, what: str, interval: float = 0.5):
    """Poll ``check()`` until it returns a truthy value; raise TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError, KeyError):
            if value := check():
                return value
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready after {timeout:.0f} s")


@contextlib.contextmanager
def process_group(command: list[str], log: Path) -> Iterator[subprocess.Popen]:
    """Run ``command`` in its own process group; the whole group is killed on exit."""
    with open(log, "w") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class DevTools:
    """A minimal Chrome DevTools protocol client over one page's websocket."""

    def __init__(self, ws_url: str) -> None:
        import websocket  # websocket-client, a dev dependency

        self.ws = websocket.create_connection(ws_url, timeout=60, suppress_origin=True)
        self.next_id = 0

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def close(self) -> None:
        self.ws.close()


@contextlib.contextmanager
def chromium(binary: str, workdir: Path, width: int, height: int) -> Iterator[DevTools]:
    """Headless Chromium with a fresh profile, driven through one page."""
    profile = workdir / "profile"
    command = [
        binary,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        "--remote-debugging-port=0",
        f"--window-size={width},{height}",
        "about:blank",
    ]
    with process_group(command, workdir / "chromium.log"):
        active = profile / "DevToolsActivePort"
        port = wait_for(lambda: int(active.read_text().split()[0]), 30, "Chromium DevTools")
        targets = wait_for(
            lambda: json.loads(get(f"http://127.0.0.1:{port}/json/list")), 30, "Chromium page"
        )
        page = next(t for t in targets if t["type"] == "page")
        tools = DevTools(page["webSocketDebuggerUrl"])
        try:
            tools.call(
                "Emulation.setDeviceMetricsOverride",
                width=width,
                height=height,
                deviceScaleFactor=1,
                mobile=False,
            )
            yield tools
        finally:
            tools.close()
