from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bridge.redis_server import RedisServer, redis_server_executable


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A ``redis-server`` of the test's own on a free loopback port, killed afterwards."""
    if redis_server_executable() is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()
