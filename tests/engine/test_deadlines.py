"""Every read has a deadline; connections still handshaking are capped; a big POST yields.

With raw TCP, as an attacker would: headers that never end, a body that never comes, a
thousand connections that say nothing, a million NOOP packets in one body. The engine runs
in the test's ``trio.run`` with short timeouts.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import replace
from typing import Any

import pytest
import trio

from examples.engineio_echo import CONFIG, Echo
from server.hub.engine import EngineConfig, EngineServer, polling
from server.hub.engine import config as engine_config
from server.hub.engine.session import Session

FAST = replace(CONFIG, header_timeout=0.3, body_timeout=0.3, idle_timeout=0.6)


@asynccontextmanager
async def engine(config: EngineConfig = FAST) -> AsyncIterator[tuple[EngineServer, int]]:
    server = EngineServer(config, Echo)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(server.serve, "127.0.0.1", 0)
        try:
            yield server, listeners[0].socket.getsockname()[1]
        finally:
            nursery.cancel_scope.cancel()


async def connect(port: int, source: str = "127.0.0.1") -> trio.SocketStream:
    """A TCP connection from ``source`` (any 127.x.y.z is this machine's loopback)."""
    sock = trio.socket.socket()
    await sock.bind((source, 0))
    await sock.connect(("127.0.0.1", port))
    return trio.SocketStream(sock)


async def read_all(stream: trio.SocketStream, timeout: float = 3.0) -> bytes:
    """Everything until the server closes (a reset counts as closed)."""
    data = b""
    with trio.fail_after(timeout):
        try:
            while chunk := await stream.receive_some(65536):
                data += chunk
        except trio.BrokenResourceError:
            pass
    return data


async def open_session(port: int) -> str:
    stream = await connect(port)
    await stream.send_all(
        b"GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    response = await read_all(stream)
    body = response.split(b"\r\n\r\n", 1)[1]
    sid: str = json.loads(body[1:])["sid"]
    return sid


def status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


async def post(port: int, sid: str, body: bytes) -> trio.SocketStream:
    """A polling POST of ``body`` to session ``sid``, sent whole; the connection."""
    stream = await connect(port)
    await stream.send_all(
        f"POST /engine.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\n"
        f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    return stream


# ---- deadlines ------------------------------------------------------------------------------


async def test_a_body_that_never_comes_gets_408_and_closes() -> None:
    async with engine() as (server, port):
        sid = await open_session(port)
        stream = await connect(port)
        started = trio.current_time()
        await stream.send_all(
            f"POST /engine.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: text/plain\r\nContent-Length: 100\r\n\r\n".encode()
        )
        response = await read_all(stream)
        assert status(response) == 408
        assert trio.current_time() - started >= FAST.body_timeout
        # the session it was for is closed too, as for any broken POST
        assert sid not in server.sessions
        assert server.totals()["request_timeouts"] == 1


async def test_a_get_with_a_body_that_never_comes_gets_408() -> None:
    async with engine() as (server, port):
        stream = await connect(port)
        await stream.send_all(
            b"GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 100\r\n\r\n"
        )
        assert status(await read_all(stream)) == 408
        assert not server.sessions  # it never reached the handshake


async def test_headers_that_never_end_get_408() -> None:
    async with engine() as (_server, port):
        stream = await connect(port)
        await stream.send_all(b"GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n")
        with trio.move_on_after(0.1):  # a slow drip does not extend the deadline
            for _ in range(100):
                await stream.send_all(b"X-A: b\r\n")
                await trio.sleep(0.05)
        assert status(await read_all(stream)) == 408


async def test_a_connection_that_says_nothing_is_closed() -> None:
    async with engine() as (server, port):
        stream = await connect(port)
        started = trio.current_time()
        assert await read_all(stream) == b""  # closed without a word: nothing was asked
        assert trio.current_time() - started >= FAST.header_timeout
        assert server.handshaking == 0


async def test_an_idle_keep_alive_connection_is_closed_after_idle_timeout() -> None:
    async with engine() as (_server, port):
        stream = await connect(port)
        await stream.send_all(
            b"GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        started = trio.current_time()
        response = await read_all(stream, timeout=3)
        assert status(response) == 200
        assert trio.current_time() - started >= FAST.idle_timeout


# ---- connections still handshaking -----------------------------------------------------------


async def test_handshaking_connections_are_capped_per_address_and_overall() -> None:
    """Past a limit the oldest connection still handshaking is refused (503), so a newcomer
    always gets its chance and half-open connections cannot lock anyone out."""
    config = replace(FAST, header_timeout=30, max_handshaking_per_address=5, max_handshaking=8)
    async with engine(config) as (server, port):

        async def handshaking(count: int) -> None:
            with trio.fail_after(3):
                while server.handshaking != count:
                    await trio.sleep(0.01)

        held = []
        for _ in range(5):
            held.append(await connect(port, "127.0.0.2"))
            await handshaking(len(held))
        # a sixth from that address: the oldest of the five is refused to make room
        held.append(await connect(port, "127.0.0.2"))
        response = await read_all(held.pop(0))
        assert status(response) == 503
        assert b"Too many connections handshaking" in response
        await handshaking(5)
        # another address gets in too, until the overall cap: then the oldest of all goes
        for _ in range(3):
            held.append(await connect(port, "127.0.0.3"))
            await handshaking(len(held))
        newcomer = await connect(port, "127.0.0.4")
        assert status(await read_all(held.pop(0))) == 503
        totals = server.totals()
        assert totals["refused_handshaking_per_address"] == 1
        assert totals["refused_handshaking_total"] == 1
        # the newest are served: a request completes, and frees its place
        await newcomer.send_all(
            b"GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n"
            b"Connection: close\r\n\r\n"
        )
        assert status(await read_all(newcomer)) == 200
        await handshaking(7)
        for stream in held:
            await stream.aclose()
        await handshaking(0)


async def test_a_thousand_half_open_connections_leave_room_for_everyone_else() -> None:
    """The attack of the issue, scaled down: a thousand half-open requests (a GET whose body
    never comes) from one address hold at most the per-address cap of descriptors, and a
    client connecting afterwards, from that address or another, is served."""
    config = replace(CONFIG, max_handshaking_per_address=64, max_handshaking=512)
    async with engine(config) as (server, port):
        head = (
            b"GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 100\r\n\r\n"
        )
        attackers = []
        for _ in range(1000):
            stream = await connect(port, "127.0.0.5")
            with suppress(trio.BrokenResourceError):
                await stream.send_all(head)
            attackers.append(stream)
        with trio.fail_after(5):
            while server.totals()["refused_handshaking_per_address"] < 1000 - 64:
                await trio.sleep(0.01)
        assert server.handshaking <= 64
        for source in ("127.0.0.5", "127.0.0.6"):
            client = await connect(port, source)
            await client.send_all(
                b"GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n"
                b"Connection: close\r\n\r\n"
            )
            assert status(await read_all(client)) == 200
        for stream in attackers:
            await stream.aclose()


# ---- one big POST does not hold the loop ----------------------------------------------------


async def test_a_million_noops_in_one_post_are_dispatched_in_slices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another task runs again and again while one POST's ~500,000 packets are handed to
    the session: they go in slices with a checkpoint between them."""
    ticks = 0
    seen: list[int] = []
    receive = Session.receive

    async def counting_receive(self: Session, packet: Any) -> None:
        seen.append(ticks)
        await receive(self, packet)

    monkeypatch.setattr(Session, "receive", counting_receive)
    async with engine(replace(CONFIG, ping_interval=30, ping_timeout=30)) as (server, port):
        sid = await open_session(port)
        body = "\x1e".join(["6"] * 499_999).encode()

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await trio.lowlevel.checkpoint()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ticker)
            stream = await post(port, sid, body)
            response = await stream.receive_some(65536)
            nursery.cancel_scope.cancel()
        assert status(response) == 200
        assert len(seen) == 499_999
        # the ticker ran between slices: at least once per POST_SLICE packets
        assert seen[-1] - seen[0] >= len(seen) // polling.POST_SLICE - 1
        assert sid in server.sessions


async def test_packets_before_a_malformed_record_are_delivered_then_the_session_closes() -> None:
    got: list[Any] = []

    class Recorder(Echo):
        async def on_message(self, data: str | bytes) -> None:
            got.append(data)

    server = EngineServer(FAST, Recorder)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(server.serve, "127.0.0.1", 0)
        port = listeners[0].socket.getsockname()[1]
        sid = await open_session(port)
        body = b"4one\x1e4two\x1e?bad\x1e4never"
        stream = await post(port, sid, body)
        assert status(await stream.receive_some(65536)) == 400
        assert got == ["one", "two"]  # as the reference server does
        assert sid not in server.sessions
        nursery.cancel_scope.cancel()


async def test_pongs_nobody_asked_for_cost_nothing() -> None:
    """A body of 100,000 PONGs: only the pong of the ping that is out counts, so the
    heartbeat's queue does not grow with what a client sends."""
    async with engine(replace(CONFIG, ping_interval=30, ping_timeout=30)) as (server, port):
        sid = await open_session(port)
        body = "\x1e".join(["3"] * 100_000).encode()
        stream = await post(port, sid, body)
        assert status(await stream.receive_some(65536)) == 200
        assert len(server.heartbeat.deadlines) <= 2
        assert sid in server.sessions


def test_the_overall_cap_leaves_half_the_descriptors_to_served_connections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine_config.resource, "getrlimit", lambda _: (1024, 4096))
    assert EngineServer(replace(CONFIG, max_handshaking=1024), Echo).max_handshaking == 512
    assert EngineServer(replace(CONFIG, max_handshaking=100), Echo).max_handshaking == 100
    assert EngineServer(replace(CONFIG, max_handshaking=0), Echo).max_handshaking == 512
