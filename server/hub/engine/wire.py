"""Outbound packets encoded once and shared by every recipient.

A broadcast to a thousand clients builds one :class:`Wire`; each WebSocket recipient writes the
same frame bytes and each polling recipient the same text records. Server-to-client WebSocket
frames are unmasked, so the bytes are identical for all.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from server.hub.protocol import engineio as eio

OP_TEXT = 0x1
OP_BINARY = 0x2


def ws_frame(payload: bytes, opcode: int) -> bytes:
    """One final, unmasked WebSocket frame (RFC 6455 section 5.2)."""
    n = len(payload)
    first = 0x80 | opcode
    if n < 126:
        header = bytes((first, n))
    elif n < 1 << 16:
        header = struct.pack("!BBH", first, 126, n)
    else:
        header = struct.pack("!BBQ", first, 127, n)
    return header + payload


class Wire:
    """A sequence of Engine.IO packets with their WebSocket and polling encodings cached."""

    __slots__ = ("_frames", "_records", "packets")

    def __init__(self, packets: Sequence[eio.Packet]) -> None:
        self.packets = tuple(packets)
        self._frames: bytes | None = None
        self._records: list[str] | None = None

    @classmethod
    def messages(cls, messages: Sequence[str | bytes]) -> Wire:
        return cls([eio.message(m) for m in messages])

    @property
    def frames(self) -> bytes:
        """All packets as consecutive WebSocket frames."""
        if self._frames is None:
            parts = []
            for packet in self.packets:
                encoded = eio.encode_frame(packet)
                if isinstance(encoded, bytes):
                    parts.append(ws_frame(encoded, OP_BINARY))
                else:
                    parts.append(ws_frame(encoded.encode(), OP_TEXT))
            self._frames = b"".join(parts)
        return self._frames

    @property
    def records(self) -> list[str]:
        """All packets as long-polling records (joined by the caller with ``\\x1e``)."""
        if self._records is None:
            self._records = [eio.encode_text(p) for p in self.packets]
        return self._records

    @property
    def is_close(self) -> bool:
        return len(self.packets) == 1 and self.packets[0].type is eio.PacketType.CLOSE


PING = Wire([eio.PING])
NOOP = Wire([eio.NOOP])
CLOSE = Wire([eio.CLOSE])
