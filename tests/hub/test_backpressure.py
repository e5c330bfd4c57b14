"""The send path under load: direct writes to idle sockets, backlogs, slow consumers."""

from __future__ import annotations

import contextlib
import json
import socket as stdsocket
from typing import Any

import pytest
import trio
import trio.lowlevel
from trio_websocket import open_websocket_url

from server.hub import Hub, Socket
from server.hub.engine import DirectWrites, EngineConfig, Wire, websocket
from server.hub.engine.ticks import current_ticker
from server.hub.engine.websocket import WebSocketTransport
from tests.hub.conftest import serving
from tests.hub.rawclient import raw_client


def transport_on(ours: stdsocket.socket) -> WebSocketTransport:
    """A WebSocket transport over our end of a socket pair (no handshake, no session)."""
    stream = trio.SocketStream(trio.socket.from_stdlib_socket(ours))
    return WebSocketTransport(stream, EngineConfig(), b"")


def transport_of(hub: Hub, socket: Socket) -> WebSocketTransport:
    transport = socket.client.session.transport
    assert isinstance(transport, WebSocketTransport)
    return transport


async def first_socket(sockets: list[Socket]) -> Socket:
    with trio.fail_after(5):
        while not sockets:
            await trio.sleep(0.01)
    return sockets[0]


def stalled_client(url: str, connect_packet: bytes) -> stdsocket.socket:
    """A blocking socket that upgrades to WebSocket and sends ``connect_packet`` (a Socket.IO
    CONNECT) in one go, with a 4 KB receive buffer; the test then never reads from it."""
    host, port = url.removeprefix("http://").split(":")
    stalled = stdsocket.create_connection((host, int(port)))
    stalled.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_RCVBUF, 4096)
    stalled.sendall(
        b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n"
        b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    mask = b"\x01\x02\x03\x04"  # a client's frames are masked
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(connect_packet))
    stalled.sendall(bytes([0x81, 0x80 | len(connect_packet)]) + mask + masked)
    return stalled


async def test_a_burst_past_max_queue_reaches_a_fast_client_whole() -> None:
    """Direct writes do not queue: a burst with no checkpoint does not make a fast client a
    slow consumer, however small max_queue is."""
    hub = Hub(max_queue=8)
    sockets: list[Socket] = []
    hub.on("connect", sockets.append)
    async with serving(hub) as url, raw_client(url) as client:
        for n in range(500):
            hub.emit("n", n)  # no checkpoint in between
        for n in range(500):
            assert await client.receive_event("n") == [n]
        stats = current_ticker().stats  # the fast path's counts (this run's only connection)
        assert stats["direct"] + stats["gathered"] >= 500
        assert transport_of(hub, sockets[0]).writer_writes == 0
        assert sockets[0].connected


async def test_partial_writes_and_control_frames_keep_every_frame_whole() -> None:
    """Large packets to a client that reads slowly: direct writes end part-way, the writer
    finishes them, control frames (pongs) wait their turn, and every packet arrives intact
    and in order."""
    hub = Hub(max_queue=10_000)
    sockets: list[Socket] = []
    hub.on("connect", sockets.append)
    blob = "x" * 60_000
    count = 150
    async with serving(hub) as url:
        ws_url = url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
        async with open_websocket_url(ws_url, message_queue_size=0) as ws:
            await ws.get_message()  # Engine.IO open
            await ws.send_message("40")
            assert (await ws.get_message()).startswith("40")

            async def produce() -> None:
                for n in range(count):
                    sockets[0].emit("big", n, blob)
                    if n % 10 == 0:
                        await trio.sleep(0.001)

            received: list[int] = []
            async with trio.open_nursery() as nursery:
                nursery.start_soon(produce)
                while len(received) < count:
                    message = await ws.get_message()
                    if message == "2":
                        await ws.send_message("3")
                        continue
                    assert isinstance(message, str) and message.startswith("42"), message[:40]
                    event, n, payload = json.loads(message[2:])
                    assert (event, payload) == ("big", blob)
                    received.append(n)
                    if n % 15 == 0:
                        # the server's pong is a control frame; its arrival is awaited in
                        # the background (our reader is what delivers it)
                        nursery.start_soon(ws.ping, str(n).encode())
                        await trio.sleep(0.02)  # read slowly: the socket buffer fills
        transport = transport_of(hub, sockets[0])
        direct = current_ticker().stats["direct"]
    assert received == list(range(count))
    assert transport.writer_writes > 0, "the slow reader never built a backlog"
    assert direct > 0


async def test_a_stalled_client_is_closed_and_the_others_receive_everything() -> None:
    hub = Hub(max_queue=64)
    sockets: dict[str, Socket] = {}

    @hub.on("connect")
    def named(socket: Socket) -> None:
        sockets[socket.handshake.auth["name"]] = socket

    async with serving(hub) as url:
        stalled = stalled_client(url, b'40{"name":"stalled"}')
        try:
            async with raw_client(url, auth={"name": "ok"}) as healthy:
                with trio.fail_after(5):
                    while "stalled" not in sockets:
                        await trio.sleep(0.01)
                slow = sockets["stalled"]
                blob = "y" * 4000
                received: list[Any] = []
                for n in range(400):
                    hub.emit("tick", n, blob)
                    if n % 4 == 0:
                        await trio.lowlevel.checkpoint()
                    while len(received) < n - 50:  # the healthy client keeps up
                        received.append((await healthy.receive_event("tick"))[0])
                while len(received) < 400:
                    received.append((await healthy.receive_event("tick"))[0])
                assert received == list(range(400))
                assert not slow.connected
                assert slow.client.session.close_reason == "slow consumer"
                assert sockets["ok"].connected
        finally:
            stalled.close()


async def test_a_stalled_client_is_cut_off_after_its_ping_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A client that stops reading gets no pongs through: the ping timeout closes its session,
    and the CLOSE stuck behind unread data must not keep the TCP connection open for ever."""
    monkeypatch.setattr(websocket, "CLOSE_FLUSH_TIMEOUT", 0.5)
    # neither queue limit (packets, bytes) may close it first: this is the ping timeout's test
    hub = Hub(ping_interval=0.3, ping_timeout=0.3, max_queue=100_000, max_queue_bytes=1 << 30)
    sockets: list[Socket] = []
    hub.on("connect", sockets.append)
    async with serving(hub) as url:
        stalled = stalled_client(url, b"40")
        await first_socket(sockets)
        blob = "z" * 65_000
        for n in range(200):  # 13 MB: more than the kernel buffers between us hold
            sockets[0].emit("blob", n, blob)
        transport = transport_of(hub, sockets[0])
        with trio.fail_after(10):
            while sockets[0].connected:
                await trio.sleep(0.05)
        assert sockets[0].client.session.close_reason == "ping timeout"
        # the server has cut the connection: what is left in the pipe ends with EOF (or RST)
        peer = trio.socket.from_stdlib_socket(stalled)
        with trio.fail_after(10):
            try:
                while await peer.recv(1 << 20):
                    pass
            except ConnectionResetError:
                pass
        assert transport.writer_writes > 0
        peer.close()


async def test_the_outbound_queue_is_bounded_in_bytes_too() -> None:
    """Far fewer packets than ``max_queue``, but more bytes than ``max_queue_bytes``:
    volatile ones are dropped; a non-volatile one is kept while the client has not been
    stalled for ``slow_consumer_timeout``, and closes it once it has."""
    hub = Hub(max_queue=100_000, max_queue_bytes=1_000_000, slow_consumer_timeout=0.5)
    sockets: list[Socket] = []
    hub.on("connect", sockets.append)
    async with serving(hub) as url:
        stalled = stalled_client(url, b"40")
        socket = await first_socket(sockets)
        session = socket.client.session
        blob = "z" * 50_000
        for _ in range(400):  # 20 MB: more than the kernel buffers between us hold
            socket.volatile.emit("blob", blob)
        assert socket.connected
        assert session.dropped_volatile > 0
        assert session.queued_bytes <= 1_000_000 and len(session.queue) < 30
        socket.emit("blob", blob)
        assert socket.connected and session.kept_past_bounds == 1
        assert 0 < session.unread_for() < 0.5
        await trio.sleep(0.6)
        for _ in range(40):  # until the queue is past its bounds again (the writer took some)
            socket.emit("blob", blob)
            if not socket.connected:
                break
        assert session.close_reason == "slow consumer"
        assert session.queued_bytes <= 1_100_000
        stalled.close()


async def test_a_burst_past_the_bounds_to_a_reading_client_is_kept() -> None:
    """The hub works through a burst (no checkpoint) bigger than the queue's bounds and
    the kernel's buffers: the client reads all along, so the backlog is the hub's, not the
    client's. The session is kept and every packet arrives, in order; before, a full queue
    closed it whatever the cause."""
    hub = Hub(max_queue=8, queue_hard_limit=50)
    sockets: list[Socket] = []
    hub.on("connect", sockets.append)
    blob = "b" * 100_000
    async with serving(hub) as url, raw_client(url) as client:
        socket = await first_socket(sockets)
        session = socket.client.session
        for n in range(80):  # 8 MB in one go: the socket fills, the queue passes 8
            socket.emit("big", n, blob)
        assert socket.connected and session.kept_past_bounds > 0
        for n in range(80):
            assert await client.receive_event("big") == [n, blob]
        assert socket.connected


async def test_past_the_hard_limit_a_session_is_closed_whatever_the_cause() -> None:
    """Memory stays bounded: a queue at ``queue_hard_limit`` times its bounds closes the
    session even though its client has not been stalled long."""
    hub = Hub(max_queue=8, queue_hard_limit=2, slow_consumer_timeout=60)
    sockets: list[Socket] = []
    hub.on("connect", sockets.append)
    blob = "h" * 100_000
    async with serving(hub) as url, raw_client(url):
        socket = await first_socket(sockets)
        session = socket.client.session
        for n in range(80):
            socket.emit("big", n, blob)
            if not socket.connected:
                break
        assert session.close_reason == "slow consumer"
        assert len(session.queue) <= 2 * 8 + 1  # the close packet after the 16 kept


async def test_unread_bytes_are_what_the_peer_has_not_taken() -> None:
    """The measure the slow-consumer rule uses: bytes in a TCP socket that its peer has not
    taken yet; zero once the peer has read everything."""
    listener = stdsocket.create_server(("127.0.0.1", 0))
    client = stdsocket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    listener.close()
    server.setblocking(False)
    sent = 0
    try:
        while True:
            sent += server.send(b"u" * 65536)
    except BlockingIOError:
        pass
    backlog = websocket.unread_bytes(server.fileno())
    assert backlog is not None and 0 < backlog <= sent
    received = 0
    client.settimeout(5)
    while received < sent:
        received += len(client.recv(1 << 20))
    with trio.fail_after(5):
        while websocket.unread_bytes(server.fileno()) != 0:
            await trio.sleep(0.01)
    client.close()
    server.close()


async def test_a_burst_to_one_socket_is_gathered_into_one_write() -> None:
    """A packet on an idle connection is written at once; the packets that follow it within
    the same tick (one step of the handler here, as a reader working through a chunk of
    messages) are gathered and written with one call when the tick is over, in order."""

    hub = Hub()

    @hub.on("burst")
    def burst(socket: Socket, count: int) -> None:
        for n in range(count):
            socket.emit("n", n)

    async with serving(hub) as url, raw_client(url) as client:
        stats = current_ticker().stats
        before = stats.copy()
        await client.emit("burst", 1)
        assert await client.receive_event("n") == [0]
        assert stats["direct"] - before["direct"] == 1 and stats["gathered"] == before["gathered"]

        before = stats.copy()
        await client.emit("burst", 50)
        assert [(await client.receive_event("n"))[0] for _ in range(50)] == list(range(50))
        assert stats["direct"] - before["direct"] == 1
        assert stats["gathered"] - before["gathered"] == 49
        assert stats["flushes"] - before["flushes"] == 1


async def test_gathered_frames_of_a_connection_that_ended_are_not_written() -> None:
    """A connection that ends in the tick in which it gathered frames: the flush at the end
    of the tick writes nothing (its descriptor number may be another connection's by then)."""

    ours, theirs = stdsocket.socketpair()
    transport = transport_on(ours)
    ticker = current_ticker()
    assert transport.try_write(Wire.messages(["first"]))  # written at once
    assert transport.try_write(Wire.messages(["second"]))  # gathered
    flushes = ticker.stats["flushes"]
    await transport.stream.aclose()
    transport.flush_gathered()
    assert ticker.stats["flushes"] == flushes
    theirs.settimeout(1)
    received = b""
    while chunk := theirs.recv(1024):  # until the end of the stream
        received += chunk
    assert b"first" in received and b"second" not in received
    theirs.close()


def peer_bytes(peer: stdsocket.socket) -> bytes:
    """What ``peer`` can read right now, without waiting."""
    received = b""
    while True:
        try:
            chunk = peer.recv(1 << 20, stdsocket.MSG_DONTWAIT)
        except BlockingIOError:
            return received
        if not chunk:
            return received
        received += chunk


async def test_a_broadcast_writes_once_every_recipient_was_looked_at_and_keeps_order() -> None:
    """The two passes of a broadcast: inside the batch nothing is written yet; frames sent
    to the same connection meanwhile (past the gathering bounds, too) wait for the tick's
    end, so they arrive after the batch's, in order."""
    from server.hub.engine.ticks import GATHER_COUNT

    pairs = [stdsocket.socketpair() for _ in range(3)]
    transports = [transport_on(ours) for ours, _ in pairs]
    await trio.lowlevel.checkpoint()  # a tick of its own: no transport has written in it
    first = Wire.messages(["first"])
    later = [Wire.messages([f"later {n}"]) for n in range(GATHER_COUNT + 10)]
    with DirectWrites(first.frames, current_ticker()) as batch:
        for transport in transports:
            assert transport.try_write(first, batch)
        assert all(peer_bytes(theirs) == b"" for _, theirs in pairs)
        for wire in later:  # the same tick: gathered, and past the bounds, kept
            assert transports[0].try_write(wire)
        assert peer_bytes(pairs[0][1]) == b""
    assert [peer_bytes(theirs) for _, theirs in pairs[1:]] == [first.frames] * 2
    assert peer_bytes(pairs[0][1]) == first.frames
    await trio.sleep(0.01)  # the tick is over: the ticker writes what was gathered
    assert peer_bytes(pairs[0][1]) == b"".join(wire.frames for wire in later)
    for transport in transports:
        await transport.stream.aclose()
    for _, theirs in pairs:
        theirs.close()


async def test_what_a_broadcast_could_not_write_goes_out_through_the_writer() -> None:
    """A recipient whose socket is full when the batch writes: the frames wait for its
    writer, go out first once the client reads, and whole; the other recipient got its
    frames at once."""

    full_ours, full_theirs = stdsocket.socketpair()
    idle_ours, idle_theirs = stdsocket.socketpair()
    full_ours.setblocking(False)
    filler = 0
    with contextlib.suppress(BlockingIOError):
        while True:
            filler += full_ours.send(b"f" * 65536)
    full = transport_on(full_ours)
    idle = transport_on(idle_ours)
    wire = Wire.messages(["m" * 10_000])
    async with trio.open_nursery() as nursery:
        full.attach(nursery)
        idle.attach(nursery)
        await trio.lowlevel.checkpoint()
        with DirectWrites(wire.frames, current_ticker()) as batch:
            assert full.try_write(wire, batch) and idle.try_write(wire, batch)
        assert peer_bytes(idle_theirs) == wire.frames
        assert not full.try_write(wire)  # its rest waits for the writer: nothing jumps it
        received = b""
        with trio.fail_after(5):
            while len(received) < filler + len(wire.frames):
                received += peer_bytes(full_theirs)
                await trio.sleep(0.001)
        assert received == b"f" * filler + wire.frames
        # counted as direct: the rest's write is not a packet of the writer's
        assert full.writer_writes == 0 and current_ticker().stats["direct"] == 2
        nursery.cancel_scope.cancel()
    for sock in (full_theirs, idle_theirs):
        sock.close()


async def test_a_broadcast_writes_a_chunk_of_recipients_at_a_time() -> None:
    """The first recipients do not wait for the last to be looked at: every DIRECT_CHUNK
    recipients the batch writes; the rest go out when it ends."""
    from server.hub.engine.ticks import DIRECT_CHUNK

    pairs = [stdsocket.socketpair() for _ in range(DIRECT_CHUNK + 1)]
    transports = [transport_on(ours) for ours, _ in pairs]
    await trio.lowlevel.checkpoint()
    wire = Wire.messages(["chunked"])
    with DirectWrites(wire.frames, current_ticker()) as batch:
        for transport in transports:
            assert transport.try_write(wire, batch)
        received = [peer_bytes(theirs) for _, theirs in pairs]
        assert received == [wire.frames] * DIRECT_CHUNK + [b""]
    assert peer_bytes(pairs[-1][1]) == wire.frames
    for transport in transports:
        await transport.stream.aclose()
    for _, theirs in pairs:
        theirs.close()


async def test_nothing_pending_is_jumped_by_a_direct_write() -> None:
    """One flag says whether a direct write may go out: anything waiting for the writer
    (control frames asked for before the connection had a nursery, a close) makes a send
    wait its turn, and the writer sends what waited first."""
    from server.hub.engine.wire import OP_TEXT, ws_frame

    ours, theirs = stdsocket.socketpair()
    transport = transport_on(ours)
    wire = Wire.messages(["after"])
    transport.send_text_now("first")  # no nursery yet: the writer is wanted, not running
    assert not transport.try_write(wire)
    async with trio.open_nursery() as nursery:
        transport.attach(nursery)
        with trio.fail_after(5):
            while transport._writer_running:  # the writer ends once nothing is left
                await trio.sleep(0.001)
        assert peer_bytes(theirs) == ws_frame(b"first", OP_TEXT)
        assert transport.try_write(wire)  # idle again: written at once
        assert peer_bytes(theirs) == wire.frames
        transport.close()
        assert not transport.try_write(wire)  # closing: nothing goes out after the close
        nursery.cancel_scope.cancel()
    theirs.close()
