"""The wire format of ``@socket.io/redis-streams-adapter`` 0.3, sans I/O.

That adapter is socket.io's ``ClusterAdapter`` over Redis: one message format for every
kind of traffic between nodes, carried two ways.

- **The stream** (``XADD <stream> MAXLEN ~ <max> *``, read by every node with ``XREAD
  BLOCK``) carries what must not be missed and keeps it for recovery: broadcasts, room
  changes, disconnections. An entry's fields are ``uid``, ``nsp``, ``type`` (the message
  type as a decimal string) and ``data``: JSON, or base64 MessagePack when the message may
  carry binary and does (a broadcast, a fetch or server-side answer, an ack).
- **Pub/sub** carries what is only useful now: broadcasts that wait for acks, server-side
  emits, fetches, on ``<prefix>#<nsp>#``; answers go to the requester's own
  ``<prefix>#<nsp>#<uid>#``. The body is the whole message ``{uid, nsp, type, data}`` in
  MessagePack.
- **Sessions** for connection state recovery are strings at ``sio:session:<pid>``: base64
  MessagePack of ``{sid, pid, rooms, data}``; a packet's offset is its entry's id.

Ours adds two fields to the entries it writes, which Node's nodes ignore: ``seen`` (the
last entry this node had read when it wrote this one) and, when Redis gave the entry
another id than the one its clients were told, ``cid`` (that one). With them a restore
knows exactly which packets the client had (see
:mod:`server.hub.bridge.streams_adapter`). Our sessions also carry ``node`` and ``since``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from server.hub.bridge.wire import (
    Selection,
    WireError,
    dump_json,
    pack,
    packet_from_wire,
    packet_to_wire,
    unpack,
)
from server.hub.protocol import socketio as sio

DEFAULT_STREAM = "socket.io"
DEFAULT_PREFIX = "socket.io"
SESSION_PREFIX = "sio:session:"
#: What Node's adapter trims its stream to (``MAXLEN ~``).
DEFAULT_MAXLEN = 10_000


class MessageType(IntEnum):
    INITIAL_HEARTBEAT = 1
    HEARTBEAT = 2
    BROADCAST = 3
    SOCKETS_JOIN = 4
    SOCKETS_LEAVE = 5
    DISCONNECT_SOCKETS = 6
    FETCH_SOCKETS = 7
    FETCH_SOCKETS_RESPONSE = 8
    SERVER_SIDE_EMIT = 9
    SERVER_SIDE_EMIT_RESPONSE = 10
    BROADCAST_CLIENT_COUNT = 11
    BROADCAST_ACK = 12
    ADAPTER_CLOSE = 13


#: Messages whose data may hold binary, so are MessagePack in the stream when they do.
_MAY_HOLD_BINARY = frozenset(
    {
        MessageType.BROADCAST,
        MessageType.FETCH_SOCKETS_RESPONSE,
        MessageType.SERVER_SIDE_EMIT,
        MessageType.SERVER_SIDE_EMIT_RESPONSE,
        MessageType.BROADCAST_ACK,
    }
)

#: Answers to a request: a node that sends them only ever sends them to the requester.
RESPONSES = frozenset(
    {
        MessageType.FETCH_SOCKETS_RESPONSE,
        MessageType.SERVER_SIDE_EMIT_RESPONSE,
        MessageType.BROADCAST_CLIENT_COUNT,
        MessageType.BROADCAST_ACK,
    }
)


# ---- stream ids --------------------------------------------------------------------------

#: A stream entry id: milliseconds and a sequence number.
StreamId = tuple[int, int]

_ID = re.compile(r"^[0-9]+-[0-9]+$")


def parse_id(value: str | bytes) -> StreamId | None:
    """``"1700000000000-3"`` as ``(1700000000000, 3)``; None if it is not an id (the
    offset a client sends is checked as Node's adapter checks it)."""
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    if not _ID.match(text):
        return None
    ms, seq = text.split("-")
    return int(ms), int(seq)


def format_id(value: StreamId) -> str:
    return f"{value[0]}-{value[1]}"


def next_id(value: StreamId) -> StreamId:
    """The smallest id after ``value`` (XRANGE's start is inclusive)."""
    return value[0], value[1] + 1


# ---- messages ------------------------------------------------------------------------------


@dataclass(slots=True)
class ClusterMessage:
    """One message between nodes, whichever way it travelled."""

    uid: str
    nsp: str
    type: MessageType
    data: dict[str, Any] = field(default_factory=dict)
    #: Stream entries only: the entry's id, and our two fields (see the module's text).
    id: StreamId | None = None
    seen: StreamId | None = None
    cid: StreamId | None = None

    @property
    def key(self) -> StreamId | None:
        """The id this entry's writer gave its own clients: ``cid`` if Redis chose another."""
        return self.cid or self.id


def has_binary(value: Any) -> bool:
    if isinstance(value, bytes | bytearray | memoryview):
        return True
    if isinstance(value, list | tuple):
        return any(has_binary(v) for v in value)
    if isinstance(value, dict):
        return any(has_binary(v) for v in value.values())
    return False


def encode_data(kind: MessageType, data: dict[str, Any]) -> bytes:
    """An entry's ``data`` field: base64 MessagePack if it may hold binary and does."""
    if kind in _MAY_HOLD_BINARY and has_binary(data):
        return base64.b64encode(pack(data))
    return dump_json(data)


def decode_data(raw: bytes) -> dict[str, Any]:
    if raw[:1] == b"{":
        try:
            value = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise WireError(f"malformed JSON data: {exc}") from None
    else:
        try:
            value = unpack(base64.b64decode(raw, validate=True))
        except (binascii.Error, ValueError) as exc:
            raise WireError(f"data is neither JSON nor base64: {exc}") from None
    if not isinstance(value, dict):
        raise WireError("data is not an object")
    return value


def entry_fields(
    uid: str, nsp: str, kind: MessageType, data: dict[str, Any] | None, seen: StreamId | None
) -> list[bytes]:
    """The field-value pairs to ``XADD``, flat, in Node's order (ours last)."""
    fields = [b"uid", uid.encode(), b"nsp", nsp.encode(), b"type", str(int(kind)).encode()]
    if data:
        fields += [b"data", encode_data(kind, data)]
    if seen is not None:
        fields += [b"seen", format_id(seen).encode()]
    return fields


def _text(value: Any, what: str) -> str:
    if isinstance(value, str):
        return value
    if not isinstance(value, bytes):
        raise WireError(f"entry without {what}")
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise WireError(f"{what} is not UTF-8") from None


def _kind(value: Any) -> MessageType:
    try:
        return MessageType(int(value))
    except (TypeError, ValueError):
        raise WireError(f"unknown message type {value!r}") from None


def decode_entry(entry_id: bytes | str, fields: Mapping[Any, Any]) -> ClusterMessage:
    """A stream entry, as :func:`entry_fields` (or Node's adapter) wrote it."""
    stream_id = parse_id(entry_id)
    if stream_id is None:
        raise WireError(f"bad entry id {entry_id!r}")
    raw = fields.get(b"data")
    seen = fields.get(b"seen")
    cid = fields.get(b"cid")
    return ClusterMessage(
        uid=_text(fields.get(b"uid"), "uid"),
        nsp=_text(fields.get(b"nsp"), "nsp"),
        type=_kind(_text(fields.get(b"type"), "type")),
        data=decode_data(raw if isinstance(raw, bytes) else str(raw).encode()) if raw else {},
        id=stream_id,
        seen=parse_id(seen) if isinstance(seen, str | bytes) else None,
        cid=parse_id(cid) if isinstance(cid, str | bytes) else None,
    )


def encode_message(message: ClusterMessage) -> bytes:
    """A message over pub/sub: all of it in MessagePack."""
    body: dict[str, Any] = {"uid": message.uid, "nsp": message.nsp, "type": int(message.type)}
    if message.data:
        body["data"] = message.data
    return pack(body)


def decode_message(body: bytes) -> ClusterMessage:
    value = unpack(body)
    if not isinstance(value, dict):
        raise WireError("message is not a map")
    uid, nsp, data = value.get("uid"), value.get("nsp"), value.get("data")
    if not isinstance(uid, str) or not isinstance(nsp, str):
        raise WireError("message without uid or nsp")
    if data is not None and not isinstance(data, dict):
        raise WireError("message data is not a map")
    return ClusterMessage(uid, nsp, _kind(value.get("type")), data or {})


# ---- what a message's data holds ---------------------------------------------------------------


def selection_from(data: dict[str, Any]) -> Selection:
    return Selection.from_wire(data.get("opts"))


def packet_from(data: dict[str, Any], nsp: str) -> sio.Packet:
    return packet_from_wire(data.get("packet"), nsp)


def broadcast_data(
    packet: sio.Packet, selection: Selection, request_id: str | None = None
) -> dict[str, Any]:
    data: dict[str, Any] = {"packet": packet_to_wire(packet)}
    if request_id is not None:
        data["requestId"] = request_id
    data["opts"] = selection.to_wire()
    return data


def should_include(session_rooms: frozenset[str], selection: Selection) -> bool:
    """Whether a packet for ``selection`` was for a socket in these rooms (Node's test)."""
    if selection.rooms and session_rooms.isdisjoint(selection.rooms):
        return False
    return session_rooms.isdisjoint(selection.except_rooms)


# ---- sessions ----------------------------------------------------------------------------------


@dataclass(slots=True)
class StoredSession:
    """A session as it is kept at ``sio:session:<pid>``."""

    sid: str
    pid: str
    rooms: frozenset[str]
    data: dict[str, Any]
    #: Ours only: the node the socket is connected to (or was, last), and where that node's
    #: log stood when the socket came to it: (last entry read, last entry written).
    node: str | None = None
    since: tuple[StreamId, StreamId] | None = None


def session_key(pid: str, prefix: str = SESSION_PREFIX) -> str:
    return prefix + pid


def encode_session(session: StoredSession) -> bytes:
    body: dict[str, Any] = {
        "sid": session.sid,
        "pid": session.pid,
        "rooms": sorted(session.rooms),
        "data": session.data,
    }
    if session.node is not None and session.since is not None:
        body["node"] = session.node
        body["since"] = [format_id(session.since[0]), format_id(session.since[1])]
    return base64.b64encode(pack(body))


def decode_session(raw: bytes) -> StoredSession:
    try:
        value = unpack(base64.b64decode(raw, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise WireError(f"session is not base64 MessagePack: {exc}") from None
    if not isinstance(value, dict):
        raise WireError("session is not a map")
    sid, pid, rooms, data = (
        value.get("sid"),
        value.get("pid"),
        value.get("rooms"),
        value.get("data"),
    )
    if not isinstance(sid, str) or not isinstance(pid, str):
        raise WireError("session without sid or pid")
    if not isinstance(rooms, list) or not all(isinstance(r, str) for r in rooms):
        raise WireError("session rooms are not strings")
    node, since = value.get("node"), value.get("since")
    marks: tuple[StreamId, StreamId] | None = None
    if isinstance(node, str) and isinstance(since, list) and len(since) == 2:
        read, written = parse_id(str(since[0])), parse_id(str(since[1]))
        if read is not None and written is not None:
            marks = (read, written)
    return StoredSession(
        sid,
        pid,
        frozenset(rooms),
        data if isinstance(data, dict) else {},
        node if marks is not None else None,
        marks,
    )
