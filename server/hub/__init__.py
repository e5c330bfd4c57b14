"""A Socket.IO v5 / Engine.IO v4 server for Trio.

Public API: :class:`Hub` and its :class:`HubConfig`, :class:`Namespace` (and
:class:`ParentNamespace`, made by ``hub.of(pattern)``), :class:`Socket`, :class:`Handshake`,
:class:`BroadcastOperator`, the adapter interface (:class:`Adapter`, :class:`LocalAdapter`),
the rate limiter (:class:`RateLimiter`, :class:`Rate`), and the errors
:class:`ConnectRefused`, :class:`EventRefused`, :class:`RecoveryDeclined`,
:class:`AckTimeout`, :class:`Disconnected`.
"""

from server.hub.adapter import Adapter, LocalAdapter, SocketLike
from server.hub.broadcast import BroadcastOperator
from server.hub.config import HubConfig
from server.hub.engine.cors import OriginPolicy
from server.hub.errors import (
    AckTimeout,
    ConnectRefused,
    Disconnected,
    EventRefused,
    RecoveryDeclined,
)
from server.hub.handshake import Handshake
from server.hub.namespace import Namespace, ParentNamespace
from server.hub.ratelimit import Rate, RateLimiter
from server.hub.server import Hub
from server.hub.socket import Socket

__all__ = [
    "AckTimeout",
    "Adapter",
    "BroadcastOperator",
    "ConnectRefused",
    "Disconnected",
    "EventRefused",
    "Handshake",
    "Hub",
    "HubConfig",
    "LocalAdapter",
    "Namespace",
    "OriginPolicy",
    "ParentNamespace",
    "Rate",
    "RateLimiter",
    "RecoveryDeclined",
    "Socket",
    "SocketLike",
]
