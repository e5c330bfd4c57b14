"""The bridge between processes: Redis pub/sub in the wire format of
``@socket.io/redis-adapter`` v8 (see :mod:`server.hub.bridge.wire`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from server.hub.bridge.adapter import RedisAdapter
from server.hub.bridge.bridge import Bridge

if TYPE_CHECKING:
    from server.hub.server import Hub


def bridge_of(hub: Hub) -> Bridge | None:
    """The bridge ``hub`` runs on, or None for a process alone (for /healthz, /metrics)."""
    adapter = hub.main.adapter
    return adapter.bridge if isinstance(adapter, RedisAdapter) else None


__all__ = ["Bridge", "RedisAdapter", "bridge_of"]
