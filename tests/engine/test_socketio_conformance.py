"""Socket.IO v5 on the wire, against the reference server (``examples/socketio_reference.py``).

Every behaviour of the official Socket.IO v5 protocol test suite (connect, disconnect,
message, ack, binary, invalid formats), over raw WebSocket frames, plus a long-polling
round trip. Then the bad inputs the protocol names an outcome for (reserved event names, no
CONNECT within the connect timeout), each checked twice: the offender's connection is closed,
and a well-behaved client connected before it is still served afterwards (``bystander``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator

import httpx
import pytest
import trio

from .rawclient import (
    PING_INTERVAL,
    PING_TIMEOUT,
    SEP,
    SIO_PATH,
    TIMEOUT,
    Polling,
    WsClient,
    open_ws,
    ws_url,
)

#: The reference server's connect timeout, in seconds.
CONNECT_TIMEOUT = 1.0
PLACEHOLDERS = '{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}'


@pytest.fixture
async def bystander(reference_server: str) -> AsyncIterator[WsClient]:
    """A well-behaved Socket.IO client, connected (and answered) before the test misbehaves."""
    async with open_ws(ws_url(reference_server, SIO_PATH)) as client:
        await client.sio_connect()
        await client.sio_echo("before")
        yield client


async def still_served(bystander: WsClient) -> None:
    await bystander.sio_echo("after")
    assert bystander.close_reason is None


@pytest.fixture
async def socket(reference_server: str) -> AsyncIterator[WsClient]:
    """Connected to namespace ``/`` over WebSocket, as the suite's initSocketIOConnection."""
    async with open_ws(ws_url(reference_server, SIO_PATH)) as client:
        await client.sio_connect()
        yield client


# ---- connect -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("connect", "prefix", "auth"),
    [
        pytest.param("40", "", "{}", id="main"),
        pytest.param('40{"token":"123"}', "", '{"token":"123"}', id="main-with-payload"),
        pytest.param("40/custom,", "/custom,", "{}", id="custom"),
        pytest.param(
            '40/custom,{"token":"abc"}', "/custom,", '{"token":"abc"}', id="custom-with-payload"
        ),
    ],
)
async def test_connect_to_a_namespace(
    reference_server: str, connect: str, prefix: str, auth: str
) -> None:
    async with open_ws(ws_url(reference_server, SIO_PATH)) as ws:
        await ws.send(connect)
        answer = await ws.recv_text()
        assert answer.startswith("40" + prefix), answer
        handshake = json.loads(answer[2 + len(prefix) :])
        assert set(handshake) == {"sid"}
        assert isinstance(handshake["sid"], str) and handshake["sid"]
        assert await ws.recv() == f'42{prefix}["auth",{auth}]'


async def test_connect_to_an_unknown_namespace_is_refused(
    reference_server: str, bystander: WsClient
) -> None:
    async with open_ws(ws_url(reference_server, SIO_PATH)) as ws:
        await ws.send("40/random")
        assert await ws.recv() == '44/random,{"message":"Invalid namespace"}'
        # the connection itself stays usable: another namespace may still be joined
        await ws.sio_connect()
        await ws.sio_echo("still connected")
    await still_served(bystander)


async def test_invalid_handshake_closes_the_connection(
    reference_server: str, bystander: WsClient
) -> None:
    async with open_ws(ws_url(reference_server, SIO_PATH)) as ws:
        await ws.send("4abc")
        await ws.expect_closed()
    await still_served(bystander)


async def test_no_connect_within_the_connect_timeout_closes_the_websocket(
    reference_server: str, bystander: WsClient
) -> None:
    async with open_ws(ws_url(reference_server, SIO_PATH)) as ws:
        opened = trio.current_time()
        await ws.expect_closed(timeout=CONNECT_TIMEOUT + 0.5)
        assert trio.current_time() - opened > CONNECT_TIMEOUT - 0.1
        assert ws.pings_answered >= 2  # it was alive (heartbeat answered) all along
    await still_served(bystander)


async def test_no_connect_within_the_connect_timeout_closes_the_polling_session(
    reference_server: str, bystander: WsClient
) -> None:
    async with httpx.AsyncClient(base_url=reference_server, timeout=TIMEOUT) as http:
        polling = Polling(http, SIO_PATH)
        sid = await polling.open()
        opened = trio.current_time()
        records = await polling.poll_until(sid, "1", timeout=CONNECT_TIMEOUT + 0.5)
        assert trio.current_time() - opened > CONNECT_TIMEOUT - 0.1
        assert records == ["1"]
        after = await polling.get(sid)
        assert after.status_code == 400
    await still_served(bystander)


# ---- disconnect ------------------------------------------------------------------------------
async def test_disconnect_from_the_main_namespace(reference_server: str) -> None:
    async with open_ws(ws_url(reference_server, SIO_PATH), auto_pong=False) as ws:
        await ws.sio_connect()
        await ws.send("41")
        # nothing is sent back for the DISCONNECT, and the Engine.IO session stays open
        assert await ws.recv(timeout=PING_INTERVAL + 1) == "2"
        await ws.send("3")
        await ws.sio_connect()


async def test_session_outlives_the_connect_timeout_after_a_namespace_disconnect(
    reference_server: str,
) -> None:
    """A client that has joined a namespace is past the connect timeout for good, as in the
    reference implementation: leaving every namespace does not bring it back."""
    async with open_ws(ws_url(reference_server, SIO_PATH)) as ws:
        await ws.sio_connect()
        await ws.send("41")
        await ws.quiet_for(CONNECT_TIMEOUT + 0.3)
        await ws.sio_connect()
        await ws.sio_echo("reconnected")


async def test_connect_then_disconnect_from_a_custom_namespace(socket: WsClient) -> None:
    await socket.send("40/custom")
    answer = await socket.recv_text()
    assert answer.startswith("40/custom,"), answer
    assert await socket.recv() == '42/custom,["auth",{}]'
    await socket.send("41/custom")
    await socket.send('42["message","message to main namespace"]')
    assert await socket.recv() == '42["message-back","message to main namespace"]'


# ---- message ---------------------------------------------------------------------------------
async def test_plain_text_event(socket: WsClient) -> None:
    await socket.send('42["message",1,"2",{"3":[true]}]')
    assert await socket.recv() == '42["message-back",1,"2",{"3":[true]}]'


async def test_event_with_binary_attachments(socket: WsClient) -> None:
    await socket.send(f'452-["message",{PLACEHOLDERS}]')
    await socket.send(bytes([1, 2, 3]))
    await socket.send(bytes([4, 5, 6]))
    assert await socket.recv_many(3) == [
        f'452-["message-back",{PLACEHOLDERS}]',
        bytes([1, 2, 3]),
        bytes([4, 5, 6]),
    ]


async def test_event_with_an_ack(socket: WsClient) -> None:
    await socket.send('42456["message-with-ack",1,"2",{"3":[false]}]')
    assert await socket.recv() == '43456[1,"2",{"3":[false]}]'


async def test_event_with_binary_attachments_and_an_ack(socket: WsClient) -> None:
    await socket.send(f'452-789["message-with-ack",{PLACEHOLDERS}]')
    await socket.send(bytes([1, 2, 3]))
    await socket.send(bytes([4, 5, 6]))
    assert await socket.recv_many(3) == [
        f"462-789[{PLACEHOLDERS}]",
        bytes([1, 2, 3]),
        bytes([4, 5, 6]),
    ]


@pytest.mark.parametrize(
    "packet",
    [
        pytest.param("4abc", id="unknown-packet-type"),
        pytest.param("42{}", id="invalid-payload-format"),
        pytest.param('42abc["message-with-ack",1,"2",{"3":[false]}]', id="invalid-ack-id"),
    ],
)
async def test_invalid_format_closes_the_connection(
    socket: WsClient, bystander: WsClient, packet: str
) -> None:
    await socket.send(packet)
    await socket.expect_closed()
    await still_served(bystander)


@pytest.mark.parametrize(
    "event",
    ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"],
)
async def test_reserved_event_name_from_the_client_closes_the_connection(
    socket: WsClient, bystander: WsClient, event: str
) -> None:
    await socket.send(f'42["{event}"]')
    await socket.expect_closed()
    await still_served(bystander)


# ---- long-polling ----------------------------------------------------------------------------
async def test_socketio_over_long_polling(reference_server: str) -> None:
    """The same packets over long-polling: records joined by \\x1e, attachments as ``b`` +
    base64 records."""
    async with httpx.AsyncClient(base_url=reference_server, timeout=TIMEOUT) as http:
        polling = Polling(http, SIO_PATH)
        sid = await polling.open()
        push = await polling.post(sid, '40{"token":"123"}')
        assert push.status_code == 200
        records = await polling.poll_until(sid, '42["auth",{"token":"123"}]')
        assert records[0].startswith('40{"sid":'), records
        assert records[1:] == ['42["auth",{"token":"123"}]']

        b64 = [base64.b64encode(bytes(b)).decode() for b in ([1, 2, 3], [4, 5, 6])]
        push = await polling.post(
            sid,
            SEP.join(
                [
                    '42["message",1,"2",{"3":[true]}]',
                    f'452-789["message-with-ack",{PLACEHOLDERS}]',
                    "b" + b64[0],
                    "b" + b64[1],
                ]
            ),
        )
        assert push.status_code == 200
        records = []
        with trio.fail_after(TIMEOUT):
            while len(records) < 4:
                records += await polling.poll(sid)
        assert records == [
            '42["message-back",1,"2",{"3":[true]}]',
            f"462-789[{PLACEHOLDERS}]",
            "b" + b64[0],
            "b" + b64[1],
        ]


async def test_heartbeat_keeps_a_connected_socket_alive(socket: WsClient) -> None:
    """Answered pings keep the session open well past several ping cycles."""
    await socket.quiet_for(3 * (PING_INTERVAL + PING_TIMEOUT) / 2)
    assert socket.pings_answered >= 2
    await socket.sio_echo("alive")
