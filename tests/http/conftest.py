from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.realtime.harness import STORES, Service, serving_on


@pytest.fixture(params=STORES)
async def svc(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Service]:
    """The whole service on loopback, on each store: a SQLite file in ``tmp_path``, and a
    PostgreSQL database of its own."""
    async with serving_on(request.param, tmp_path) as service:
        yield service
