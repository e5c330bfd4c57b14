"""Engine.IO v4 on the wire, against the echo server (``examples/engineio_echo.py``).

Every behaviour of the official Engine.IO v4 protocol test suite (handshake, message,
heartbeat, close, upgrade), with raw requests: httpx for long-polling, trio-websocket for
WebSocket. Then the bad inputs the protocol names an error for (unknown session, payload too
large, a disallowed origin), each checked twice: the offender gets the named error, and a
well-behaved client connected before it is still served afterwards (``bystander``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from functools import partial

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed

from server.hub import Hub, Socket

from .rawclient import (
    EIO_PATH,
    MAX_PAYLOAD,
    PING_INTERVAL,
    PING_TIMEOUT,
    SEP,
    SIO_PATH,
    TIMEOUT,
    Polling,
    WsClient,
    error_body,
    open_ws,
    raw_request,
    ws_refused,
    ws_url,
)

HANDSHAKE_KEYS = {"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"}
UNKNOWN_SID = {"code": 1, "message": "Session ID unknown"}


@pytest.fixture
async def polling(echo_server: str) -> AsyncIterator[Polling]:
    async with httpx.AsyncClient(base_url=echo_server, timeout=TIMEOUT) as http:
        yield Polling(http, EIO_PATH)


@pytest.fixture
async def bystander(echo_server: str) -> AsyncIterator[WsClient]:
    """A well-behaved client, connected (and echoed) before the test misbehaves."""
    async with open_ws(ws_url(echo_server, EIO_PATH)) as client:
        await client.echo("before")
        yield client


async def still_served(bystander: WsClient) -> None:
    await bystander.echo("after")
    assert bystander.close_reason is None


def check_handshake(value: dict[str, object], upgrades: list[str]) -> None:
    assert set(value) == HANDSHAKE_KEYS
    assert isinstance(value["sid"], str) and value["sid"]
    assert value["upgrades"] == upgrades
    assert value["pingInterval"] == round(PING_INTERVAL * 1000)
    assert value["pingTimeout"] == round(PING_TIMEOUT * 1000)
    assert value["maxPayload"] == MAX_PAYLOAD


# ---- handshake ----------------------------------------------------------------------------
async def test_polling_handshake_opens_a_session(polling: Polling) -> None:
    check_handshake(await polling.handshake(), ["websocket"])


@pytest.mark.parametrize("eio", [None, "abc", "3", "5"])
async def test_polling_handshake_with_a_bad_eio_fails(
    polling: Polling, bystander: WsClient, eio: str | None
) -> None:
    target = EIO_PATH + "?transport=polling" + ("" if eio is None else f"&EIO={eio}")
    response = await polling.http.get(target)
    assert response.status_code == 400
    assert error_body(response) == {"code": 5, "message": "Unsupported protocol version"}
    await still_served(bystander)


@pytest.mark.parametrize("transport", [None, "abc", ""])
async def test_polling_handshake_with_a_bad_transport_fails(
    polling: Polling, bystander: WsClient, transport: str | None
) -> None:
    target = EIO_PATH + "?EIO=4" + ("" if transport is None else f"&transport={transport}")
    response = await polling.http.get(target)
    assert response.status_code == 400
    assert error_body(response) == {"code": 0, "message": "Transport unknown"}
    await still_served(bystander)


async def test_websocket_transport_without_an_upgrade_fails(
    polling: Polling, bystander: WsClient
) -> None:
    response = await polling.http.get(EIO_PATH + "?EIO=4&transport=websocket")
    assert response.status_code == 400
    assert error_body(response) == {"code": 3, "message": "Bad request"}
    await still_served(bystander)


@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_polling_handshake_with_a_bad_method_fails(
    polling: Polling, bystander: WsClient, method: str
) -> None:
    response = await polling.http.request(method, polling.url(), content=b"")
    assert response.status_code == 400
    assert error_body(response) == {"code": 2, "message": "Bad handshake method"}
    await still_served(bystander)


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_polling_request_with_a_bad_method_gets_500(
    polling: Polling, bystander: WsClient, method: str
) -> None:
    """Node's polling transport answers a method other than GET and POST with 500 and no
    body, and the session lives on."""
    sid = await polling.open()
    response = await polling.http.request(method, polling.url(sid), content=b"4hi")
    assert response.status_code == 500
    assert response.content == b""
    push = await polling.post(sid, "4still open")
    assert push.status_code == 200
    assert (await polling.get(sid)).text == "4still open"
    await still_served(bystander)


async def test_websocket_handshake_opens_a_session(echo_server: str) -> None:
    async with open_ws(ws_url(echo_server, EIO_PATH)) as ws:
        assert ws.handshake is not None
        check_handshake(ws.handshake, [])


@pytest.mark.parametrize("query", ["transport=websocket", "EIO=abc&transport=websocket"])
async def test_websocket_handshake_with_a_bad_eio_fails(
    echo_server: str, bystander: WsClient, query: str
) -> None:
    base = echo_server.replace("http", "ws", 1)
    refusal = await ws_refused(f"{base}{EIO_PATH}?{query}")
    assert refusal.status_code == 400
    await still_served(bystander)


@pytest.mark.parametrize("query", ["EIO=4", "EIO=4&transport=abc"])
async def test_websocket_handshake_with_a_bad_transport_fails(
    echo_server: str, bystander: WsClient, query: str
) -> None:
    base = echo_server.replace("http", "ws", 1)
    refusal = await ws_refused(f"{base}{EIO_PATH}?{query}")
    assert refusal.status_code == 400
    await still_served(bystander)


# ---- message: long-polling -----------------------------------------------------------------
@pytest.mark.parametrize(
    "payload",
    [
        pytest.param("4hello", id="one-text-packet"),
        pytest.param(SEP.join(["4test1", "4test2", "4test3"]), id="several-text-packets"),
        pytest.param("4hello" + SEP + "bAQIDBA==", id="text-and-binary"),
    ],
)
async def test_polling_payload_round_trip(polling: Polling, payload: str) -> None:
    sid = await polling.open()
    push = await polling.post(sid, payload)
    assert push.status_code == 200
    assert push.text == "ok"
    poll = await polling.get(sid)
    assert poll.status_code == 200
    assert poll.text == payload


async def test_polling_invalid_packet_format_closes_the_session(
    polling: Polling, bystander: WsClient
) -> None:
    sid = await polling.open()
    push = await polling.post(sid, "abc")
    assert push.status_code == 400
    poll = await polling.get(sid)
    assert poll.status_code == 400
    await still_served(bystander)


async def test_polling_duplicate_poll_closes_the_session(
    polling: Polling, bystander: WsClient
) -> None:
    sid = await polling.open()
    first: list[httpx.Response] = []

    async def first_poll() -> None:
        first.append(await polling.get(sid))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(first_poll)
        await trio.sleep(0.05)  # the first GET is pending
        second = await polling.get(sid, t="burst")
    assert second.status_code == 400
    assert first[0].status_code == 200
    assert first[0].text == "1"  # CLOSE
    third = await polling.get(sid)
    assert third.status_code == 400
    await still_served(bystander)


async def test_polling_cancelled_poll_closes_the_session(
    polling: Polling, bystander: WsClient
) -> None:
    sid = await polling.open()
    with trio.move_on_after(0.05) as scope:  # abort the pending GET, as AbortController does
        await polling.get(sid)
    assert scope.cancelled_caught
    poll = await polling.get(sid)
    assert poll.status_code == 400
    await still_served(bystander)


# ---- message: WebSocket --------------------------------------------------------------------
async def test_websocket_text_round_trip(echo_server: str) -> None:
    async with open_ws(ws_url(echo_server, EIO_PATH)) as ws:
        await ws.send("4hello")
        assert await ws.recv() == "4hello"


async def test_websocket_binary_round_trip(echo_server: str) -> None:
    async with open_ws(ws_url(echo_server, EIO_PATH)) as ws:
        await ws.send(bytes([1, 2, 3, 4]))
        assert await ws.recv() == bytes([1, 2, 3, 4])


async def test_websocket_invalid_packet_format_closes_the_session(
    echo_server: str, bystander: WsClient
) -> None:
    async with open_ws(ws_url(echo_server, EIO_PATH)) as ws:
        await ws.send("abc")
        await ws.expect_closed()
    await still_served(bystander)


# ---- heartbeat -------------------------------------------------------------------------------
async def test_polling_ping_pong(polling: Polling) -> None:
    sid = await polling.open()
    for _ in range(3):
        started = trio.current_time()
        poll = await polling.get(sid)
        assert poll.status_code == 200
        assert poll.text == "2"
        assert trio.current_time() - started > PING_INTERVAL / 2  # not before the interval
        push = await polling.post(sid, "3")
        assert push.status_code == 200
        assert push.text == "ok"


async def test_polling_ping_timeout_closes_the_session(
    polling: Polling, bystander: WsClient
) -> None:
    sid = await polling.open()
    await trio.sleep(PING_INTERVAL + PING_TIMEOUT + 0.01)
    poll = await polling.get(sid)
    assert poll.status_code == 400
    assert error_body(poll) == UNKNOWN_SID
    await still_served(bystander)


async def test_websocket_ping_pong(echo_server: str) -> None:
    async with open_ws(ws_url(echo_server, EIO_PATH), auto_pong=False) as ws:
        for _ in range(3):
            assert await ws.recv(timeout=PING_INTERVAL + 1) == "2"
            await ws.send("3")
        await ws.echo("still open")


async def test_websocket_ping_timeout_closes_the_session(
    echo_server: str, bystander: WsClient
) -> None:
    async with open_ws(ws_url(echo_server, EIO_PATH), auto_pong=False) as ws:
        started = trio.current_time()
        await ws.expect_closed(timeout=PING_INTERVAL + PING_TIMEOUT + 1)
        assert trio.current_time() - started > PING_INTERVAL + PING_TIMEOUT / 2
    await still_served(bystander)


# ---- close -----------------------------------------------------------------------------------
async def test_polling_client_close_ends_the_pending_poll(polling: Polling) -> None:
    sid = await polling.open()
    pending: list[httpx.Response] = []

    async def poll() -> None:
        pending.append(await polling.get(sid))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(poll)
        await trio.sleep(0.05)  # the GET is pending
        push = await polling.post(sid, "1")
    assert push.status_code == 200
    assert pending[0].status_code == 200
    assert pending[0].text == "6"  # NOOP ends the pending GET cleanly
    after = await polling.get(sid)
    assert after.status_code == 400


async def test_websocket_client_close_closes_the_connection(echo_server: str) -> None:
    async with open_ws(ws_url(echo_server, EIO_PATH)) as ws:
        await ws.send("1")
        await ws.expect_closed(allowed=())


# ---- upgrade ---------------------------------------------------------------------------------
async def upgrade(polling: Polling, ws: WsClient, sid: str) -> None:
    """Probe, end the poll with NOOP, upgrade; then the WebSocket carries the session."""
    await ws.send("2probe")
    assert await ws.recv() == "3probe"
    poll = await polling.get(sid)
    assert poll.status_code == 200
    assert poll.text == "6"  # NOOP: ends the long-polling cycle cleanly
    await ws.send("5")
    await ws.echo("hello")


async def test_upgrade_from_polling_to_websocket(echo_server: str, polling: Polling) -> None:
    sid = await polling.open()
    async with open_ws(ws_url(echo_server, EIO_PATH, sid), handshake=False) as ws:
        await upgrade(polling, ws, sid)


async def test_upgrade_ends_a_poll_pending_before_the_probe(
    echo_server: str, polling: Polling
) -> None:
    sid = await polling.open()
    pending: list[httpx.Response] = []

    async def poll() -> None:
        pending.append(await polling.get(sid))

    async with open_ws(ws_url(echo_server, EIO_PATH, sid), handshake=False) as ws:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(poll)
            await trio.sleep(0.05)  # the GET is pending
            await ws.send("2probe")
            assert await ws.recv() == "3probe"
        assert pending[0].status_code == 200
        assert pending[0].text == "6"
        await ws.send("5")
        await ws.echo("hello")


async def test_polling_request_after_upgrade_is_refused(echo_server: str, polling: Polling) -> None:
    sid = await polling.open()
    async with open_ws(ws_url(echo_server, EIO_PATH, sid), handshake=False) as ws:
        await upgrade(polling, ws, sid)
        poll = await polling.get(sid)
        assert poll.status_code == 400
        push = await polling.post(sid, "4hello")
        assert push.status_code == 400
        await ws.echo("hello again")  # the session itself lives on


async def test_second_websocket_after_upgrade_is_accepted_then_closed(
    echo_server: str, polling: Polling
) -> None:
    """As Node's server does, and the protocol's test suite expects ("ignores WebSocket
    connection with same sid after upgrade"): the handshake succeeds, and the server closes
    the WebSocket at once, with a close frame without a status code."""
    sid = await polling.open()
    async with open_ws(ws_url(echo_server, EIO_PATH, sid), handshake=False) as ws:
        await upgrade(polling, ws, sid)
        async with open_ws(ws_url(echo_server, EIO_PATH, sid), handshake=False) as second:
            reason = await second.expect_closed(allowed=())
            assert reason.code == 1005  # no status code in the close frame
        await ws.echo("hello again")


# ---- bad input: unknown session ----------------------------------------------------------------
async def test_unknown_sid_is_refused(
    echo_server: str, polling: Polling, bystander: WsClient
) -> None:
    poll = await polling.get("not-a-session")
    assert poll.status_code == 400
    assert error_body(poll) == UNKNOWN_SID
    push = await polling.post("not-a-session", "4hello")
    assert push.status_code == 400
    assert error_body(push) == UNKNOWN_SID
    refusal = await ws_refused(ws_url(echo_server, EIO_PATH, "not-a-session"))
    assert refusal.status_code == 400
    assert json.loads(refusal.body or b"") == UNKNOWN_SID
    await still_served(bystander)


# ---- bad input: maxPayload ----------------------------------------------------------------------
async def test_polling_post_of_max_payload_is_accepted(polling: Polling) -> None:
    sid = await polling.open()
    payload = "4" + "a" * (MAX_PAYLOAD - 1)
    push = await polling.post(sid, payload)
    assert push.status_code == 200
    poll = await polling.get(sid)
    assert poll.text == payload


async def test_polling_post_over_max_payload_by_content_length_is_refused(
    echo_server: str, polling: Polling, bystander: WsClient
) -> None:
    sid = await polling.open()
    response = await raw_request(
        echo_server,
        "POST",
        polling.url(sid),
        headers=[("content-length", str(MAX_PAYLOAD + 1)), ("content-type", "text/plain")],
        body=[b"4" + b"a" * 1000],
        finish=False,
        check_closed=True,
    )
    assert response.status == 413
    assert response.closed
    poll = await polling.get(sid)
    assert poll.status_code == 400  # the session is closed
    await still_served(bystander)


async def test_polling_post_over_max_payload_in_chunks_is_refused(
    echo_server: str, polling: Polling, bystander: WsClient
) -> None:
    sid = await polling.open()
    chunk = b"a" * 100_000
    response = await raw_request(
        echo_server,
        "POST",
        polling.url(sid),
        headers=[("transfer-encoding", "chunked"), ("content-type", "text/plain")],
        body=[b"4", *[chunk] * (MAX_PAYLOAD // len(chunk))],  # one byte over
        finish=False,
        check_closed=True,
    )
    assert response.status == 413
    assert response.closed
    poll = await polling.get(sid)
    assert poll.status_code == 400
    await still_served(bystander)


async def test_polling_post_over_max_payload_with_the_whole_body_gets_413(
    polling: Polling, bystander: WsClient
) -> None:
    """An ordinary client sends its whole body before it reads: it must still see the 413."""
    sid = await polling.open()
    try:
        push = await polling.post(sid, "4" + "a" * (MAX_PAYLOAD + 100_000))
    except httpx.TransportError as exc:
        pytest.fail(f"the client got no response, only {exc!r}")
    assert push.status_code == 413
    poll = await polling.get(sid)
    assert poll.status_code == 400
    await still_served(bystander)


async def test_websocket_message_of_max_payload_is_accepted(echo_server: str) -> None:
    async with open_ws(ws_url(echo_server, EIO_PATH)) as ws:
        await ws.echo("a" * (MAX_PAYLOAD - 1))
        await ws.send(b"\x01" * MAX_PAYLOAD)
        assert await ws.recv() == b"\x01" * MAX_PAYLOAD


@pytest.mark.parametrize(
    "message",
    [
        pytest.param("4" + "a" * MAX_PAYLOAD, id="text"),
        pytest.param(b"\x01" * (MAX_PAYLOAD + 1), id="binary"),
        pytest.param("4" + "a" * (MAX_PAYLOAD + 500_000), id="text-far-over"),
        # 500,001 characters but 1,000,001 bytes: maxPayload counts bytes
        pytest.param("4" + "é" * (MAX_PAYLOAD // 2), id="multibyte-text"),
    ],
)
async def test_websocket_message_over_max_payload_closes_with_1009(
    echo_server: str, bystander: WsClient, message: str | bytes
) -> None:
    async with open_ws(ws_url(echo_server, EIO_PATH)) as ws:
        try:
            await ws.send(message)
        except ConnectionClosed as closed:
            # refused on the frame's header, as Node's ws does: closed before the client
            # finished sending
            reason = closed.reason
        else:
            reason = await ws.expect_closed(allowed=("1",))
        assert reason.code == 1009
    await still_served(bystander)


# ---- CORS ----------------------------------------------------------------------------------------
async def test_cors_preflight(polling: Polling) -> None:
    response = await polling.http.options(
        polling.url(),
        headers={
            "origin": "http://client.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "http://client.example"
    assert response.headers["access-control-allow-credentials"] == "true"
    methods = {m.strip() for m in response.headers["access-control-allow-methods"].split(",")}
    assert {"GET", "POST"} <= methods
    assert "content-type" in response.headers["access-control-allow-headers"].lower()


async def test_cors_headers_on_polling_requests(polling: Polling) -> None:
    origin = {"origin": "http://client.example"}
    response = await polling.http.get(polling.url(), headers=origin)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "http://client.example"
    assert response.headers["access-control-allow-credentials"] == "true"
    sid = json.loads(response.text[1:])["sid"]
    push = await polling.http.post(polling.url(sid), content="4hi", headers=origin)
    assert push.status_code == 200
    assert push.headers["access-control-allow-origin"] == "http://client.example"


@pytest.fixture
async def allowlist_server(nursery: trio.Nursery) -> AsyncIterator[str]:
    """A Socket.IO server that lets only ``http://allowed.example`` in from a browser."""
    hub = Hub(cors_origins=("http://allowed.example",))

    def on_message(socket: Socket, *args: object) -> None:
        socket.emit("message-back", *args)

    hub.on("message", on_message)
    listeners = await nursery.start(hub.serve, "127.0.0.1", 0)
    yield f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}"


async def test_cors_disallowed_origin_is_refused(allowlist_server: str) -> None:
    url = ws_url(allowlist_server, SIO_PATH)
    # a well-behaved client (no Origin: not a browser) connected before the refused ones
    async with (
        open_ws(url) as other,
        httpx.AsyncClient(base_url=allowlist_server, timeout=TIMEOUT) as http,
    ):
        await other.sio_connect(expect_auth=False)
        polling = Polling(http, SIO_PATH)

        evil = {"origin": "http://evil.example"}
        response = await http.get(polling.url(), headers=evil)
        assert response.status_code == 403
        assert error_body(response) == {"code": 4, "message": "Forbidden"}
        assert "access-control-allow-origin" not in response.headers
        preflight = await http.options(polling.url(), headers=evil)
        assert preflight.status_code == 403
        refusal = await ws_refused(url, headers=evil)
        assert refusal.status_code == 403

        allowed = {"origin": "http://allowed.example"}
        response = await http.get(polling.url(), headers=allowed)
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "http://allowed.example"
        assert response.headers["access-control-allow-credentials"] == "true"
        async with open_ws(url, headers=allowed) as ws:
            await ws.sio_connect(expect_auth=False)
            await ws.sio_echo("from an allowed origin")

        same_origin = {"origin": allowlist_server}
        response = await http.get(polling.url(), headers=same_origin)
        assert response.status_code == 200

        await other.sio_echo("after")


async def test_polling_overlapping_post_closes_the_session(
    echo_server: str, polling: Polling, bystander: WsClient
) -> None:
    """One POST at a time: a second while the first is still sending its body is an error."""
    sid = await polling.open()
    target = f"{EIO_PATH}?EIO=4&transport=polling&sid={sid}"
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            partial(
                raw_request,
                echo_server,
                "POST",
                target,
                headers=[("content-length", "100")],
                body=[b"4he"],
                finish=False,
            )
        )
        await trio.sleep(0.05)  # the first POST is reading its body
        second = await polling.post(sid, "4second")
        nursery.cancel_scope.cancel()
    assert second.status_code == 400
    assert (await polling.get(sid)).status_code == 400
    await still_served(bystander)


async def test_polling_binary_body_is_refused(polling: Polling, bystander: WsClient) -> None:
    """Protocol 4 polling sends binary as base64 text; a raw binary body is refused."""
    sid = await polling.open()
    push = await polling.http.post(
        f"{EIO_PATH}?EIO=4&transport=polling&sid={sid}",
        content=b"\x04\x01\x02",
        headers={"content-type": "application/octet-stream"},
    )
    assert push.status_code == 400
    assert (await polling.get(sid)).status_code == 400
    await still_served(bystander)
