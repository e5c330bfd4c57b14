"""A Socket.IO v5 / Engine.IO v4 server for Trio.

Public API: :class:`Hub`, :class:`Namespace`, :class:`Socket`, :class:`Handshake`,
:class:`BroadcastOperator`, the rate limiter (:class:`RateLimiter`, :class:`Rate`), and the
errors :class:`ConnectRefused`, :class:`EventRefused`, :class:`RecoveryDeclined`,
:class:`AckTimeout`, :class:`Disconnected`.
"""

from server.hub.broadcast import BroadcastOperator
from server.hub.errors import (
    AckTimeout,
    ConnectRefused,
    Disconnected,
    EventRefused,
    RecoveryDeclined,
)
from server.hub.namespace import Namespace
from server.hub.ratelimit import Rate, RateLimiter
from server.hub.server import Hub
from server.hub.socket import Handshake, Socket

__all__ = [
    "AckTimeout",
    "BroadcastOperator",
    "ConnectRefused",
    "Disconnected",
    "EventRefused",
    "Handshake",
    "Hub",
    "Namespace",
    "Rate",
    "RateLimiter",
    "RecoveryDeclined",
    "Socket",
]
