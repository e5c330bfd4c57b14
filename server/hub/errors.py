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


class EventRefused(Exception):
    """Raise from an incoming-event middleware (:meth:`Namespace.use_incoming`) to refuse
    one event: its handlers do not run.

    ``answer``, when not None, answers the event's ack if it asked for one (a client waiting
    for an answer gets one rather than a timeout). ``disconnect=True`` disconnects the socket
    from the namespace as well, as the server's ``socket.disconnect()`` does (stock clients
    do not reconnect by themselves after that).
    """

    def __init__(self, reason: str, answer: Any = None, *, disconnect: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.answer = answer
        self.disconnect = disconnect


class RecoveryDeclined(Exception):
    """Raise from a connection middleware while a client is being recovered (``socket.
    recovered`` is true) to connect it as a new socket instead (the middlewares run again for
    it): it gets none of the saved rooms, ``data`` or missed packets, which stay for a resume
    that is accepted (the session's owner) until they expire. For example when the token of
    a resumed connection names another user than before."""
