"""Helpers to drive the Node side of the interop tests from pytest.

The Node files live in ``tests/node`` (see its README): ``reference_server.mjs``
is a stock Node Socket.IO server, ``client_scenarios.mjs`` runs one scenario
with the stock ``socket.io-client`` and prints its result as one JSON line.
These helpers start either one as a subprocess, on loopback only.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

NODE_DIR = Path(__file__).parent / "node"
REFERENCE_SERVER = NODE_DIR / "reference_server.mjs"
CLIENT_SCENARIOS = NODE_DIR / "client_scenarios.mjs"

HOST = "127.0.0.1"

#: Scenarios that run on their own (``reconnect`` needs a server restart; see
#: :func:`run_reconnect_scenario`).
SIMPLE_SCENARIOS: tuple[str, ...] = (
    "connect",
    "echo",
    "ack",
    "binary",
    "server-ack",
    "namespaces",
    "unknown-namespace",
    "middleware-refusal",
    "rooms",
    "heartbeat",
)
TRANSPORT_MODES: tuple[str, ...] = ("polling", "websocket", "polling,websocket")


class NodeHarnessError(RuntimeError):
    """A Node process did not start, crashed, or printed no result."""


def node_executable() -> str | None:
    """Path of ``node`` (``$NODE`` wins), or None when it is not installed."""
    override = os.environ.get("NODE")
    if override:
        return override
    return shutil.which("node")


def node_deps_installed() -> bool:
    """Whether ``npm ci`` has been run in :data:`NODE_DIR`."""
    modules = NODE_DIR / "node_modules"
    return (modules / "socket.io").is_dir() and (modules / "socket.io-client").is_dir()


def _node() -> str:
    exe = node_executable()
    if exe is None:
        raise NodeHarnessError("node is not installed (or set $NODE)")
    if not node_deps_installed():
        raise NodeHarnessError(f"Node dependencies missing: run `npm ci` in {NODE_DIR}")
    return exe


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class LineReader:
    """Reads a text stream line by line on a thread, so reads can time out."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        try:
            for line in stream:
                self._lines.put(line.rstrip("\r\n"))
        except (OSError, ValueError):
            pass
        finally:
            self._lines.put(None)

    def next_line(self, timeout: float) -> str | None:
        """The next line; None at end of stream. Raises TimeoutError."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no line within {timeout} s") from None
        if line is None:
            self._lines.put(None)  # stay at end of stream for later calls
        else:
            self.seen.append(line)
        return line

    def rest(self, timeout: float) -> list[str]:
        """All further lines until end of stream (or until `timeout` runs out)."""
        deadline = time.monotonic() + timeout
        lines: list[str] = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return lines
            try:
                line = self.next_line(remaining)
            except TimeoutError:
                return lines
            if line is None:
                return lines
            lines.append(line)


def stop_process(proc: subprocess.Popen[str], timeout: float = 5.0) -> None:
    """Stop `proc` with SIGTERM (graceful), then SIGKILL if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)
    if proc.stdout is not None:
        proc.stdout.close()


def start_node_reference(port: int, timeout: float = 10.0) -> subprocess.Popen[str]:
    """Start the Node reference server on 127.0.0.1:`port`; return once it listens."""
    proc = subprocess.Popen(
        [_node(), str(REFERENCE_SERVER), "--port", str(port), "--host", HOST],
        cwd=NODE_DIR,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    assert proc.stdout is not None
    reader = LineReader(proc.stdout)
    deadline = time.monotonic() + timeout
    try:
        while True:
            line = reader.next_line(max(deadline - time.monotonic(), 0.01))
            if line is None:
                raise NodeHarnessError(
                    f"reference server exited early (code {proc.wait(timeout=timeout)})"
                )
            if line.startswith("listening "):
                return proc
    except BaseException:
        stop_process(proc)
        raise


def scenario_command(
    url: str, scenario: str, transports: str, timeout: float | None = None
) -> list[str]:
    """Command line that runs one client scenario."""
    cmd = [
        _node(),
        str(CLIENT_SCENARIOS),
        "--url",
        url,
        "--transports",
        transports,
        "--scenario",
        scenario,
    ]
    if timeout is not None:
        cmd += ["--timeout", str(timeout)]
    return cmd


def parse_result(lines: list[str], what: str = "scenario") -> dict[str, Any]:
    """The last line of `lines` that is a JSON object."""
    for line in reversed(lines):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    raise NodeHarnessError(f"{what} printed no JSON result; output: {lines!r}")


def run_scenario(url: str, scenario: str, transports: str, timeout: float = 20) -> dict[str, Any]:
    """Run one client scenario against `url` and return its parsed result.

    ``timeout`` bounds the subprocess; the client's own overall timeout is set
    a little below it so that a hang still yields ``{"ok": false, ...}``.
    """
    proc = subprocess.run(
        scenario_command(url, scenario, transports, timeout=max(timeout - 2, 1)),
        cwd=NODE_DIR,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        check=False,
    )
    try:
        return parse_result(proc.stdout.splitlines(), f"scenario {scenario!r}")
    except NodeHarnessError as exc:
        raise NodeHarnessError(
            f"{exc} (exit code {proc.returncode}; stderr: {proc.stderr.strip()!r})"
        ) from None


def _is_connected_phase(line: str) -> bool:
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        return False
    return isinstance(value, dict) and value.get("phase") == "connected"


def run_reconnect_scenario(
    url: str, transports: str, restart: Callable[[], None], timeout: float = 30
) -> dict[str, Any]:
    """Run the ``reconnect`` scenario, calling `restart` once the client is connected.

    `restart` must stop the server and start it again on the same address.
    """
    proc = subprocess.Popen(
        scenario_command(url, "reconnect", transports, timeout=max(timeout - 2, 1)),
        cwd=NODE_DIR,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    assert proc.stdout is not None and proc.stderr is not None
    reader = LineReader(proc.stdout)
    deadline = time.monotonic() + timeout
    try:
        first = reader.next_line(timeout=min(timeout, 15))
        if first is not None and _is_connected_phase(first):
            restart()
            reader.rest(max(deadline - time.monotonic(), 0.1))
        # else: the client failed before connecting; its result line says why.
        proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        reader.rest(1.0)
        try:
            return parse_result(reader.seen, "reconnect scenario")
        except NodeHarnessError as exc:
            raise NodeHarnessError(
                f"{exc} (exit code {proc.returncode}; stderr: {proc.stderr.read().strip()!r})"
            ) from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
