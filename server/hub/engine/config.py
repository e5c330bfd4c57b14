from __future__ import annotations

import resource
from dataclasses import dataclass


def within_descriptors(limit: int, share: int) -> int:
    """``limit`` (0: none), at most ``1/share`` of this process's file descriptor limit:
    what connections that have shown nothing yet may hold, so the rest is left for the
    connections being served."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return limit
    most = max(1, soft // share)
    return min(limit, most) if limit else most


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Settings of an Engine.IO server; times are in seconds (the handshake sends ms).

    The defaults are Node's ``engine.io`` defaults, so a stock client sees the same handshake.
    """

    path: str = "/socket.io/"
    ping_interval: float = 25.0
    ping_timeout: float = 20.0
    #: Largest message (WebSocket) or request body (polling) accepted, in bytes.
    max_payload: int = 1_000_000
    upgrade_timeout: float = 10.0
    transports: tuple[str, ...] = ("polling", "websocket")
    #: Origins allowed to use the server from a browser: ``("*",)`` allows any; same-origin
    #: requests and requests without an ``Origin`` header are always allowed.
    cors_origins: tuple[str, ...] = ()
    #: Outbound packets a session may have queued ...
    max_queue: int = 1024
    #: ... and bytes (the queued frames' size): past either, volatile packets are dropped,
    #: and a client that has not read what was written to it for ``slow_consumer_timeout``
    #: is closed as a slow consumer. A client that reads while the hub itself is behind is
    #: not: its queue may grow to ``queue_hard_limit`` times both bounds, where it is closed
    #: whatever the cause, so memory stays bounded.
    max_queue_bytes: int = 8 * 1024 * 1024
    slow_consumer_timeout: float = 10.0
    queue_hard_limit: int = 4
    #: Deadline for a closed session's clean-up (``disconnect`` handlers).
    cleanup_timeout: float = 5.0
    max_header_bytes: int = 16 * 1024
    #: A request's headers must be complete this many seconds after its first byte (after
    #: the connection opened, for its first request); otherwise 408 and the connection closes.
    header_timeout: float = 10.0
    #: A request's body must be complete this many seconds after its headers.
    body_timeout: float = 30.0
    #: A keep-alive connection with no new request in this long is closed.
    idle_timeout: float = 60.0
    #: Connections that have not completed a request yet ("handshaking"), per client address
    #: and in all: past either, the oldest of them is answered 503 and closed, so
    #: half-open connections cannot take every file descriptor. 0: no limit (the overall
    #: one is always at most half the process's file descriptor limit).
    max_handshaking_per_address: int = 128
    max_handshaking: int = 1024

    def __post_init__(self) -> None:
        if not self.path.startswith("/"):
            raise ValueError("path must start with '/'")
        if not self.path.endswith("/"):
            object.__setattr__(self, "path", self.path + "/")
        unknown = set(self.transports) - {"polling", "websocket"}
        if unknown or not self.transports:
            raise ValueError(f"transports must be polling and/or websocket, not {unknown}")
        if self.ping_interval <= 0 or self.ping_timeout <= 0:
            raise ValueError("ping_interval and ping_timeout must be positive")
        if min(self.header_timeout, self.body_timeout, self.idle_timeout) <= 0:
            raise ValueError("header_timeout, body_timeout and idle_timeout must be positive")
        if min(self.max_queue, self.max_queue_bytes) <= 0:
            raise ValueError("max_queue and max_queue_bytes must be positive")
        if self.slow_consumer_timeout < 0 or self.queue_hard_limit < 1:
            raise ValueError("slow_consumer_timeout must be >= 0 and queue_hard_limit >= 1")
        if min(self.max_handshaking_per_address, self.max_handshaking) < 0:
            raise ValueError("max_handshaking_per_address and max_handshaking must be >= 0")
