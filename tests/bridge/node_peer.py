"""The Node side of the interop tests: ``tests/node_redis`` (Socket.IO on
``@socket.io/redis-adapter`` or ``@socket.io/redis-streams-adapter``, and
``@socket.io/redis-emitter``), as subprocesses."""

from __future__ import annotations

import itertools
import json
import subprocess
from pathlib import Path
from typing import Any, Literal

import pytest
import trio

from tests.node_harness import LineReader, free_port, node_executable, stop_process

NODE_REDIS_DIR = Path(__file__).resolve().parents[1] / "node_redis"
NODE_PACKAGES = (
    "socket.io",
    "@socket.io/redis-adapter",
    "@socket.io/redis-streams-adapter",
    "@socket.io/redis-emitter",
    "redis",
)

#: ``pubsub``: ``@socket.io/redis-adapter``; ``streams``: ``@socket.io/redis-streams-adapter``
#: with connection state recovery on.
Adapter = Literal["pubsub", "streams"]


def node_redis_ready() -> None:
    """Fail (not skip) when the npm packages are missing: `make install` puts them there."""
    if node_executable() is None:
        pytest.skip("node is not installed")
    modules = NODE_REDIS_DIR / "node_modules"
    for package in NODE_PACKAGES:
        if not (modules / package).is_dir():
            pytest.fail(f"{package} missing: run `make install` (npm ci in tests/node_redis)")


class NodePeer:
    """``peer.mjs``: commands as JSON lines on stdin, answers as JSON lines on stdout.

    `adapter` picks the Redis adapter (see :data:`Adapter`); `recovery_ms` is how long a
    disconnected client's session is kept for connection state recovery (``streams`` only).
    """

    def __init__(
        self, redis_url: str, adapter: Adapter = "pubsub", recovery_ms: int = 120000
    ) -> None:
        node = node_executable()
        assert node is not None
        self.adapter = adapter
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [node, "peer.mjs", "--port", str(self.port), "--redis", redis_url]
        command += ["--adapter", adapter, "--recovery-ms", str(recovery_ms)]
        self.proc = subprocess.Popen(
            command,
            cwd=NODE_REDIS_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        assert self.proc.stdout is not None
        self.reader = LineReader(self.proc.stdout)
        self.events: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    def _next(self, timeout: float) -> dict[str, Any]:
        line = self.reader.next_line(timeout)
        if line is None:
            raise RuntimeError(f"node peer exited ({self.proc.poll()})")
        value: dict[str, Any] = json.loads(line)
        return value

    def wait_ready(self, timeout: float = 15.0) -> None:
        while "ready" not in self._next(timeout):
            pass

    def _call(self, cmd: str, timeout: float, fields: dict[str, Any]) -> Any:
        request_id = next(self._ids)
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"id": request_id, "cmd": cmd, **fields}) + "\n")
        self.proc.stdin.flush()
        while True:
            message = self._next(timeout)
            if message.get("id") == request_id:
                if "error" in message:
                    raise RuntimeError(f"node peer {cmd}: {message['error']}")
                return message.get("result")
            if "event" in message:
                self.events.append(message)

    async def call(self, cmd: str, timeout: float = 10.0, **fields: Any) -> Any:
        return await trio.to_thread.run_sync(self._call, cmd, timeout, fields)

    async def next_event(self, timeout: float = 10.0) -> dict[str, Any]:
        if self.events:
            return self.events.pop(0)
        return await trio.to_thread.run_sync(self._next, timeout)

    def stop(self) -> None:
        stop_process(self.proc)


def emit_with_emitter(redis_url: str, spec: dict[str, Any]) -> None:
    node = node_executable()
    assert node is not None
    done = subprocess.run(
        [node, "emit.mjs", "--redis", redis_url, "--json", json.dumps(spec)],
        cwd=NODE_REDIS_DIR,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert '"emitted":true' in done.stdout, (done.stdout, done.stderr)
