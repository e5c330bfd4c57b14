"""Reading a client's WebSocket frames (RFC 6455 section 5), for a server, with no extension.

:class:`FrameReader` is fed the bytes a connection reads and hands back what they hold, in
order: whole messages (``str`` for text, ``bytes`` for binary, fragments joined), a
:class:`Ping` to answer, the peer's :class:`Close`. Pongs are skipped. A frame that breaks
the protocol raises :class:`FrameError` with the close code to send: 1002 for framing
(an unmasked frame, reserved bits, an unknown opcode, a fragmented or long control frame, a
continuation out of place, a length not in its shortest form), 1007 for text or a close
reason that is not UTF-8, 1009 for a message past the limit; the limit is checked on each
frame's header, so a client cannot make us hold more than ``limit`` bytes of a message.

Ours rather than wsproto's for what an idle connection costs and what a message costs: the
reader is one small object holding nothing between messages (wsproto's connection, its
frame protocol and its event deque took about 1 KB of each idle connection), and a frame
is parsed in a few steps. Frames we send are built by :func:`~server.hub.engine.wire.ws_frame`.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from server.hub.engine.wire import OP_BINARY, OP_TEXT, ws_frame

__all__ = [
    "OP_BINARY",
    "OP_TEXT",
    "Close",
    "FrameError",
    "FrameReader",
    "Ping",
    "accept_token",
    "close_frame",
    "pong_frame",
    "unmask",
]

OP_CONTINUATION = 0x0
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

CLOSE_NORMAL = 1000
CLOSE_PROTOCOL_ERROR = 1002
#: What a peer reports when a close frame carried no status code (never sent as a code).
CLOSE_NO_STATUS = 1005
CLOSE_INVALID_DATA = 1007
CLOSE_TOO_BIG = 1009

#: Close codes a peer may send (RFC 6455 section 7.4 and IANA's registry); 3000-4999 are
#: for libraries and applications.
_SENDABLE_CODES = frozenset((1000, 1001, 1002, 1003, *range(1007, 1015)))


#: What the server appends to the client's key to prove it speaks WebSocket (section 4.2.2).
_ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_token(key: bytes) -> bytes:
    """``Sec-WebSocket-Accept`` for the client's ``Sec-WebSocket-Key``."""
    return base64.b64encode(hashlib.sha1(key.strip() + _ACCEPT_GUID).digest())


class FrameError(Exception):
    """The client broke the protocol: close the connection with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Ping:
    payload: bytes


@dataclass(frozen=True, slots=True)
class Close:
    """The peer's close frame: ``code`` is None when it carried none."""

    code: int | None
    reason: str


def unmask(payload: bytes, mask: bytes) -> bytes:
    """``payload`` XOR the repeated 4-byte ``mask`` (section 5.3), as one integer operation."""
    n = len(payload)
    if not n:
        return b""
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "little")
    return (int.from_bytes(payload, "little") ^ key).to_bytes(n, "little")


def close_frame(code: int | None, reason: str = "") -> bytes:
    """A close frame to send: with ``code`` and ``reason`` (cut to fit a control frame), or
    empty for no code (None, 1005)."""
    if code is None or code == CLOSE_NO_STATUS:
        return ws_frame(b"", OP_CLOSE)
    return ws_frame(code.to_bytes(2, "big") + reason.encode("utf-8")[:123], OP_CLOSE)


def pong_frame(payload: bytes) -> bytes:
    return ws_frame(payload, OP_PONG)


def _decode(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise FrameError(CLOSE_INVALID_DATA, f"{what} is not valid UTF-8") from None


def _close_of(payload: bytes) -> Close:
    if not payload:
        return Close(None, "")
    if len(payload) == 1:
        raise FrameError(CLOSE_PROTOCOL_ERROR, "a close frame of one byte")
    code = int.from_bytes(payload[:2], "big")
    if code not in _SENDABLE_CODES and not 3000 <= code <= 4999:
        raise FrameError(CLOSE_PROTOCOL_ERROR, f"close code {code} cannot be sent")
    return Close(code, _decode(payload[2:], "the close reason"))


class FrameReader:
    """The frames of one client connection; see the module's documentation."""

    __slots__ = ("_buffer", "_opcode", "_parts", "_pos", "_size", "limit")

    def __init__(self, limit: int, data: bytes = b"") -> None:
        #: The largest message, in bytes.
        self.limit = limit
        #: What was fed and not parsed yet starts at ``_pos``.
        self._buffer: bytes | bytearray = data
        self._pos = 0
        #: The opcode of the fragmented message under way (None: none), its parts, its size.
        self._opcode: int | None = None
        self._parts: list[bytes] | None = None
        self._size = 0

    def feed(self, data: bytes) -> None:
        buffer, pos = self._buffer, self._pos
        if pos >= len(buffer):
            self._buffer, self._pos = data, 0
            return
        if pos or not isinstance(buffer, bytearray):
            buffer = bytearray(memoryview(buffer)[pos:])
        buffer += data  # a large message arriving in chunks grows one buffer in place
        self._buffer, self._pos = buffer, 0

    def next(self) -> str | bytes | Ping | Close | None:
        """What the next complete frame holds; None until more bytes are fed."""
        while True:
            buffer, pos = self._buffer, self._pos
            have = len(buffer) - pos
            if have < 2:
                return None
            first, second = buffer[pos], buffer[pos + 1]
            if first & 0x70:
                raise FrameError(CLOSE_PROTOCOL_ERROR, "reserved bits set (no extension)")
            if not second & 0x80:
                raise FrameError(CLOSE_PROTOCOL_ERROR, "a client frame must be masked")
            opcode = first & 0x0F
            final = first & 0x80
            length = second & 0x7F
            header = 2
            if length == 126:
                if have < 4:
                    return None
                length = int.from_bytes(buffer[pos + 2 : pos + 4], "big")
                header = 4
                if length < 126:
                    raise FrameError(CLOSE_PROTOCOL_ERROR, "a length not in its shortest form")
            elif length == 127:
                if have < 10:
                    return None
                length = int.from_bytes(buffer[pos + 2 : pos + 10], "big")
                header = 10
                if length >> 63 or length < 1 << 16:
                    raise FrameError(CLOSE_PROTOCOL_ERROR, "a length not in its shortest form")
            self._check(opcode, final, length)
            end = pos + header + 4 + length
            if len(buffer) < end:
                return None
            start = pos + header
            payload = unmask(bytes(buffer[start + 4 : end]), bytes(buffer[start : start + 4]))
            if end >= len(buffer):
                self._buffer, self._pos = b"", 0  # nothing held between frames
            else:
                self._pos = end
            if opcode == OP_PONG:
                continue
            if opcode == OP_PING:
                return Ping(payload)
            if opcode == OP_CLOSE:
                return _close_of(payload)
            message = self._message(opcode, final, payload)
            if message is not None:
                return message

    def _check(self, opcode: int, final: int, length: int) -> None:
        """Refuse a frame on its header alone, before its payload is waited for."""
        if opcode >= OP_CLOSE:
            if opcode > OP_PONG:
                raise FrameError(CLOSE_PROTOCOL_ERROR, f"unknown opcode {opcode:#x}")
            if not final:
                raise FrameError(CLOSE_PROTOCOL_ERROR, "a fragmented control frame")
            if length > 125:
                raise FrameError(CLOSE_PROTOCOL_ERROR, "a control frame longer than 125 bytes")
            return
        if opcode > OP_BINARY:
            raise FrameError(CLOSE_PROTOCOL_ERROR, f"unknown opcode {opcode:#x}")
        if opcode == OP_CONTINUATION:
            if self._opcode is None:
                raise FrameError(CLOSE_PROTOCOL_ERROR, "a continuation frame with no message")
        elif self._opcode is not None:
            raise FrameError(CLOSE_PROTOCOL_ERROR, "a new message inside a fragmented one")
        if self._size + length > self.limit:
            raise FrameError(CLOSE_TOO_BIG, "Max payload size exceeded")

    def _message(self, opcode: int, final: int, payload: bytes) -> str | bytes | None:
        if opcode != OP_CONTINUATION:
            if final:
                return _decode(payload, "a text message") if opcode == OP_TEXT else payload
            self._opcode, self._parts, self._size = opcode, [payload], len(payload)
            return None
        assert self._parts is not None and self._opcode is not None
        self._parts.append(payload)
        self._size += len(payload)
        if not final:
            return None
        data = b"".join(self._parts)
        opcode = self._opcode
        self._opcode, self._parts, self._size = None, None, 0
        return _decode(data, "a text message") if opcode == OP_TEXT else data
