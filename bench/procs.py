"""The processes a bench run owns: the server under test and the client workers.

Both are context managers that kill what they started, whatever happens.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from array import array
from collections.abc import Iterable
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Protocol

import psutil

from bench import clients

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = ROOT / "bench" / "node"
HOST = "127.0.0.1"
SERVER_NAMES = ("trio", "node", "pysio", "trio1")
#: What runs without ``--servers``; ``trio1`` (ours, the hub sharing its port with an HTTP
#: app, as ``python -m server`` runs) is asked for by name.
DEFAULT_SERVERS = ("trio", "node", "pysio")
LABELS = {
    "trio": "ours (Trio hub)",
    "node": "Node socket.io",
    "pysio": "python-socketio",
    "trio1": "ours, one port with an app",
}


class BenchError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def node_executable() -> str:
    exe = os.environ.get("NODE") or shutil.which("node")
    if exe is None:
        raise BenchError("node is not installed (or set $NODE)")
    return exe


def node_deps_installed(*packages: str) -> bool:
    return all((NODE_DIR / "node_modules" / p).is_dir() for p in packages or ("socket.io",))


def server_command(name: str, port: int) -> list[str]:
    if name in ("trio", "trio1"):
        command = [sys.executable, "-m", "bench.servers.trio_hub", "--host", HOST, "--port"]
        return [*command, str(port), *(["--with-app"] if name == "trio1" else [])]
    if name == "pysio":
        return [
            sys.executable,
            "-m",
            "bench.servers.pysio_server",
            "--host",
            HOST,
            "--port",
            str(port),
        ]
    if name == "node":
        if not node_deps_installed():
            raise BenchError(
                f"Node dependencies missing: run `make bench` or `npm ci` in {NODE_DIR}"
            )
        return [
            node_executable(),
            str(NODE_DIR / "server.mjs"),
            "--host",
            HOST,
            "--port",
            str(port),
        ]
    raise BenchError(f"unknown server {name!r}")


def cpu_seconds(pids: Iterable[int | None]) -> float:
    """User and system CPU seconds of the live processes among ``pids``."""
    total = 0.0
    for pid in pids:
        if pid is None:
            continue
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


class _StopsOnExit:
    """A context manager whose exit stops what it started, whatever happened."""

    def stop(self) -> None:
        raise NotImplementedError

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class Server(_StopsOnExit):
    """One server under test, started on a free loopback port."""

    def __init__(self, name: str, start_timeout: float = 30.0) -> None:
        self.name = name
        self.port = free_port()
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen[str] | None = None
        self.ps: psutil.Process | None = None
        self.banner = ""
        self.lines: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()

    def __enter__(self) -> Server:
        self.proc = subprocess.Popen(
            server_command(self.name, self.port),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + self.start_timeout
        try:
            while True:
                try:
                    line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    raise BenchError(f"{self.name}: no 'listening' line in time") from None
                if line is None:
                    raise BenchError(f"{self.name} exited: {''.join(self.lines)[-2000:]}")
                if line.startswith("listening"):
                    self.banner = line.strip()
                    break
        except BaseException:
            self.stop()
            raise
        self.ps = psutil.Process(self.proc.pid)
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=8)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)

    def tree(self) -> list[psutil.Process]:
        assert self.ps is not None
        return [self.ps, *self.ps.children(recursive=True)]

    def rss(self) -> int:
        """Resident memory of the server's process tree, bytes."""
        total = 0
        for p in self.tree():
            with contextlib.suppress(psutil.NoSuchProcess):
                total += p.memory_info().rss
        return total

    def cpu(self) -> float:
        """CPU seconds (user + system) used by the server's process tree so far."""
        total = 0.0
        for p in self.tree():
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return total

    def established(self) -> int:
        """TCP connections the server holds open on its port."""
        count = 0
        for p in self.tree():
            try:
                conns = p.net_connections(kind="tcp")
            except psutil.NoSuchProcess:
                continue
            count += sum(
                c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == self.port
                for c in conns
            )
        return count

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Workers(_StopsOnExit):
    """``n`` client processes, each a :class:`bench.clients.Worker` on the server's port."""

    def __init__(self, n: int, port: int) -> None:
        self.n = n
        self.port = port
        self.procs: list[multiprocessing.process.BaseProcess] = []
        self.conns: list[Connection] = []

    def __enter__(self) -> Workers:
        ctx = multiprocessing.get_context("spawn")
        try:
            for _ in range(self.n):
                parent, child = ctx.Pipe()
                proc = ctx.Process(
                    target=clients.worker_main, args=(child, HOST, self.port), daemon=True
                )
                proc.start()
                child.close()
                self.procs.append(proc)
                self.conns.append(parent)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.send(("quit", {}))
        deadline = time.monotonic() + 5
        for proc in self.procs:
            proc.join(timeout=max(0.1, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
        for conn in self.conns:
            conn.close()
        self.procs = []
        self.conns = []

    def call(self, name: str, kwargs_list: list[dict[str, Any]], timeout: float) -> list[Any]:
        """Send one command to each worker (its own kwargs) and wait for every reply."""
        for conn, kwargs in zip(self.conns, kwargs_list, strict=True):
            conn.send((name, kwargs))
        replies = []
        deadline = time.monotonic() + timeout
        for conn, proc in zip(self.conns, self.procs, strict=True):
            while not conn.poll(0.2):
                if not proc.is_alive():
                    raise BenchError(f"client worker {proc.pid} died during {name}")
                if time.monotonic() > deadline:
                    raise BenchError(f"client worker {proc.pid}: no reply to {name} in time")
            replies.append(conn.recv())
        return replies

    def call_all(self, name: str, timeout: float = 60.0, **kwargs: Any) -> list[Any]:
        return self.call(name, [kwargs] * self.n, timeout)

    def cpu(self) -> float:
        return cpu_seconds(proc.pid for proc in self.procs)


class Receivers(Protocol):
    """What :func:`bench.scenarios.measure` asks of the receiving clients: :class:`Workers`
    or :class:`NodeWsClients`."""

    @property
    def n(self) -> int: ...

    def call_all(self, name: str, timeout: float = 60.0, **kwargs: Any) -> list[Any]: ...

    def cpu(self) -> float: ...


class NodeWsClients(_StopsOnExit):
    """``clients`` WebSocket clients of the ``ws`` package, spread over ``procs`` Node
    processes (``bench/node/ws_clients.mjs``), connected and joined to ``room`` on entry.

    Each process obeys JSON lines on its stdin and answers each with one JSON line; the
    commands and replies are those of :class:`bench.clients.Worker` that ``measure`` uses
    (``record``, ``cutoff``, ``received``, ``collect``), and ``collect``'s latencies are
    turned into the same bytes (``array("q")``, µs) as the Python workers send.
    """

    def __init__(
        self,
        procs: int,
        port: int,
        clients: int,
        prefix: str,
        room: str,
        inflight: int = 200,
        timeout: float = 120.0,
    ) -> None:
        self.n = procs
        self.port = port
        self.sizes = split(clients, procs)
        self.prefix = prefix
        self.room = room
        self.inflight = inflight
        self.timeout = timeout
        self.procs: list[subprocess.Popen[str]] = []
        self._lines: list[queue.Queue[str | None]] = []
        self.ready = 0
        self.failed = 0
        self.errors: dict[str, int] = {}
        self.seconds = 0.0

    def __enter__(self) -> NodeWsClients:
        if not node_deps_installed("ws"):
            raise BenchError(f"Node dependencies missing: run `npm ci` in {NODE_DIR}")
        try:
            per_proc = max(1, self.inflight // self.n)
            t0 = time.monotonic()
            for i, size in enumerate(self.sizes):
                proc = subprocess.Popen(
                    [
                        node_executable(),
                        str(NODE_DIR / "ws_clients.mjs"),
                        *("--host", HOST, "--port", str(self.port), "--n", str(size)),
                        *("--prefix", f"{self.prefix}{i}-", "--room", self.room),
                        *("--inflight", str(per_proc), "--timeout", str(self.timeout)),
                    ],
                    cwd=NODE_DIR,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    start_new_session=True,
                )
                lines: queue.Queue[str | None] = queue.Queue()
                assert proc.stdout is not None
                threading.Thread(target=_pump_lines, args=(proc.stdout, lines), daemon=True).start()
                self.procs.append(proc)
                self._lines.append(lines)
            for i in range(self.n):
                reply = self._reply(i, "ready", self.timeout + 30)
                self.ready += reply["ready"]
                self.failed += reply["failed"]
                for reason, count in reply.get("errors", {}).items():
                    self.errors[reason] = self.errors.get(reason, 0) + count
            self.seconds = time.monotonic() - t0
        except BaseException:
            self.stop()
            raise
        return self

    def _reply(self, i: int, name: str, timeout: float) -> Any:
        proc = self.procs[i]
        try:
            line = self._lines[i].get(timeout=timeout)
        except queue.Empty:
            raise BenchError(f"node ws clients {proc.pid}: no reply to {name} in time") from None
        if line is None:
            raise BenchError(f"node ws clients {proc.pid} exited during {name}")
        return json.loads(line)

    def call_all(self, name: str, timeout: float = 60.0, **kwargs: Any) -> list[Any]:
        line = json.dumps({"cmd": name, **kwargs}) + "\n"
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write(line)
            proc.stdin.flush()
        deadline = time.monotonic() + timeout
        replies = []
        for i in range(self.n):
            reply = self._reply(i, name, max(0.1, deadline - time.monotonic()))
            if "latencies" in reply:
                reply["latencies"] = array("q", reply["latencies"]).tobytes()
            replies.append(reply)
        return replies

    def cpu(self) -> float:
        return cpu_seconds(proc.pid for proc in self.procs)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None and proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                    proc.stdin.close()
        deadline = time.monotonic() + 5
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        self.procs = []
        self._lines = []


def _pump_lines(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def split(total: int, parts: int) -> list[int]:
    """``total`` spread over ``parts`` as evenly as integers allow."""
    base, extra = divmod(total, parts)
    return [base + (i < extra) for i in range(parts)]
