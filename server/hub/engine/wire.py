"""Outbound packets encoded once and shared by every recipient.

A broadcast to a thousand clients builds one :class:`Wire`; each WebSocket recipient writes the
same frame bytes and each polling recipient the records cut from those same bytes.
Server-to-client WebSocket frames are unmasked, so the bytes are identical for all.

A wire holds one encoding only, the frames, encoded when it is built: memory is one copy of
each packet (what the outbound queues and the recovery buffer count, in bytes), and a packet
that cannot be encoded fails where it is made, in the task that sends it, never in the
writer or the poll of a connection it was meant for.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator, Sequence

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


def _frame_of(packet: eio.Packet) -> bytes:
    encoded = eio.encode_frame(packet)
    if isinstance(encoded, bytes):
        return ws_frame(encoded, OP_BINARY)
    return ws_frame(encoded.encode("utf-8"), OP_TEXT)


def iter_frames(frames: bytes) -> Iterator[tuple[int, memoryview]]:
    """``(opcode, payload)`` of each unmasked frame in ``frames`` (as :func:`ws_frame` makes
    them)."""
    view = memoryview(frames)
    i, end = 0, len(frames)
    while i < end:
        opcode = view[i] & 0x0F
        n = view[i + 1] & 0x7F
        i += 2
        if n == 126:
            n = int.from_bytes(view[i : i + 2], "big")
            i += 2
        elif n == 127:
            n = int.from_bytes(view[i : i + 8], "big")
            i += 8
        yield opcode, view[i : i + n]
        i += n


class Wire:
    """A sequence of Engine.IO packets, kept as their WebSocket frames."""

    __slots__ = ("count", "frames", "is_close")

    def __init__(self, packets: Sequence[eio.Packet]) -> None:
        #: All packets as consecutive WebSocket frames: the one encoding kept.
        self.frames = (
            _frame_of(packets[0])
            if len(packets) == 1
            else b"".join(_frame_of(packet) for packet in packets)
        )
        #: How many Engine.IO packets (messages, for the counters) it holds.
        self.count = len(packets)
        self.is_close = len(packets) == 1 and packets[0].type is eio.PacketType.CLOSE

    @classmethod
    def messages(cls, messages: Sequence[str | bytes]) -> Wire:
        return cls([eio.message(m) for m in messages])

    @property
    def nbytes(self) -> int:
        """What it costs to hold (and to write): the size of its frames."""
        return len(self.frames)

    def records(self) -> Iterator[bytes]:
        """The packets as long-polling records, UTF-8 (joined by the caller with ``\\x1e``):
        a text frame's payload is the record itself, a binary one becomes ``b`` + base64."""
        for opcode, payload in iter_frames(self.frames):
            if opcode == OP_BINARY:
                yield b"b" + base64.b64encode(payload)
            else:
                yield bytes(payload)


PING = Wire([eio.PING])
NOOP = Wire([eio.NOOP])
CLOSE = Wire([eio.CLOSE])
