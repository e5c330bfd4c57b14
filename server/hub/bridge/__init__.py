"""The bridge between processes: Redis pub/sub in the wire format of
``@socket.io/redis-adapter`` v8 (see :mod:`server.hub.bridge.wire`)."""

from server.hub.bridge.adapter import RedisAdapter
from server.hub.bridge.bridge import Bridge

__all__ = ["Bridge", "RedisAdapter"]
