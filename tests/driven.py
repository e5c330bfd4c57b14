"""``tests/node/driven_client.mjs`` from trio tests: the stock socket.io-client, with
reconnection, steered and watched line by line."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from tests.node_harness import NODE_DIR, node_deps_installed, node_executable

Message = dict[str, Any]


class DrivenClient:
    """``tests/node/driven_client.mjs``: the stock client, steered and watched line by line."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.seen: list[Message] = []
        self._buffer = b""

    async def _next(self) -> Message:
        assert self.process.stdout is not None
        while b"\n" not in self._buffer:
            chunk = await self.process.stdout.receive_some(65536)
            if not chunk:
                raise AssertionError(f"the Node client exited; it said: {self.seen}")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        message: Message = json.loads(line)
        self.seen.append(message)
        return message

    async def expect(self, match: Callable[[Message], bool], timeout: float = 10.0) -> Message:
        with trio.fail_after(timeout):
            while True:
                message = await self._next()
                if match(message):
                    return message

    async def events(self, name: str, count: int, timeout: float = 10.0) -> list[list[Any]]:
        found = []
        with trio.fail_after(timeout):
            while len(found) < count:
                message = await self._next()
                if message["type"] == "event" and message["name"] == name:
                    found.append(message["args"])
        return found

    async def drain(self) -> None:
        """Read what the client reports, into ``seen``, until it exits (or is cancelled)."""
        try:
            while True:
                await self._next()
        except AssertionError:
            return  # it exited

    async def command(self, **command: Any) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send_all(json.dumps(command).encode() + b"\n")


@asynccontextmanager
async def node_client(
    url: str, transports: str, auth: dict[str, Any], rejoin: list[Any] | None = None
) -> AsyncIterator[DrivenClient]:
    node = node_executable()
    if node is None or not node_deps_installed():
        pytest.fail("node and tests/node's packages are needed: run `make install`")
    command = [node, str(NODE_DIR / "driven_client.mjs"), "--url", url]
    command += ["--transports", transports, "--auth", json.dumps(auth)]
    if rejoin is not None:
        command += ["--rejoin", json.dumps(rejoin)]
    process = await trio.lowlevel.open_process(command, stdin=-1, stdout=-1, cwd=str(NODE_DIR))
    try:
        yield DrivenClient(process)
    finally:
        process.kill()
        with trio.move_on_after(5):
            await process.wait()
