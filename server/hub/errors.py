from __future__ import annotations

from typing import Any


class ConnectRefused(Exception):
    """Raise from a middleware to refuse a connection.

    The client receives CONNECT_ERROR ``{"message": message, "data": data}``: socket.io-client
    hands both to its ``connect_error`` listeners as ``err.message`` and ``err.data``.
    """

    def __init__(self, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data


class AckTimeout(TimeoutError):
    """The client did not acknowledge an emit in time."""


class Disconnected(ConnectionError):
    """The socket disconnected while we were waiting for its acknowledgement."""
