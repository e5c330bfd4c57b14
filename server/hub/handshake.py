"""The request that opened a connection, as handlers see it (``socket.handshake``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Handshake:
    """The request that opened the connection, and the CONNECT packet's ``auth`` payload."""

    auth: dict[str, Any]
    query: dict[str, str]
    headers: dict[str, str]
    #: The peer's IP address (the proxy's, behind one: see ``headers["x-forwarded-for"]``).
    address: str | None
    time: float
    url: str
    secure: bool = False
