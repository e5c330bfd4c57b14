"""The bridge between processes: Redis pub/sub in the wire format of
``@socket.io/redis-adapter`` v8 (see :mod:`server.hub.bridge.wire`).

:class:`Bridge` is what an application uses; underneath, a :class:`RedisAdapter` per
namespace (the cluster around the in-memory adapter) and one :class:`RedisDriver`.
"""

from __future__ import annotations

from server.hub.bridge.adapter import RedisAdapter
from server.hub.bridge.bridge import Bridge
from server.hub.bridge.driver import RedisDriver

__all__ = ["Bridge", "RedisAdapter", "RedisDriver"]
