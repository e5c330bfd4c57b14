"""Engine.IO v4 packets, as WebSocket frames and as HTTP long-polling payloads.

A packet is one type digit followed by its data. Over WebSocket each packet is one frame and a
binary message is the frame's raw bytes with no type digit. Over long-polling, packets are
joined by the record separator ``\\x1e`` and a binary message is ``b`` plus base64.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import IntEnum

from server.hub.protocol.errors import ProtocolError

SEPARATOR = "\x1e"
PROTOCOL_VERSION = 4


class PacketType(IntEnum):
    OPEN = 0
    CLOSE = 1
    PING = 2
    PONG = 3
    MESSAGE = 4
    UPGRADE = 5
    NOOP = 6


@dataclass(frozen=True, slots=True)
class Packet:
    """One Engine.IO packet. ``data`` is ``bytes`` only for a binary MESSAGE."""

    type: PacketType
    data: str | bytes = ""

    @property
    def is_binary(self) -> bool:
        return isinstance(self.data, bytes)


_TYPE_BY_CHAR = {str(t.value): t for t in PacketType}

PING = Packet(PacketType.PING)
PONG = Packet(PacketType.PONG)
NOOP = Packet(PacketType.NOOP)
CLOSE = Packet(PacketType.CLOSE)
UPGRADE = Packet(PacketType.UPGRADE)


def message(data: str | bytes) -> Packet:
    return Packet(PacketType.MESSAGE, data)


def encode_text(packet: Packet) -> str:
    """The text form of a packet: type digit + data, or ``b`` + base64 for a binary message."""
    if isinstance(packet.data, bytes):
        return "b" + base64.b64encode(packet.data).decode("ascii")
    return f"{packet.type.value}{packet.data}"


def encode_frame(packet: Packet) -> str | bytes:
    """The WebSocket form: text packets as text frames, binary messages as raw bytes."""
    if isinstance(packet.data, bytes):
        return packet.data
    return f"{packet.type.value}{packet.data}"


def decode_text(text: str) -> Packet:
    """Decode one packet in text form (a WebSocket text frame or one polling record)."""
    if not text:
        raise ProtocolError("empty packet")
    head = text[0]
    if head == "b":
        try:
            return Packet(PacketType.MESSAGE, base64.b64decode(text[1:], validate=True))
        except ValueError as exc:  # binascii.Error, or non-ASCII text
            raise ProtocolError(f"invalid base64 in binary packet: {exc}") from None
    packet_type = _TYPE_BY_CHAR.get(head)
    if packet_type is None:
        raise ProtocolError(f"unknown packet type {head!r}")
    return Packet(packet_type, text[1:])


def decode_frame(frame: str | bytes) -> Packet:
    """Decode one WebSocket frame: a binary frame is a binary message as it is."""
    if isinstance(frame, bytes | bytearray | memoryview):
        return Packet(PacketType.MESSAGE, bytes(frame))
    return decode_text(frame)


def encode_payload(packets: Iterable[Packet]) -> str:
    """Join packets into one long-polling response body."""
    return SEPARATOR.join(encode_text(p) for p in packets)


def decode_payload(body: str) -> list[Packet]:
    """Split a long-polling request body into packets; any malformed record fails the whole."""
    return list(iter_payload(body))


def iter_payload(body: str) -> Iterator[Packet]:
    """The packets of a long-polling request body, decoded one at a time as they are taken.

    A body may hold hundreds of thousands of packets: nothing is split or decoded ahead of
    the consumer, which can deliver each one (and yield to others) as it goes. A malformed
    record raises :class:`ProtocolError` when it is reached.
    """
    if not body:
        raise ProtocolError("empty payload")
    start = 0
    while True:
        end = body.find(SEPARATOR, start)
        if end == -1:
            yield decode_text(body[start:])
            return
        yield decode_text(body[start:end])
        start = end + 1
