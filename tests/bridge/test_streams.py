"""Streams mode (``@socket.io/redis-streams-adapter``'s format): two of our hubs on one real
redis-server, the cluster API across them, and connection state recovery from one node to
the other."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
from coredis.tokens import PureToken

from server.hub.bridge import streams
from server.hub.config import HubConfig
from server.hub.remote import RemoteSocket
from tests.bridge.nodes import Node, bridged_node, joined, wait_for
from tests.bridge.redis_server import RedisServer
from tests.hub.rawclient import raw_client

RECOVERY = HubConfig.of(connection_state_recovery=True)


@asynccontextmanager
async def two_nodes(redis_server: RedisServer) -> AsyncIterator[tuple[Node, Node]]:
    """Two hubs in streams mode, with connection state recovery, that see each other."""
    async with (
        bridged_node(redis_server.url, mode="streams", config=RECOVERY) as one,
        bridged_node(redis_server.url, mode="streams", config=RECOVERY) as two,
    ):
        await wait_for(lambda: one.bridge.nodes == 2)
        yield one, two


async def test_broadcasts_requests_and_rooms_cross_nodes(redis_server: RedisServer) -> None:
    async with (
        bridged_node(redis_server.url, mode="streams") as one,
        bridged_node(redis_server.url, mode="streams") as two,
        raw_client(one.url, auth={"name": "a"}) as a,
        raw_client(two.url, auth={"name": "b"}) as b,
    ):
        await wait_for(lambda: one.bridge.nodes == 2 and two.bridge.nodes == 2)
        for client in (a, b):
            await joined(client, "project:1")
        one.hub.to("project:1").emit("news", "to all", b"\x01\x02")
        assert await a.receive_event("news") == ["to all", b"\x01\x02"]
        assert await b.receive_event("news") == ["to all", b"\x01\x02"]
        two.hub.to("project:1").except_(b.sids["/"]).emit("news", "not b")
        assert await a.receive_event("news") == ["not b"]
        one.hub.to("project:1").local.emit("news", "only one")
        assert await a.receive_event("news") == ["only one"]
        two.hub.emit("news", "last")
        assert await a.receive_event("news") == ["last"]
        # b got neither the except nor the local one
        assert await b.receive_event("news") == ["last"]

        found = await one.hub.in_("project:1").fetch_sockets()
        remote = [s for s in found if isinstance(s, RemoteSocket)]
        assert [s.id for s in remote] == [b.sids["/"]]
        assert remote[0].data == {"name": "b"} and "project:1" in remote[0].rooms

        await one.hub.in_(b.sids["/"]).sockets_join("joined-from-one")
        await wait_for(lambda: "joined-from-one" in two.hub.of("/").sockets[b.sids["/"]].rooms)

        @two.bridge.on("ping")
        def pong(value: int) -> str:
            return f"pong {value}"

        assert await one.bridge.server_side_emit_with_ack("ping", 7) == ["pong 7"]

        answers: list[object] = []

        async def answer_ack() -> None:
            packet = await b.receive()
            assert packet.data[0] == "question" and packet.id is not None
            await b.ack(packet.id, "from b")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(answer_ack)
            answers = await one.hub.to(b.sids["/"]).timeout(3).emit_with_ack("question")
        assert answers == ["from b"]


async def test_a_client_moved_to_another_node_is_recovered(redis_server: RedisServer) -> None:
    """Cut from node one, the client comes back on node two: same id, its rooms, and every
    event it missed (from either node), in order, once."""
    async with two_nodes(redis_server) as (one, two):
        async with raw_client(one.url, auth={"name": "a"}) as first:
            await joined(first, "project:1")
            two.hub.to("project:1").emit("n", 1)
            assert await first.receive_event("n") == [1]
            one.hub.to("project:1").emit("n", 2)
            assert await first.receive_event("n") == [2]
            sid, pid, offset = first.sids["/"], first.pids["/"], first.offsets["/"]
            assert streams.parse_id(offset) is not None
        # the session is written when node one sees the socket go
        await wait_for(lambda: sid not in one.hub.of("/").sockets)
        for n in (3, 4):  # a moment apart, so the stream's order is the order made
            two.hub.to("project:1").emit("n", n)
            await trio.sleep(0.05)
            one.hub.to("project:1").emit("n", n * 10)
            await trio.sleep(0.05)
        one.hub.to("elsewhere").emit("n", "not for it")
        await trio.sleep(0.2)
        async with raw_client(two.url, nsp=None) as again:
            answer = await again.connect_namespace("/", {"pid": pid, "offset": offset})
            assert answer.data["sid"] == sid
            got = [await again.receive_event("n") for _ in range(4)]
            assert got == [[3], [30], [4], [40]]
            assert "project:1" in two.hub.of("/").sockets[sid].rooms
            two.hub.to("project:1").emit("n", 5)
            assert await again.receive_event("n") == [5]


async def test_a_session_is_kept_in_redis_while_connected(redis_server: RedisServer) -> None:
    """As if node one had died: it never sees the socket go (the client stays connected to
    it), yet node two restores the socket from what node one wrote while it was connected,
    with the room it joined last, and what it missed."""
    async with (
        two_nodes(redis_server) as (one, two),
        raw_client(one.url, auth={"name": "a"}) as first,
    ):
        await joined(first, "project:1")
        one.hub.to("project:1").emit("n", 1)
        assert await first.receive_event("n") == [1]
        sid, pid, offset = first.sids["/"], first.pids["/"], first.offsets["/"]
        await joined(first, "project:2")
        two.hub.to("project:2").emit("n", 2)
        two.hub.to("project:1").emit("n", 3)
        await trio.sleep(0.2)
        async with raw_client(two.url, nsp=None) as again:
            answer = await again.connect_namespace("/", {"pid": pid, "offset": offset})
            assert answer.data["sid"] == sid
            assert await again.receive_event("n") == [2]
            assert await again.receive_event("n") == [3]
            assert {"project:1", "project:2"} <= two.hub.of("/").sockets[sid].rooms


async def test_what_a_node_delivered_out_of_the_streams_order_is_not_given_twice(
    redis_server: RedisServer,
) -> None:
    """Node one delivers its own broadcast ``L`` at once, and node two's ``R`` when it reads
    it, later, though ``R`` is earlier in the stream. The client's last offset is then
    ``R``'s; a restore that replayed everything after it would give ``L`` again."""
    async with (
        two_nodes(redis_server) as (one, two),
        raw_client(one.url, auth={"name": "a"}) as first,
    ):
        await joined(first, "project:1")
        log = one.bridge.log
        assert log is not None
        held: list[object] = []
        log.entries = held.append  # type: ignore[method-assign]  # node one stops reading
        two.hub.to("project:1").emit("n", "R")
        await trio.sleep(0.2)  # R is in the stream; node one has not read it
        one.hub.to("project:1").emit("n", "L")
        assert await first.receive_event("n") == ["L"]
        del log.entries  # node one reads again: R comes
        for entries in held:
            log.entries(entries)  # type: ignore[arg-type]
        assert await first.receive_event("n") == ["R"]
        pid, offset = first.pids["/"], first.offsets["/"]
        two.hub.to("project:1").emit("n", "missed")
        await trio.sleep(0.2)
        async with raw_client(two.url, nsp=None) as again:
            answer = await again.connect_namespace("/", {"pid": pid, "offset": offset})
            assert answer.data["sid"] == first.sids["/"]
            assert await again.receive_event("n") == ["missed"]
            two.hub.to("project:1").emit("n", "next")
            assert await again.receive_event("n") == ["next"]


@pytest.mark.parametrize("trimmed", [False, True])
async def test_a_client_whose_last_packet_never_reached_the_stream_is_recovered(
    redis_server: RedisServer, trimmed: bool
) -> None:
    """Node one delivers its own ``L`` and dies before writing it (as if killed with its
    queue full): the client's offset is in no entry. It is restored all the same, with
    nothing lost: node one's entries up to ``L`` it had; the others' that node one read
    after its last entry in the stream (``X``) cannot be told from those it had not, so
    they come again (at least once, in that window only). Unless the stream was trimmed
    past the offset: then what it had cannot be told, and it starts afresh."""
    async with two_nodes(redis_server) as (one, two):
        async with raw_client(one.url, auth={"name": "a"}) as first:
            await joined(first, "project:1")
            one.hub.to("project:1").emit("n", "written")
            assert await first.receive_event("n") == ["written"]
            assert await one.bridge.flush(5)
            two.hub.to("project:1").emit("n", "X")
            assert await first.receive_event("n") == ["X"]
            one.bridge.driver.append = lambda *args, **kwargs: None  # type: ignore[method-assign]
            one.hub.to("project:1").emit("n", "L")  # delivered, never written
            assert await first.receive_event("n") == ["L"]
            sid, pid, offset = first.sids["/"], first.pids["/"], first.offsets["/"]
        await wait_for(lambda: sid not in one.hub.of("/").sockets)
        two.hub.to("project:1").emit("n", "Y")
        await trio.sleep(0.2)  # Y and the session are in Redis
        if trimmed:
            stream = streams.DEFAULT_STREAM
            await two.bridge.driver.call(lambda redis: redis.xtrim(stream, PureToken.MAXLEN, 1))
        async with raw_client(two.url, nsp=None) as again:
            answer = await again.connect_namespace("/", {"pid": pid, "offset": offset})
            if trimmed:
                assert answer.data["sid"] != sid
                return
            assert answer.data["sid"] == sid
            assert await again.receive_event("n") == ["X"]  # again
            assert await again.receive_event("n") == ["Y"]
            two.hub.to("project:1").emit("n", "next")
            assert await again.receive_event("n") == ["next"]
        assert two.bridge.stats["restores_from_lost_entries"] == 1


async def test_what_a_node_had_not_read_yet_is_given_back(redis_server: RedisServer) -> None:
    """The other way round: node one dies having delivered its own ``L`` but not yet read
    node two's earlier ``X``. The client's offset is ``L``'s; ``X``, before it in the
    stream, is given back (everything after the offset would leave it out)."""
    async with (
        two_nodes(redis_server) as (one, two),
        raw_client(one.url, auth={"name": "a"}) as first,
    ):
        await joined(first, "project:1")
        await trio.sleep(0.1)  # the session with the room is written
        log = one.bridge.log
        assert log is not None
        log.entries = lambda entries: None  # type: ignore[method-assign]  # stops reading
        two.hub.to("project:1").emit("n", "X")
        await trio.sleep(0.2)
        one.hub.to("project:1").emit("n", "L")
        assert await first.receive_event("n") == ["L"]
        pid, offset = first.pids["/"], first.offsets["/"]
        await trio.sleep(0.2)  # L is in the stream
        async with raw_client(two.url, nsp=None) as again:
            answer = await again.connect_namespace("/", {"pid": pid, "offset": offset})
            assert answer.data["sid"] == first.sids["/"]
            assert await again.receive_event("n") == ["X"]
            two.hub.to("project:1").emit("n", "next")
            assert await again.receive_event("n") == ["next"]
