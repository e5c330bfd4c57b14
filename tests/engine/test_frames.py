"""Our reader of client WebSocket frames, fed by wsproto's client side (an implementation
that is not ours) and by hand-made hostile frames; then the same through a real socket."""

from __future__ import annotations

import os
import socket as stdsocket
import struct

import pytest
import trio
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage

from server.hub import Hub
from server.hub.engine import frames as fr
from server.hub.engine.frames import Close, FrameError, FrameReader
from tests.hub.conftest import serving

LIMIT = 1_000_000
MASK = b"\x11\x22\x33\x44"


def client() -> Connection:
    return Connection(ConnectionType.CLIENT)


def frame(
    payload: bytes,
    opcode: int,
    *,
    fin: bool = True,
    mask: bytes | None = MASK,
    rsv: int = 0,
    length: bytes | None = None,
) -> bytes:
    """A client frame, made by hand so that it can break any rule."""
    first = (0x80 if fin else 0) | rsv | opcode
    n = len(payload)
    if length is None:
        if n < 126:
            length = bytes([n])
        elif n < 1 << 16:
            length = bytes([126]) + struct.pack("!H", n)
        else:
            length = bytes([127]) + struct.pack("!Q", n)
    if mask is None:
        return bytes([first]) + length + payload
    length = bytes([length[0] | 0x80]) + length[1:]
    return bytes([first]) + length + mask + fr.unmask(payload, mask)


def read_all(data: bytes, *, step: int | None = None, limit: int = LIMIT) -> list[object]:
    """Everything ``data`` holds, fed at once or ``step`` bytes at a time."""
    reader = FrameReader(limit)
    items: list[object] = []
    chunks = [data] if step is None else [data[i : i + step] for i in range(0, len(data), step)]
    for chunk in chunks:
        reader.feed(chunk)
        while (item := reader.next()) is not None:
            items.append(item)
    return items


def refused(data: bytes, code: int, limit: int = LIMIT) -> str:
    with pytest.raises(FrameError) as caught:
        read_all(data, limit=limit)
    assert caught.value.code == code
    return caught.value.reason


@pytest.mark.parametrize("step", [None, 1, 7, 4096])
def test_what_wsproto_s_client_sends_is_read_back_whole_in_any_chunking(
    step: int | None,
) -> None:
    ws = client()
    big = os.urandom(70_000)  # a 64-bit length
    mid = "é" * 200  # a 16-bit length, multibyte
    data = b"".join(
        [
            ws.send(TextMessage("4hello")),
            ws.send(BytesMessage(b"\x00\x01\x02")),
            ws.send(TextMessage(mid)),
            ws.send(BytesMessage(big)),
            ws.send(TextMessage("")),
            ws.send(TextMessage("frag", message_finished=False)),
            ws.send(Ping(b"in between")),  # a control frame inside a fragmented message
            ws.send(TextMessage("mented", message_finished=True)),
            ws.send(Ping(b"p")),
            ws.send(CloseConnection(code=1000, reason="bye")),
        ]
    )
    items = read_all(data, step=step)
    assert items == [
        "4hello",
        b"\x00\x01\x02",
        mid,
        big,
        "",
        fr.Ping(b"in between"),
        "fragmented",
        fr.Ping(b"p"),
        Close(1000, "bye"),
    ]


def test_nothing_is_held_between_frames() -> None:
    reader = FrameReader(LIMIT)
    ws = client()
    reader.feed(ws.send(TextMessage("x" * 50_000)))
    assert reader.next() == "x" * 50_000
    assert reader.next() is None
    assert reader._buffer == b""  # what an idle connection keeps


def test_pongs_are_skipped() -> None:
    assert read_all(frame(b"unasked", fr.OP_PONG) + frame(b"4x", fr.OP_TEXT)) == ["4x"]


def test_a_close_without_a_code() -> None:
    assert read_all(frame(b"", fr.OP_CLOSE)) == [Close(None, "")]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        pytest.param(frame(b"4x", fr.OP_TEXT, mask=None), 1002, id="unmasked"),
        pytest.param(frame(b"4x", fr.OP_TEXT, rsv=0x40), 1002, id="rsv1 without extension"),
        pytest.param(frame(b"4x", fr.OP_TEXT, rsv=0x10), 1002, id="rsv3"),
        pytest.param(frame(b"x", 0x3), 1002, id="reserved data opcode"),
        pytest.param(frame(b"x", 0xB), 1002, id="reserved control opcode"),
        pytest.param(frame(b"p", fr.OP_PING, fin=False), 1002, id="fragmented ping"),
        pytest.param(frame(b"p" * 126, fr.OP_PING), 1002, id="ping of 126 bytes"),
        pytest.param(frame(b"x", fr.OP_CONTINUATION), 1002, id="continuation first"),
        pytest.param(
            frame(b"a", fr.OP_TEXT, fin=False) + frame(b"b", fr.OP_TEXT),
            1002,
            id="new message inside a fragmented one",
        ),
        pytest.param(
            frame(b"x" * 10, fr.OP_TEXT, length=bytes([126]) + struct.pack("!H", 10)),
            1002,
            id="16-bit length for 10 bytes",
        ),
        pytest.param(
            frame(b"x" * 10, fr.OP_TEXT, length=bytes([127]) + struct.pack("!Q", 10)),
            1002,
            id="64-bit length for 10 bytes",
        ),
        pytest.param(b"\x81\xff" + struct.pack("!Q", 1 << 63) + MASK, 1002, id="length MSB set"),
        pytest.param(frame(b"\xff\xfe", fr.OP_TEXT), 1007, id="text not UTF-8"),
        pytest.param(
            frame(b"\xe2\x82", fr.OP_TEXT, fin=False) + frame(b"\x28", fr.OP_CONTINUATION),
            1007,
            id="fragmented text not UTF-8",
        ),
        pytest.param(frame(b"\x03", fr.OP_CLOSE), 1002, id="close of one byte"),
        pytest.param(frame(struct.pack("!H", 1005), fr.OP_CLOSE), 1002, id="close code 1005"),
        pytest.param(frame(struct.pack("!H", 999), fr.OP_CLOSE), 1002, id="close code 999"),
        pytest.param(frame(struct.pack("!H", 5000), fr.OP_CLOSE), 1002, id="close code 5000"),
        pytest.param(
            frame(struct.pack("!H", 1000) + b"\xff", fr.OP_CLOSE), 1007, id="close reason not UTF-8"
        ),
    ],
)
def test_a_frame_that_breaks_the_protocol_is_refused_with_its_code(data: bytes, code: int) -> None:
    refused(data, code)


def test_application_close_codes_are_accepted() -> None:
    assert read_all(frame(struct.pack("!H", 4000) + b"app", fr.OP_CLOSE)) == [Close(4000, "app")]


def test_a_message_past_the_limit_is_refused_on_its_header() -> None:
    """The declared length is enough: the payload is never waited for (nor held)."""
    header = b"\x82\xff" + struct.pack("!Q", 10 * LIMIT) + MASK
    assert refused(header, 1009) == "Max payload size exceeded"
    # fragments add up: each under the limit, together past it
    half = b"x" * (LIMIT // 2 + 1)
    refused(frame(half, fr.OP_BINARY, fin=False) + frame(half, fr.OP_CONTINUATION), 1009)
    # exactly the limit is fine
    assert read_all(frame(b"y" * LIMIT, fr.OP_BINARY)) == [b"y" * LIMIT]


def test_the_accept_token_is_rfc_6455_s_example() -> None:
    assert fr.accept_token(b"dGhlIHNhbXBsZSBub25jZQ==") == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def upgraded(url: str) -> stdsocket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = stdsocket.create_connection((host, int(port)))
    sock.sendall(
        b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n"
        b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    sock.settimeout(5)
    return sock


def received_until_closed(sock: stdsocket.socket) -> bytes:
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return data


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        pytest.param(frame(b"40", fr.OP_TEXT, mask=None), 1002, id="unmasked"),
        pytest.param(frame(b"\xff", fr.OP_TEXT), 1007, id="not UTF-8"),
        pytest.param(b"\x82\xff" + struct.pack("!Q", 1 << 40) + MASK, 1009, id="a terabyte"),
    ],
)
async def test_a_hostile_frame_closes_its_connection_only(bad: bytes, code: int) -> None:
    """Through a real socket: the server answers with a close frame of the right code and
    drops the connection; another client on the same hub goes on."""
    hub = Hub()
    async with serving(hub) as url:
        good = upgraded(url)
        sock = upgraded(url)
        await trio.to_thread.run_sync(sock.sendall, frame(b"40", fr.OP_TEXT) + bad)
        data = await trio.to_thread.run_sync(received_until_closed, sock)
        close = bytes([0x80 | fr.OP_CLOSE])
        assert close in data
        at = data.rindex(close)
        assert int.from_bytes(data[at + 2 : at + 4], "big") == code
        # the other connection: a ping is answered, a CONNECT is accepted
        await trio.to_thread.run_sync(
            good.sendall, frame(b"hi", fr.OP_PING) + frame(b"40", fr.OP_TEXT)
        )
        seen = b""
        with trio.fail_after(5):
            while b"\x8a\x02hi" not in seen or b'40{"sid"' not in seen:
                seen += await trio.to_thread.run_sync(good.recv, 65536)
        sock.close()
        good.close()
