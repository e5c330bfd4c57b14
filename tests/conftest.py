"""Shared fixtures: the example servers, each started in the test's nursery on a free port.

``echo_server`` is the Engine.IO echo server (``examples/engineio_echo.py``, path
``/engine.io/``) and ``reference_server`` the Socket.IO reference server
(``examples/socketio_reference.py``, path ``/socket.io/``). Both listen on 127.0.0.1 only,
on port 0, and yield their base URL, ``http://127.0.0.1:PORT``; they stop when the test's
nursery is cancelled at the end of the test.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import trio

from examples import engineio_echo, socketio_reference
from server.hub.engine import EngineServer

HOST = "127.0.0.1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    """With ``NO_SKIPS=1`` (set by ``.ci/run``, which installs node, redis-server, nginx and
    chromium), a test that would skip for want of one of them fails instead."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("NO_SKIPS") == "1" and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"skipped, but NO_SKIPS=1 forbids it: {report.longrepr}"


def _base_url(listeners: list[trio.SocketListener]) -> str:
    port = listeners[0].socket.getsockname()[1]
    return f"http://{HOST}:{port}"


@pytest.fixture
async def echo_server(nursery: trio.Nursery) -> AsyncIterator[str]:
    """The Engine.IO echo server (ping 300 ms / timeout 200 ms, maxPayload 1e6, CORS ``*``)."""
    engine = EngineServer(engineio_echo.CONFIG, engineio_echo.Echo)
    listeners = await nursery.start(engine.serve, HOST, 0)
    yield _base_url(listeners)


@pytest.fixture
async def reference_server(nursery: trio.Nursery) -> AsyncIterator[str]:
    """The Socket.IO reference server (same timings, connect timeout 1 s, CORS ``*``)."""
    hub = socketio_reference.build()
    listeners = await nursery.start(hub.serve, HOST, 0)
    yield _base_url(listeners)
