"""Socket.IO v5 packets: ``<type>[<attachments>-][<namespace>,][<ack id>][<JSON data>]``.

Binary data travels as placeholders ``{"_placeholder": true, "num": n}`` in the JSON, followed
by one Engine.IO binary message per attachment. :func:`encode` splits a packet that carries
``bytes`` into that form; :class:`Decoder` puts attachments back in their places.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from server.hub.protocol import jsontext
from server.hub.protocol.errors import ProtocolError

#: Event names with a meaning of their own in the stock clients; a peer may not send them.
RESERVED_EVENTS = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
)

#: Attachments one packet may announce, so a peer cannot make us wait for a million buffers.
DEFAULT_MAX_ATTACHMENTS = 64


class PacketType(IntEnum):
    CONNECT = 0
    DISCONNECT = 1
    EVENT = 2
    ACK = 3
    CONNECT_ERROR = 4
    BINARY_EVENT = 5
    BINARY_ACK = 6


_TYPE_BY_CHAR = {str(t.value): t for t in PacketType}
#: Longest ack id accepted: JavaScript numbers are exact up to 2**53 - 1 (16 digits).
MAX_ACK_ID = 2**53 - 1

_BINARY_OF = {PacketType.EVENT: PacketType.BINARY_EVENT, PacketType.ACK: PacketType.BINARY_ACK}
_PLAIN_OF = {v: k for k, v in _BINARY_OF.items()}


@dataclass(slots=True)
class Packet:
    """One Socket.IO packet with its binary attachments already in place.

    ``type`` is always the plain EVENT / ACK here: whether it goes out as BINARY_EVENT or
    BINARY_ACK is decided by :func:`encode` from the data itself.
    """

    type: PacketType
    nsp: str = "/"
    data: Any = None
    id: int | None = None
    #: How the packet came in: BINARY_EVENT / BINARY_ACK keep their type for the record.
    binary: bool = field(default=False, compare=False)


def _dumps(value: Any, default: Callable[[Any], Any] | None = None) -> str:
    # a lone surrogate a client sent (as a JSON escape) goes back out as that escape
    try:
        return jsontext.dumps(value, default=default)
    except ValueError as exc:  # NaN / Infinity have no JSON form
        raise TypeError(f"cannot send {value!r} as JSON: {exc}") from None


class _Binary(Exception):
    """The JSON encoder met binary data: the packet needs attachments."""


def _binary_or_error(value: Any) -> Any:
    """``default`` of the first, optimistic encoding: JSON has no form for anything it
    calls this with; binary makes a packet with attachments, the rest is an error."""
    if isinstance(value, bytes | bytearray | memoryview):
        raise _Binary
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def has_binary(value: Any) -> bool:
    if isinstance(value, bytes | bytearray | memoryview):
        return True
    if isinstance(value, list | tuple):
        return any(has_binary(v) for v in value)
    if isinstance(value, dict):
        return any(has_binary(v) for v in value.values())
    return False


def _deconstruct(value: Any, buffers: list[bytes]) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        buffers.append(bytes(value))
        return {"_placeholder": True, "num": len(buffers) - 1}
    if isinstance(value, list | tuple):
        return [_deconstruct(v, buffers) for v in value]
    if isinstance(value, dict):
        return {k: _deconstruct(v, buffers) for k, v in value.items()}
    return value


def encode(packet: Packet) -> list[str | bytes]:
    """Encode a packet into Engine.IO messages: one text message, then its attachments."""
    packet_type = packet.type
    data = packet.data
    buffers: list[bytes] = []
    if "," in packet.nsp:
        raise ValueError(f"a namespace cannot contain a comma: {packet.nsp!r}")
    text = None
    if data is not None:
        if packet_type in _BINARY_OF:
            # encoded as plain JSON first: the C encoder finds binary data on its way (it
            # calls the default for it), where a walk of the value in Python cost as much
            # as the encoding itself
            try:
                text = _dumps(data, _binary_or_error)
            except _Binary:
                data = _deconstruct(data, buffers)
                packet_type = _BINARY_OF[packet_type]
                text = _dumps(data)
        else:
            text = _dumps(data)
    parts = [str(packet_type.value)]
    if buffers:
        parts.append(f"{len(buffers)}-")
    if packet.nsp != "/":
        parts.append(packet.nsp + ",")
    if packet.id is not None:
        parts.append(str(packet.id))
    if text is not None:
        parts.append(text)
    return ["".join(parts), *buffers]


def _valid_payload(packet_type: PacketType, data: Any, ack_id: int | None, present: bool) -> bool:
    if packet_type is PacketType.CONNECT:
        return not present or isinstance(data, dict)
    if packet_type is PacketType.DISCONNECT:
        return not present
    if packet_type is PacketType.CONNECT_ERROR:
        return isinstance(data, str | dict)
    if packet_type in (PacketType.EVENT, PacketType.BINARY_EVENT):
        if not isinstance(data, list) or not data:
            return False
        name = data[0]
        if isinstance(name, bool):
            return False
        if isinstance(name, int | float):
            return True
        return isinstance(name, str) and name not in RESERVED_EVENTS
    # ACK / BINARY_ACK: an array answering a known id
    return isinstance(data, list) and ack_id is not None


@dataclass(slots=True)
class _Pending:
    packet: Packet
    expected: int
    buffers: list[bytes]


class Decoder:
    """Turns Engine.IO messages back into Socket.IO packets.

    A text message either is a complete packet or announces attachments; the binary messages
    that follow are collected until the packet is whole. Anything out of order or malformed
    raises :class:`ProtocolError`, after which the decoder is reset.
    """

    def __init__(self, max_attachments: int = DEFAULT_MAX_ATTACHMENTS) -> None:
        self.max_attachments = max_attachments
        self._pending: _Pending | None = None

    @property
    def waiting_for_attachments(self) -> bool:
        return self._pending is not None

    def feed(self, message: str | bytes) -> Packet | None:
        """Feed one Engine.IO message; return a packet once one is complete."""
        if isinstance(message, str):
            if self._pending is not None:
                self._pending = None
                raise ProtocolError("text packet received while waiting for binary attachments")
            return self._feed_text(message)
        pending = self._pending
        if pending is None:
            raise ProtocolError("unexpected binary message: no packet is waiting for attachments")
        pending.buffers.append(bytes(message))
        if len(pending.buffers) < pending.expected:
            return None
        self._pending = None
        packet = pending.packet
        packet.data = _reconstruct_checked(packet.data, pending.buffers)
        return packet

    def _feed_text(self, text: str) -> Packet | None:
        packet, attachments = decode_text(text, self.max_attachments)
        if attachments:
            self._pending = _Pending(packet, attachments, [])
            return None
        if packet.binary:
            # a binary packet announcing zero attachments: nothing to wait for
            packet.data = _reconstruct_checked(packet.data, [])
        return packet


def decode_text(text: str, max_attachments: int = DEFAULT_MAX_ATTACHMENTS) -> tuple[Packet, int]:
    """Parse a packet's text form; returns the packet and how many attachments follow."""
    if not text:
        raise ProtocolError("empty packet")
    packet_type = _TYPE_BY_CHAR.get(text[0])
    if packet_type is None:
        raise ProtocolError(f"unknown packet type {text[0]!r}")
    i = 1
    n = len(text)
    attachments = 0
    binary = packet_type in _PLAIN_OF
    if binary:
        dash = text.find("-", i)
        count = text[i:dash] if dash != -1 else ""
        if not (count.isascii() and count.isdigit()):
            raise ProtocolError("binary packet without a valid attachment count")
        if len(count) > len(str(max_attachments)) or int(count) > max_attachments:
            raise ProtocolError(f"too many attachments: {count} > {max_attachments}")
        attachments = int(count)
        i = dash + 1
    nsp = "/"
    if i < n and text[i] == "/":
        comma = text.find(",", i)
        end = comma if comma != -1 else n
        nsp = text[i:end]
        i = end + 1 if comma != -1 else n
    start = i
    while i < n and text[i].isdigit() and text[i].isascii():
        i += 1
    if i - start > len(str(MAX_ACK_ID)) or (i > start and int(text[start:i]) > MAX_ACK_ID):
        raise ProtocolError("ack id out of range")
    ack_id = int(text[start:i]) if i > start else None
    data: Any = None
    present = i < n
    if present:
        try:
            data = _DECODER.decode(text[i:])
        except (ValueError, RecursionError):
            raise ProtocolError("packet data is not valid JSON") from None
    if not _valid_payload(packet_type, data, ack_id, present):
        raise ProtocolError(f"invalid payload for a {packet_type.name} packet")
    plain = _PLAIN_OF.get(packet_type, packet_type)
    if plain is PacketType.EVENT and not isinstance(data[0], str):
        data[0] = _event_name(data[0])
    return Packet(plain, nsp, data, ack_id, binary=binary), attachments


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


#: One decoder for every packet: ``json.loads`` with an option builds a new one each call.
_DECODER = json.JSONDecoder(parse_constant=_no_constant)


def _reconstruct_checked(value: Any, buffers: list[bytes]) -> Any:
    try:
        return _reconstruct(value, buffers)
    except RecursionError:
        raise ProtocolError("packet data nested too deeply") from None


def _event_name(value: int | float) -> str:
    # A numeric event name is the same listener as its string form, as in JavaScript.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _reconstruct(value: Any, buffers: list[bytes]) -> Any:
    if isinstance(value, list):
        return [_reconstruct(v, buffers) for v in value]
    if isinstance(value, dict):
        if value.get("_placeholder") is True:
            num = value.get("num")
            if isinstance(num, int) and not isinstance(num, bool) and 0 <= num < len(buffers):
                return buffers[num]
            raise ProtocolError(f"placeholder refers to a missing attachment: {num!r}")
        return {k: _reconstruct(v, buffers) for k, v in value.items()}
    return value
