"""Sans-I/O wire codecs: Engine.IO v4 packets and payloads, Socket.IO v5 packets.

Nothing here touches a socket or Trio: bytes and strings in, typed packets out (and back),
so every rule of the two specifications can be tested with literals.
"""

from server.hub.protocol.errors import ProtocolError

__all__ = ["ProtocolError"]
