"""The wire format of ``@socket.io/redis-adapter`` v8, sans I/O: channel names and messages.

Speaking it, rather than a format of our own, makes a Node Socket.IO server on that adapter,
and ``@socket.io/redis-emitter``, members of the same cluster as ours.

- **Broadcasts** go on ``<key>#<nsp>#`` or, for exactly one room, ``<key>#<nsp>#<room>#``.
  The body is MessagePack (as ``notepack.io`` writes it): ``[uid, packet, opts]``, where
  ``packet`` is the Socket.IO packet as an object (binary values stay raw ``bin``, no
  placeholders) and ``opts`` is ``{rooms, except, flags}``.
- **Requests** go on ``<key>-request#<nsp>#``, **responses** on ``<key>-response#<nsp>#`` or
  the requester's own ``<key>-response#<nsp>#<uid>#``. Their bodies are JSON, except the
  ones that may carry binary (a BROADCAST request and a BROADCAST_ACK response), which are
  MessagePack. A reader tells them apart by the first byte: ``{`` is JSON.
- **How many nodes must answer** is ``PUBSUB NUMSUB`` of the request channel: every node
  subscribes to it exactly once per namespace.

Nothing here touches a socket; the tests feed it bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import msgpack  # type: ignore[import-untyped]

from server.hub.protocol import jsontext
from server.hub.protocol import socketio as sio

DEFAULT_KEY = "socket.io"
#: The uid ``@socket.io/redis-emitter`` publishes with: it is never a node.
EMITTER_UID = "emitter"


class WireError(ValueError):
    """A message that is not in the adapter's format."""


class RequestType(IntEnum):
    SOCKETS = 0
    ALL_ROOMS = 1
    REMOTE_JOIN = 2
    REMOTE_LEAVE = 3
    REMOTE_DISCONNECT = 4
    REMOTE_FETCH = 5
    SERVER_SIDE_EMIT = 6
    BROADCAST = 7
    BROADCAST_CLIENT_COUNT = 8
    BROADCAST_ACK = 9


@dataclass(frozen=True, slots=True)
class Channels:
    """The channel names of one namespace under one key prefix."""

    nsp: str
    key: str = DEFAULT_KEY

    @property
    def broadcast(self) -> str:
        return f"{self.key}#{self.nsp}#"

    @property
    def pattern(self) -> str:
        """What a node PSUBSCRIBEs to: the namespace channel and every room channel."""
        return self.broadcast + "*"

    def room(self, room: str) -> str:
        return f"{self.broadcast}{room}#"

    @property
    def request(self) -> str:
        return f"{self.key}-request#{self.nsp}#"

    @property
    def response(self) -> str:
        return f"{self.key}-response#{self.nsp}#"

    def response_for(self, uid: str) -> str:
        """The channel only the node ``uid`` reads its responses on."""
        return f"{self.response}{uid}#"

    def broadcast_channel(self, rooms: frozenset[str] | set[str]) -> str:
        """Where a broadcast goes: its room's channel when it is for exactly one room."""
        if len(rooms) == 1:
            return self.room(next(iter(rooms)))
        return self.broadcast

    def room_of(self, channel: str) -> str | None:
        """The room of a broadcast channel, ``""`` for the namespace channel, None if the
        channel is not one of this namespace's."""
        prefix = self.broadcast
        if not channel.startswith(prefix):
            return None
        rest = channel[len(prefix) :]
        if not rest:
            return ""
        if not rest.endswith("#"):
            return None
        return rest[:-1]


# ---- MessagePack, as notepack.io writes and reads it ----------------------------------


def _default(value: Any) -> Any:
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if isinstance(value, set | frozenset):
        return list(value)
    raise TypeError(f"cannot encode {type(value).__name__} in MessagePack")


def _ext(code: int, data: bytes) -> Any:
    # notepack writes `undefined` as fixext 1 of type 0 (older versions), and an ArrayBuffer
    # as ext 8 of type 0: None and bytes are their closest Python values.
    if code == 0:
        return None if len(data) == 1 and data == b"\x00" else data
    raise WireError(f"unknown MessagePack extension type {code}")


def pack(value: Any) -> bytes:
    """MessagePack with ``str`` as str and ``bytes`` as bin, integers in their smallest form
    and floats as float 64: the bytes notepack.io writes for the same value.

    A MessagePack string is UTF-8, which has no form for a lone surrogate (a client can
    send one as a JSON escape): such a surrogate is written as U+FFFD, as Node's ``Buffer``
    writes it, rather than failing the publish.
    """
    try:
        data: bytes = msgpack.packb(value, use_bin_type=True, default=_default)
    except UnicodeEncodeError:
        safe = jsontext.replace_lone_surrogates(value)
        data = msgpack.packb(safe, use_bin_type=True, default=_default)
    return data


#: How MessagePack's timestamp extension (type -1) begins: 32, 64 and 96-bit forms.
_TIMESTAMP_MARKS = (b"\xd6\xff", b"\xd7\xff", b"\xc7\x0c\xff")


def unpack(data: bytes) -> Any:
    """MessagePack from any node, as a Node node's clients would see it: invalid UTF-8 in a
    string reads as U+FFFD (``Buffer.toString``), and a timestamp (what notepack writes for a
    ``Date``) reads as its ISO 8601 string with milliseconds (``JSON.stringify``)."""
    value = _unpack(data)
    if any(mark in data for mark in _TIMESTAMP_MARKS):
        value = _dates_to_iso(value)
    return value


def _unpack(data: bytes) -> Any:
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=False,
            ext_hook=_ext,
            timestamp=0,
            unicode_errors="replace",
        )
    except (
        ValueError,
        TypeError,
        msgpack.ExtraData,
        msgpack.FormatError,
        msgpack.StackError,
    ) as exc:
        raise WireError(f"not MessagePack: {exc}") from None


def _dates_to_iso(value: Any) -> Any:
    if isinstance(value, msgpack.Timestamp):
        return iso_of_millis(value.seconds * 1000 + value.nanoseconds // 1_000_000)
    if isinstance(value, list):
        return [_dates_to_iso(v) for v in value]
    if isinstance(value, dict):
        return {k: _dates_to_iso(v) for k, v in value.items()}
    return value


def iso_of_millis(millis: int) -> str:
    """``new Date(millis).toISOString()``: proleptic Gregorian, UTC, milliseconds, with the
    six-digit signed years JavaScript writes outside 0000-9999."""
    days, ms_of_day = divmod(millis, 86_400_000)
    # days since 1970-01-01 to a civil date (H. Hinnant's days_from_civil, inverted)
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (1 if month <= 2 else 0)
    hours, rest = divmod(ms_of_day, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, ms = divmod(rest, 1000)
    shown = f"{year:04d}" if 0 <= year <= 9999 else f"{'+' if year > 0 else '-'}{abs(year):06d}"
    return f"{shown}-{month:02d}-{day:02d}T{hours:02d}:{minutes:02d}:{seconds:02d}.{ms:03d}Z"


def _json_default(value: Any) -> Any:
    # Node's JSON.stringify of a Buffer
    if isinstance(value, bytes | bytearray | memoryview):
        return {"type": "Buffer", "data": list(bytes(value))}
    if isinstance(value, set | frozenset):
        return list(value)
    raise TypeError(f"cannot encode {type(value).__name__} in JSON")


def dump_json(value: Any) -> bytes:
    """JSON as Node's ``JSON.stringify`` writes it (lone surrogates as escapes)."""
    return jsontext.dumps(value, default=_json_default, allow_nan=True).encode()


def load_body(data: bytes) -> Any:
    """A request or response body: JSON when it starts with ``{``, else MessagePack."""
    if data[:1] == b"{":
        try:
            return json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise WireError(f"malformed JSON: {exc}") from None
    return unpack(data)


# ---- packets ----------------------------------------------------------------------------


def packet_to_wire(packet: sio.Packet) -> dict[str, Any]:
    """The Socket.IO packet as Node's adapter publishes it: ``{type, data, nsp[, id]}``."""
    body: dict[str, Any] = {"type": int(packet.type), "data": packet.data, "nsp": packet.nsp}
    if packet.id is not None:
        body["id"] = packet.id
    return body


_PLAIN = {
    int(sio.PacketType.EVENT): sio.PacketType.EVENT,
    int(sio.PacketType.BINARY_EVENT): sio.PacketType.EVENT,
    int(sio.PacketType.ACK): sio.PacketType.ACK,
    int(sio.PacketType.BINARY_ACK): sio.PacketType.ACK,
}


def packet_from_wire(value: Any, nsp: str) -> sio.Packet:
    """A published packet back as ours; only events (and acks) travel this way."""
    if not isinstance(value, dict):
        raise WireError("packet is not a map")
    kind = _PLAIN.get(value.get("type"))  # type: ignore[arg-type]
    if kind is None:
        raise WireError(f"unexpected packet type {value.get('type')!r}")
    data = value.get("data")
    if kind is sio.PacketType.EVENT and not (
        isinstance(data, list) and data and isinstance(data[0], str)
    ):
        raise WireError("event packet without an event name")
    packet_nsp = value.get("nsp", "/")
    if packet_nsp is None:
        packet_nsp = "/"
    if packet_nsp != nsp:
        raise WireError(f"packet for namespace {packet_nsp!r} on the channel of {nsp!r}")
    ack_id = value.get("id")
    if ack_id is not None and not (isinstance(ack_id, int) and not isinstance(ack_id, bool)):
        raise WireError("ack id is not an integer")
    return sio.Packet(kind, packet_nsp, data, ack_id)


def _strings(value: Any, what: str) -> frozenset[str]:
    if value is None:
        return frozenset()
    if not isinstance(value, list):
        raise WireError(f"{what} is not an array")
    # Node rooms may be numbers; they match the room of the same string form
    return frozenset(v if isinstance(v, str) else _room_name(v) for v in value)


def _room_name(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise WireError(f"room {value!r} is not a string")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


# ---- broadcasts -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Selection:
    """``opts`` of a broadcast or a request: which sockets, and the flags."""

    rooms: frozenset[str] = frozenset()
    except_rooms: frozenset[str] = frozenset()
    flags: dict[str, Any] = field(default_factory=dict)

    def to_wire(self, *, with_flags: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {"rooms": sorted(self.rooms), "except": sorted(self.except_rooms)}
        if with_flags:
            body["flags"] = self.flags
        return body

    @classmethod
    def from_wire(cls, value: Any) -> Selection:
        if value is None:
            return cls()
        if not isinstance(value, dict):
            raise WireError("opts is not a map")
        flags = value.get("flags") or {}
        if not isinstance(flags, dict):
            raise WireError("flags is not a map")
        return cls(
            _strings(value.get("rooms"), "rooms"), _strings(value.get("except"), "except"), flags
        )

    @property
    def volatile(self) -> bool:
        return bool(self.flags.get("volatile"))


@dataclass(frozen=True, slots=True)
class BroadcastMessage:
    uid: str
    packet: sio.Packet
    selection: Selection

    def encode(self) -> bytes:
        return pack([self.uid, packet_to_wire(self.packet), self.selection.to_wire()])

    @classmethod
    def decode(cls, data: bytes, nsp: str) -> BroadcastMessage:
        value = unpack(data)
        if not (isinstance(value, list) and len(value) >= 2):
            raise WireError("broadcast is not [uid, packet, opts]")
        uid = value[0]
        if not isinstance(uid, str):
            raise WireError("broadcast uid is not a string")
        opts = value[2] if len(value) > 2 else None
        return cls(uid, packet_from_wire(value[1], nsp), Selection.from_wire(opts))


def peek_uid(data: bytes) -> str | None:
    """The uid of a broadcast without decoding the rest: a node skips its own messages.

    The body starts with a fixarray marker and the uid as a fixstr or str 8.
    """
    if len(data) < 2 or data[0] & 0xF0 != 0x90:
        return None
    head = data[1]
    if head & 0xE0 == 0xA0:
        length, start = head & 0x1F, 2
    elif head == 0xD9 and len(data) > 2:
        length, start = data[2], 3
    else:
        return None
    try:
        return data[start : start + length].decode()
    except UnicodeDecodeError:
        return None


# ---- requests and responses -------------------------------------------------------------


@dataclass(slots=True)
class Request:
    """A request from one node to the others; which fields matter depends on ``type``."""

    type: RequestType
    uid: str
    request_id: str | None = None
    selection: Selection | None = None
    #: REMOTE_JOIN / REMOTE_LEAVE: the rooms to join or leave; SOCKETS: the rooms to list.
    rooms: list[str] | None = None
    close: bool = False
    #: SERVER_SIDE_EMIT: ``[event, *args]``.
    data: list[Any] | None = None
    #: BROADCAST (with acks): the packet.
    packet: sio.Packet | None = None
    #: the old per-socket form of REMOTE_JOIN / LEAVE / DISCONNECT: ``sid`` and ``room``.
    sid: str | None = None
    room: str | None = None

    def encode(self) -> bytes:
        body: dict[str, Any] = {"uid": self.uid}
        if self.request_id is not None:
            body["requestId"] = self.request_id
        body["type"] = int(self.type)
        kind = self.type
        if kind is RequestType.BROADCAST:
            assert self.packet is not None and self.selection is not None
            body["packet"] = packet_to_wire(self.packet)
            body["opts"] = self.selection.to_wire()
            return pack(body)
        if self.selection is not None:
            body["opts"] = self.selection.to_wire(with_flags=False)
        joins = (RequestType.REMOTE_JOIN, RequestType.REMOTE_LEAVE, RequestType.SOCKETS)
        if kind in joins and self.rooms is not None:
            body["rooms"] = list(self.rooms)
        if kind is RequestType.REMOTE_DISCONNECT:
            body["close"] = self.close
        if kind is RequestType.SERVER_SIDE_EMIT:
            body["data"] = self.data or []
        if self.sid is not None:
            body["sid"] = self.sid
        if self.room is not None:
            body["room"] = self.room
        return dump_json(body)

    @classmethod
    def decode(cls, data: bytes, nsp: str) -> Request:
        value = load_body(data)
        if not isinstance(value, dict):
            raise WireError("request is not an object")
        try:
            kind = RequestType(value["type"])
        except (KeyError, ValueError, TypeError):
            raise WireError(f"unknown request type {value.get('type')!r}") from None
        uid = value.get("uid")
        request_id = value.get("requestId")
        if request_id is not None and not isinstance(request_id, str):
            request_id = str(request_id)
        opts = value.get("opts")
        rooms = value.get("rooms")
        payload = value.get("data")
        packet = value.get("packet")
        sid = value.get("sid")
        room = value.get("room")
        return cls(
            type=kind,
            uid=uid if isinstance(uid, str) else "",
            request_id=request_id,
            selection=Selection.from_wire(opts) if opts is not None else None,
            rooms=sorted(_strings(rooms, "rooms")) if rooms is not None else None,
            close=bool(value.get("close")),
            data=payload if isinstance(payload, list) else None,
            packet=packet_from_wire(packet, nsp) if packet is not None else None,
            sid=sid if isinstance(sid, str) else None,
            room=room if isinstance(room, str) else None,
        )


def encode_response(body: dict[str, Any]) -> bytes:
    """JSON, except a BROADCAST_ACK, which may carry binary and so is MessagePack."""
    if body.get("type") == RequestType.BROADCAST_ACK:
        return pack(body)
    return dump_json(body)


def decode_response(data: bytes) -> dict[str, Any]:
    value = load_body(data)
    if not isinstance(value, dict):
        raise WireError("response is not an object")
    return value
