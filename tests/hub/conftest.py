from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from server.hub import Hub


@asynccontextmanager
async def serving(hub: Hub, port: int = 0) -> AsyncIterator[str]:
    """Serve ``hub`` on 127.0.0.1 for the body of the ``async with``; yields its URL."""
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(hub.serve, "127.0.0.1", port)
        bound = listeners[0].socket.getsockname()[1]
        try:
            yield f"http://127.0.0.1:{bound}"
        finally:
            nursery.cancel_scope.cancel()
