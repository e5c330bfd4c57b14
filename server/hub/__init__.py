"""A Socket.IO v5 / Engine.IO v4 server for Trio.

Public API: :class:`Hub`, :class:`Namespace`, :class:`Socket`, :class:`Handshake`,
:class:`BroadcastOperator`, and the errors :class:`ConnectRefused`, :class:`AckTimeout`,
:class:`Disconnected`.
"""

from server.hub.broadcast import BroadcastOperator
from server.hub.errors import AckTimeout, ConnectRefused, Disconnected
from server.hub.namespace import Namespace
from server.hub.server import Hub
from server.hub.socket import Handshake, Socket

__all__ = [
    "AckTimeout",
    "BroadcastOperator",
    "ConnectRefused",
    "Disconnected",
    "Handshake",
    "Hub",
    "Namespace",
    "Socket",
]
