"""The hub's settings: one typed object, holding the engine's, passed down as it is.

``Hub(max_queue=8)`` and ``Hub(HubConfig.of(max_queue=8))`` are the same: keyword options
name a field of :class:`HubConfig` or of :class:`~server.hub.engine.EngineConfig`, and land
in the one that has it. Times are in seconds; the defaults are those of Node's server.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from server.hub.engine import EngineConfig
from server.hub.protocol.socketio import DEFAULT_MAX_ATTACHMENTS

_ENGINE_FIELDS = frozenset(f.name for f in dataclasses.fields(EngineConfig))


@dataclass(frozen=True, slots=True)
class HubConfig:
    #: Everything about Engine.IO: path, CORS, heartbeat, payload and queue limits, reads.
    engine: EngineConfig = field(default_factory=EngineConfig)
    #: Seconds a new connection has to join a namespace.
    connect_timeout: float = 45.0
    #: Seconds an ``emit_with_ack`` waits by default (``inf``: for ever).
    ack_timeout: float = 10.0
    #: ``async`` handlers running at once per connection; past it the reader waits.
    max_handlers: int = 32
    #: Binary attachments one packet may announce.
    max_attachments: int = DEFAULT_MAX_ATTACHMENTS
    #: Connection state recovery (see :mod:`server.hub.recovery`): a client that lost its
    #: connection gets its id, rooms, ``data`` and missed events back if it returns within
    #: ``max_disconnection_duration`` and what it missed is still among the last
    #: ``recovery_buffer`` stored packets (and ``recovery_buffer_bytes``). Off by default,
    #: as in Node: stored events carry their offset as an extra last argument.
    connection_state_recovery: bool = False
    max_disconnection_duration: float = 120.0
    recovery_buffer: int = 10_000
    recovery_buffer_bytes: int = 32 * 1024 * 1024
    #: As in Node, a recovered socket skips the connection middlewares; turn it off where
    #: they check credentials, which must be valid again when a client comes back.
    recovery_skips_middlewares: bool = True
    #: Connections that have not joined a namespace yet (no CONNECT), per client address
    #: and in all; past either the oldest is closed. 0: no limit.
    max_unjoined_per_address: int = 128
    max_unjoined: int = 1024

    def __post_init__(self) -> None:
        if self.connect_timeout <= 0 or self.ack_timeout <= 0:
            raise ValueError("connect_timeout and ack_timeout must be positive")
        if self.max_handlers < 1:
            raise ValueError("max_handlers must be at least 1")

    @classmethod
    def of(cls, **options: Any) -> HubConfig:
        """A configuration from keyword options (see the module's documentation)."""
        return cls().replace(**options)

    def replace(self, **options: Any) -> HubConfig:
        """This configuration with some options changed, in whichever part they belong."""
        engine = {k: v for k, v in options.items() if k in _ENGINE_FIELDS}
        hub = {k: v for k, v in options.items() if k not in _ENGINE_FIELDS}
        unknown = set(hub) - {f.name for f in dataclasses.fields(HubConfig)}
        if unknown:
            raise TypeError(f"unknown hub options: {', '.join(sorted(unknown))}")
        if hub.get("ack_timeout", 0.0) is None:
            hub["ack_timeout"] = math.inf
        if engine:
            hub["engine"] = dataclasses.replace(hub.get("engine", self.engine), **engine)
        return dataclasses.replace(self, **hub)
