from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.realtime.harness import Service, serving


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[Service]:
    """The whole service on loopback, with its database in ``tmp_path``."""
    async with serving(tmp_path) as service:
        yield service
