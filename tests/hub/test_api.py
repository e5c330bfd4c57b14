"""The hub's public Python API, driven by real connections on loopback."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio
import trio.lowlevel

from server.hub import AckTimeout, ConnectRefused, Disconnected, Hub, Socket
from server.hub.protocol import socketio as sio
from server.hub.selection import BroadcastOptions
from tests.hub.conftest import serving
from tests.hub.rawclient import raw_client


async def test_handlers_sync_and_async_answer_acks() -> None:
    hub = Hub()

    @hub.on("sum")
    def add(socket: Socket, a: int, b: int) -> int:
        return a + b

    @hub.on("pair")
    async def pair(socket: Socket) -> tuple[str, int]:
        await trio.lowlevel.checkpoint()
        return ("x", 2)

    @hub.on("nothing")
    def nothing(socket: Socket) -> None:
        return None

    async with serving(hub) as url, raw_client(url) as client:
        for event, args, expected in (
            ("sum", (2, 3), [5]),
            ("pair", (), ["x", 2]),
            ("nothing", (), []),
        ):
            ack_id = await client.emit(event, *args, ack=True)
            answer = await client.receive()
            assert answer.type is sio.PacketType.ACK and answer.id == ack_id
            assert answer.data == expected


async def test_async_handlers_start_in_arrival_order() -> None:
    hub = Hub()
    started: list[int] = []

    @hub.on("n")
    async def record(socket: Socket, n: int) -> None:
        started.append(n)  # before the first checkpoint: must follow arrival order
        await trio.sleep(0.01 * (n % 3))

    async with serving(hub) as url, raw_client(url) as client:
        for n in range(50):
            await client.emit("n", n)
        with trio.fail_after(5):
            while len(started) < 50:
                await trio.sleep(0.01)
    assert started == list(range(50))


async def test_handlers_in_flight_are_bounded_per_connection() -> None:
    hub = Hub(max_handlers=2)
    release = trio.Event()
    running = 0
    peak = 0

    @hub.on("work")
    async def work(socket: Socket) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await release.wait()
        running -= 1

    async with serving(hub) as url, raw_client(url) as client:
        for _ in range(5):
            await client.emit("work")
        await trio.sleep(0.2)
        assert running == 2 and peak == 2  # the reader waits for a free slot
        release.set()
        with trio.fail_after(5):
            while running or hub.stats["packets_in"] < 6:
                await trio.sleep(0.01)
    assert peak == 2


async def test_a_failing_handler_is_logged_and_the_connection_lives_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hub = Hub()

    @hub.on("boom")
    async def boom(socket: Socket) -> None:
        raise RuntimeError("handler bug")

    @hub.on("ping")
    def ping(socket: Socket) -> str:
        return "pong"

    async with serving(hub) as url, raw_client(url) as client:
        await client.emit("boom", ack=True)
        ack_id = await client.emit("ping", ack=True)
        answer = await client.receive()
        assert (answer.id, answer.data) == (ack_id, ["pong"])
    assert hub.stats["handler_errors"] == 1
    assert "handler bug" in caplog.text


async def test_emit_with_ack_answer_timeout_and_disconnect() -> None:
    hub = Hub()
    sockets: list[Socket] = []
    hub.on("connect", sockets.append)

    async with serving(hub) as url:
        async with raw_client(url) as client:
            async with trio.open_nursery() as nursery:

                async def answer_once() -> None:
                    packet = await client.receive()
                    assert packet.data == ["question", 1]
                    assert packet.id is not None
                    await client.ack(packet.id, "answer", 2)

                nursery.start_soon(answer_once)
                assert await sockets[0].emit_with_ack("question", 1) == ("answer", 2)

            with pytest.raises(AckTimeout):
                await sockets[0].emit_with_ack("ignored", timeout=0.2)

            waiting: list[BaseException] = []

            async def wait_for_ack() -> None:
                try:
                    await sockets[0].emit_with_ack("never", timeout=5)
                except Disconnected as exc:
                    waiting.append(exc)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(wait_for_ack)
                await client.receive()  # the "never" event
                await client.ws.aclose()
        assert len(waiting) == 1


async def test_broadcast_with_ack_collects_every_answer() -> None:
    hub = Hub()
    async with serving(hub) as url, raw_client(url) as a, raw_client(url) as b:

        async def answer(client: Any, value: str) -> None:
            packet = await client.receive()
            await client.ack(packet.id, value)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(answer, a, "from a")
            nursery.start_soon(answer, b, "from b")
            responses = await hub.emit_with_ack("poll", timeout=3)
        assert sorted(responses) == ["from a", "from b"]


async def test_rooms_to_except_broadcast_and_socket_to() -> None:
    hub = Hub()
    by_name: dict[str, Socket] = {}

    @hub.on("connect")
    def named(socket: Socket) -> None:
        by_name[socket.handshake.auth["name"]] = socket

    async with (
        serving(hub) as url,
        raw_client(url, auth={"name": "a"}) as a,
        raw_client(url, auth={"name": "b"}) as b,
        raw_client(url, auth={"name": "c"}) as c,
    ):
        by_name["a"].join("red", "blue")
        by_name["b"].join("red")
        by_name["c"].join("blue", "vip")
        assert by_name["a"].rooms == {by_name["a"].id, "red", "blue"}

        assert hub.to("red").emit("m", 1) == 2
        assert await a.receive_event("m") == [1] and await b.receive_event("m") == [1]

        assert hub.to("blue").except_("vip").emit("m", 2) == 1
        assert await a.receive_event("m") == [2]

        assert by_name["a"].to("red", "blue").emit("m", 3) == 2  # sender excluded
        assert await b.receive_event("m") == [3] and await c.receive_event("m") == [3]

        assert by_name["b"].broadcast.emit("m", 4) == 2
        assert await a.receive_event("m") == [4] and await c.receive_event("m") == [4]

        by_name["a"].leave("blue")
        assert hub.in_("blue").emit("m", 5) == 1
        assert await c.receive_event("m") == [5]

        # nothing stray arrived: each client's next message is this one
        hub.emit("last")
        for client in (a, b, c):
            assert await client.receive_event("last", timeout=2) == []


async def test_a_room_is_written_to_in_the_order_its_sockets_joined() -> None:
    """Join order, as Node's rooms (sets in insertion order) give it. A hash order spread each
    broadcast's writes over every client process at once, which then preempted one another
    on a small machine (the fan-out's p99 went from ~1.0 to ~0.84 of Node's with this)."""
    hub = Hub()
    async with serving(hub) as url:
        clients = [raw_client(url) for _ in range(6)]
        async with clients[0], clients[1], clients[2], clients[3], clients[4], clients[5]:
            sockets = list(hub.main.sockets.values())
            order = [sockets[i] for i in (3, 0, 5, 1, 4, 2)]
            for socket in order:
                socket.join("room")
            room = BroadcastOptions(rooms=frozenset({"room"}))
            selected = list(hub.main.adapter.selected(room))
            assert selected == [s.id for s in order]
            order[0].leave("room")
            order[0].join("room")  # back, at the end
            selected = list(hub.main.adapter.selected(room))
            assert selected == [s.id for s in order[1:] + order[:1]]


async def test_fetch_join_leave_and_disconnect_sockets() -> None:
    hub = Hub()
    reasons: list[str] = []

    @hub.on("disconnect")
    def gone(socket: Socket, reason: str) -> None:
        reasons.append(reason)

    async with serving(hub) as url, raw_client(url) as a, raw_client(url) as b:
        assert len(await hub.fetch_sockets()) == 2
        await hub.sockets_join("team")
        assert len(await hub.in_("team").fetch_sockets()) == 2
        first = (await hub.fetch_sockets())[0]
        await hub.in_(first.id).sockets_leave("team")
        assert [s.id for s in await hub.in_("team").fetch_sockets()] != [first.id]
        assert len(await hub.in_("team").fetch_sockets()) == 1

        await hub.in_("team").disconnect_sockets()
        # exactly one of the two got a DISCONNECT packet for "/"
        got = []
        for client in (a, b):
            with trio.move_on_after(0.5):
                packet = await client.receive()
                got.append(packet.type)
        assert got == [sio.PacketType.DISCONNECT]
        assert reasons == ["server namespace disconnect"]
        assert len(await hub.fetch_sockets()) == 1


async def test_disconnect_with_close_ends_the_connection() -> None:
    hub = Hub()
    sockets: list[Socket] = []
    hub.on("connect", sockets.append)
    async with serving(hub) as url, raw_client(url) as client:
        await sockets[0].disconnect(close=True)
        assert (await client.receive()).type is sio.PacketType.DISCONNECT
        assert await client.closed()
    assert hub.client_count == 0


async def test_socket_data_handshake_and_lifecycle_handlers() -> None:
    hub = Hub()
    seen: dict[str, Any] = {}

    @hub.use
    async def authenticate(socket: Socket) -> None:
        socket.data["user"] = socket.handshake.auth.get("user")

    @hub.on("whoami")
    def whoami(socket: Socket) -> Any:
        return socket.data["user"]

    @hub.on("disconnecting")
    def disconnecting(socket: Socket, reason: str) -> None:
        seen["rooms_while_disconnecting"] = set(socket.rooms)

    @hub.on("disconnect")
    def disconnect(socket: Socket, reason: str) -> None:
        seen["rooms_after"] = set(socket.rooms)
        seen["reason"] = reason

    @hub.on("connect")
    def connect(socket: Socket) -> None:
        socket.join("lobby")
        seen["handshake"] = socket.handshake

    async with (
        serving(hub) as url,
        raw_client(url, auth={"user": "ada"}, query="&team=core") as client,
    ):
        ack_id = await client.emit("whoami", ack=True)
        assert (await client.receive()).data == ["ada"]
        assert ack_id is not None
    with trio.fail_after(2):
        while "reason" not in seen:
            await trio.sleep(0.01)
    handshake = seen["handshake"]
    assert handshake.auth == {"user": "ada"}
    assert handshake.query["team"] == "core"
    assert handshake.address == "127.0.0.1"
    assert "host" in handshake.headers
    assert "lobby" in seen["rooms_while_disconnecting"]
    assert seen["rooms_after"] == set()
    assert seen["reason"] == "transport close"


async def test_middlewares_run_in_order_and_can_refuse() -> None:
    hub = Hub()
    admin = hub.of("/admin")
    order: list[str] = []

    @admin.use
    def first(socket: Socket) -> None:
        order.append("first")

    @admin.use
    async def second(socket: Socket) -> None:
        order.append("second")
        if socket.handshake.auth.get("role") != "admin":
            raise ConnectRefused("admins only", {"need": "admin"})

    async with serving(hub) as url, raw_client(url, nsp=None) as client:
        refused = await client.connect_namespace("/admin", {"role": "guest"})
        assert refused.type is sio.PacketType.CONNECT_ERROR
        assert refused.data == {"message": "admins only", "data": {"need": "admin"}}
        accepted = await client.connect_namespace("/admin", {"role": "admin"})
        assert accepted.type is sio.PacketType.CONNECT
    assert order == ["first", "second", "first", "second"]


async def test_reserved_event_names_cannot_be_emitted() -> None:
    hub = Hub()
    sockets: list[Socket] = []
    hub.on("connect", sockets.append)
    async with serving(hub) as url, raw_client(url):
        for name in ("connect", "disconnect", "connect_error", "newListener"):
            with pytest.raises(ValueError, match="reserved"):
                sockets[0].emit(name)
            with pytest.raises(ValueError, match="reserved"):
                hub.emit(name)


async def test_volatile_dropped_when_full_and_slow_consumer_closed() -> None:
    """A polling client that stops polling: volatile packets are dropped, then a non-volatile
    one past the limit, once it has not polled for ``slow_consumer_timeout``, closes it, and
    a well-behaved client notices nothing."""
    hub = Hub(max_queue=8, slow_consumer_timeout=0.2)
    async with serving(hub) as url, raw_client(url) as healthy:
        base = f"{url}/socket.io/?EIO=4&transport=polling"
        async with httpx.AsyncClient() as http:
            opened = (await http.get(base)).text
            sid = opened[opened.index('"sid":"') + 7 :].split('"', 1)[0]
            await http.post(f"{base}&sid={sid}", content="40")
            session = hub.engine.sessions[sid]
            for n in range(20):
                hub.volatile.emit("tick", n)
                await trio.lowlevel.checkpoint()
            assert session.dropped_volatile > 0
            assert session.is_open
            await trio.sleep(0.25)
            for _ in range(20):
                hub.emit("important")
                # the polling session's queue only drains when its client polls
                await trio.lowlevel.checkpoint()
            assert not session.is_open and session.close_reason == "slow consumer"
            # the healthy client received every non-volatile packet
            for _ in range(20):
                assert await healthy.receive_event("important") == []
            assert sid not in hub.engine.sessions


async def test_connect_timeout_closes_a_connection_without_namespace() -> None:
    hub = Hub(connect_timeout=0.3)
    async with serving(hub) as url, raw_client(url, nsp=None) as client:
        assert await client.closed(timeout=3)


@pytest.mark.parametrize(
    "packet",
    ['42/nowhere,["x"]', "40", '44{"message":"x"}'],
    ids=["event-for-a-namespace-not-joined", "second-connect", "connect-error-from-client"],
)
async def test_packets_in_the_wrong_state_close_the_connection(packet: str) -> None:
    """Node's server treats these as a broken client and closes the connection."""
    hub = Hub()
    async with serving(hub) as url, raw_client(url) as bystander, raw_client(url) as client:
        await client.send_text(packet)
        assert await client.closed()
        ack_id = await bystander.emit("unknown-event-is-fine", ack=False)
        assert ack_id is None
        assert len(await hub.fetch_sockets()) == 1
    assert hub.stats["parse_errors"] == 1


def test_a_broadcast_with_no_socket_needs_no_trio_run() -> None:
    """Before the hub serves (or in a plain function of a program that has not started
    Trio yet), an emit reaches no one and says so, as it did before broadcasts wrote in
    batches tied to the run's ticker."""
    hub = Hub()
    assert hub.emit("news", 1) == 0
    assert hub.to("room").emit("news", 2) == 0
