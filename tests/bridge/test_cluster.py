"""Two hubs, each with its bridge, one real redis-server: the cluster API across processes.

The two hubs share this test's process (two bridges, two Redis connections each, distinct
uids): to Redis and to each other they are two nodes. Clients are real WebSocket clients.
"""

from __future__ import annotations

import pytest
import trio

from server.hub.config import HubConfig
from server.hub.errors import AckTimeout
from server.hub.remote import RemoteSocket
from tests.bridge.nodes import bridged_node, wait_for
from tests.bridge.redis_server import RedisServer
from tests.hub.rawclient import RawClient, raw_client


async def test_room_broadcast_crosses_nodes_with_except_and_local(
    redis_server: RedisServer,
) -> None:
    async with (
        bridged_node(redis_server.url) as one,
        bridged_node(redis_server.url) as two,
        raw_client(one.url, auth={"name": "a"}) as a,
        raw_client(two.url, auth={"name": "b"}) as b,
        raw_client(two.url, auth={"name": "c"}) as c,
    ):
        for client in (a, b, c):
            await client.emit("join", "project:1", ack=True)
            await client.receive()
        await b.emit("join", "muted", ack=True)
        await b.receive()
        one.hub.to("project:1").emit("news", "to all", b"\x01\x02")
        for client in (a, b, c):
            assert await client.receive_event("news") == ["to all", b"\x01\x02"]
        one.hub.to("project:1").except_("muted").emit("news", "not b")
        assert await a.receive_event("news") == ["not b"]
        assert await c.receive_event("news") == ["not b"]
        one.hub.to("project:1").local.emit("news", "only here")
        two.hub.to("project:1").volatile.emit("news", "volatile")
        assert await a.receive_event("news") == ["only here"]
        assert await a.receive_event("news") == ["volatile"]
        assert await c.receive_event("news") == ["volatile"]
        # b got neither the except nor the local one: the next thing it sees is the volatile
        assert await b.receive_event("news") == ["volatile"]
        # a client's broadcast from node two reaches node one, and not the sender
        await c.emit("say", "project:1", "hi")
        assert await a.receive_event("said") == ["hi"]
        assert await b.receive_event("said") == ["hi"]
        # the whole namespace, from node two
        two.hub.emit("everyone", 1)
        for client in (a, b, c):
            assert await client.receive_event("everyone") == [1]
        assert one.bridge.stats["broadcasts_in"] >= 3
        assert two.bridge.stats["published"] >= 2


async def test_a_node_skips_room_messages_without_local_members(
    redis_server: RedisServer,
) -> None:
    async with (
        bridged_node(redis_server.url) as one,
        bridged_node(redis_server.url) as two,
        raw_client(one.url) as a,
        raw_client(two.url) as b,
    ):
        await b.emit("join", "elsewhere", ack=True)
        await b.receive()
        skipped = one.bridge.stats["broadcasts_skipped"]
        two.hub.to("elsewhere").emit("x")
        two.hub.to("nowhere").emit("x")
        two.hub.emit("marker")
        assert await a.receive_event("marker") == []
        assert one.bridge.stats["broadcasts_skipped"] == skipped + 2
        assert await b.receive_event("x") == []


async def test_a_room_message_waits_for_a_member_that_may_come_back(
    redis_server: RedisServer,
) -> None:
    """Pub/sub mode with recovery on: the room's only member on node one is cut; what node
    two sends to the room meanwhile is not skipped (no socket of the room is here, but one
    may be restored), so the client gets it back when it returns, once and in order."""
    config = HubConfig(connection_state_recovery=True)
    async with (
        bridged_node(redis_server.url, config=config) as one,
        bridged_node(redis_server.url, config=config) as two,
    ):
        async with raw_client(one.url) as first:
            await first.emit("join", "room", ack=True)
            await first.receive()
            two.hub.to("room").emit("n", 0)
            assert await first.receive_event("n") == [0]
            pid, offset = first.pids["/"], first.offsets["/"]
        await wait_for(lambda: one.hub.main.adapter.recovery.awaited("room"), 5)  # type: ignore[union-attr]
        for n in (1, 2, 3):
            two.hub.to("room").emit("n", n)
        two.hub.to("elsewhere").emit("n", -1)  # no session here was in it: skipped
        two.hub.emit("marker")  # to everyone: after the three, on the same connection
        await wait_for(lambda: one.hub.main.adapter.recovery.packet_count >= 4, 5)  # type: ignore[union-attr]
        async with raw_client(one.url, auth={"pid": pid, "offset": offset}) as back:
            assert back.sids["/"] == first.sids["/"]
            got = [await back.receive_event("n") for _ in range(3)]
            assert got == [[1], [2], [3]]
            assert await back.receive_event("marker") == []
            two.hub.to("room").emit("n", 4)  # its rooms are back
            assert await back.receive_event("n") == [4]


async def test_fetch_sockets_lists_the_other_nodes_sockets(redis_server: RedisServer) -> None:
    async with (
        bridged_node(redis_server.url) as one,
        bridged_node(redis_server.url) as two,
        raw_client(one.url, auth={"name": "ann"}) as a,
        raw_client(two.url, auth={"name": "bob"}) as b,
    ):
        await a.emit("join", "project:1", ack=True)
        await a.receive()
        await b.emit("join", "project:1", ack=True)
        await b.receive()
        found = await one.hub.to("project:1").fetch_sockets()
        assert sorted(s.data["name"] for s in found) == ["ann", "bob"]
        remote = [s for s in found if isinstance(s, RemoteSocket)]
        assert [s.id for s in remote] == [b.sids["/"]]
        assert remote[0].rooms == {b.sids["/"], "project:1"}
        assert remote[0].handshake.auth == {"name": "bob"}
        assert remote[0].handshake.address == "127.0.0.1"
        # local only
        assert [s.id for s in await one.hub.local.fetch_sockets()] == [a.sids["/"]]
        # a remote socket's emit reaches it through its own room
        remote[0].emit("direct", "hello bob")
        assert await b.receive_event("direct") == ["hello bob"]


async def test_join_leave_and_disconnect_across_nodes(redis_server: RedisServer) -> None:
    async with (
        bridged_node(redis_server.url) as one,
        bridged_node(redis_server.url) as two,
        raw_client(one.url) as a,
        raw_client(two.url) as b,
    ):
        await one.hub.sockets_join("team")
        b_sid = b.sids["/"]
        await wait_for(lambda: "team" in two.hub.main.adapter.socket_rooms(b_sid))
        assert "team" in one.hub.main.adapter.socket_rooms(a.sids["/"])
        await one.hub.to("team").sockets_leave("team")
        await wait_for(lambda: "team" not in two.hub.main.adapter.socket_rooms(b_sid))
        await one.hub.to(b_sid).disconnect_sockets()
        disconnect = await b.receive()
        assert disconnect.type.name == "DISCONNECT"
        await wait_for(lambda: not two.hub.main.sockets)
        assert a.sids["/"] in one.hub.main.sockets


async def test_server_side_emit_and_its_acks(redis_server: RedisServer) -> None:
    async with (
        bridged_node(redis_server.url) as one,
        bridged_node(redis_server.url) as two,
        bridged_node(redis_server.url) as three,
    ):
        got: list[tuple[str, object]] = []

        @two.bridge.on("ping")
        def on_two(value: object) -> str:
            got.append(("two", value))
            return "pong from two"

        @three.bridge.on("ping")
        async def on_three(value: object) -> str:
            await trio.sleep(0.01)
            got.append(("three", value))
            return "pong from three"

        @one.bridge.on("ping")
        def on_one(value: object) -> str:  # not called: a node does not hear itself
            got.append(("one", value))
            return "no"

        answers = await one.bridge.server_side_emit_with_ack("ping", 7, timeout=5)
        assert sorted(answers) == ["pong from three", "pong from two"]
        assert sorted(got) == [("three", 7), ("two", 7)]
        got.clear()
        one.bridge.server_side_emit("ping", 8)
        await wait_for(lambda: len(got) == 2)
        assert sorted(got) == [("three", 8), ("two", 8)]


async def test_requests_finish_with_what_arrived_when_a_node_is_silent(
    redis_server: RedisServer,
) -> None:
    async with (
        bridged_node(redis_server.url, request_timeout=0.5) as one,
        bridged_node(redis_server.url) as two,
        raw_client(two.url, auth={"name": "bob"}),
    ):
        # a third "node" that subscribes to the request channel and never answers
        from coredis import Redis

        async with (
            Redis.from_url(redis_server.url) as silent,
            silent.pubsub(channels=["socket.io-request#/#"]),
        ):
            await wait_for(lambda: True)
            found = await one.hub.fetch_sockets()
        assert [s.data["name"] for s in found] == ["bob"]
        assert one.bridge.stats["request_timeouts"] == 1


@pytest.mark.parametrize("close", [False, True])
async def test_remote_socket_actions(redis_server: RedisServer, close: bool) -> None:
    async with (
        bridged_node(redis_server.url) as one,
        bridged_node(redis_server.url) as two,
        raw_client(two.url, auth={"name": "bob"}) as b,
    ):
        (remote,) = await one.hub.fetch_sockets()
        assert isinstance(remote, RemoteSocket)
        await remote.join("extra")
        sid = b.sids["/"]
        await wait_for(lambda: "extra" in two.hub.main.adapter.socket_rooms(sid))
        await remote.leave("extra")
        await wait_for(lambda: "extra" not in two.hub.main.adapter.socket_rooms(sid))
        await remote.disconnect(close)
        if close:
            assert await b.closed()
        else:
            assert (await b.receive()).type.name == "DISCONNECT"
        await wait_for(lambda: not two.hub.main.sockets)


async def test_broadcast_with_acks_across_nodes(redis_server: RedisServer) -> None:
    async with (
        bridged_node(redis_server.url) as one,
        bridged_node(redis_server.url) as two,
        raw_client(one.url) as a,
        raw_client(two.url) as b,
        raw_client(two.url) as c,
    ):
        for client in (a, b, c):
            await client.emit("join", "quiz", ack=True)
            await client.receive()

        async def answer(client: object, value: object) -> None:
            assert isinstance(client, RawClient)
            packet = await client.receive()
            assert packet.data == ["question", 1] and packet.id is not None
            await client.ack(packet.id, value)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(answer, a, "a")
            nursery.start_soon(answer, b, "b")
            nursery.start_soon(answer, c, b"c")
            answers = await one.hub.to("quiz").emit_with_ack("question", 1, timeout=5)
        assert sorted(answers, key=repr) == sorted(["a", "b", b"c"], key=repr)

        # one client of the other node stays silent: the emit times out, naming how many
        async with trio.open_nursery() as nursery:
            nursery.start_soon(answer, a, "a")
            nursery.start_soon(answer, b, "b")
            with pytest.raises(AckTimeout, match="1 clients"):
                await one.hub.to("quiz").emit_with_ack("question", 1, timeout=1)
        assert (await c.receive()).data == ["question", 1]


async def test_publishes_are_batched_from_a_bounded_queue_on_the_rooms_channel(
    redis_server: RedisServer,
) -> None:
    from coredis import Redis

    async with (
        bridged_node(redis_server.url, max_queue=100) as one,
        Redis.from_url(redis_server.url) as watcher,
        watcher.pubsub(patterns=["socket.io#/#*"], ignore_subscribe_messages=True) as seen,
    ):
        # a burst with no checkpoint: the queue keeps the newest 100, the oldest past its
        # bound are dropped and counted (what an outage keeps is bounded the same way)
        for i in range(150):
            one.hub.to("r1").emit("m", i)
        one.hub.to("r1", "r2").emit("m", "two rooms")  # the namespace's channel
        channels: list[bytes] = []
        with trio.fail_after(5):
            while len(channels) < 100:
                message = await seen.get_message()
                if message is not None:
                    channels.append(message["channel"])
        assert channels == [b"socket.io#/#r1#"] * 99 + [b"socket.io#/#"]
        assert one.bridge.stats["publish_dropped"] == 51
        assert one.bridge.stats["published"] == 100
        assert one.bridge.stats["publish_batches"] <= 2  # one pipeline, or two
        one.hub.to("r1", "r2").emit("m", "two rooms")
        with trio.fail_after(5):
            message = None
            while message is None:
                message = await seen.get_message()
        assert message["channel"] == b"socket.io#/#"


@pytest.mark.parametrize("mode", ["pubsub", "streams"])
async def test_a_dropped_dynamic_child_leaves_redis(redis_server: RedisServer, mode: str) -> None:
    """With ``cleanup_empty_children``, a child whose last socket left is dropped with its
    cluster adapter: its channels are unsubscribed and the bridge forgets it, so clients
    asking for ever new names make nothing pile up in Redis; a later client of the same
    name gets a child that is subscribed again, and broadcasts still cross nodes."""
    import re

    def numsub(channel: str) -> bytes:
        return redis_server.command("PUBSUB", "NUMSUB", channel)

    async with (
        bridged_node(redis_server.url, mode=mode) as one,
        bridged_node(redis_server.url, mode=mode) as two,
    ):
        for node in (one, two):
            node.hub.of(re.compile(r"^/team-\d+$"), cleanup_empty_children=True)
        # a channel every node subscribes for the namespace
        request = "socket.io-request#/team-1#" if mode == "pubsub" else "socket.io#/team-1#"
        patterns = redis_server.command("PUBSUB", "NUMPAT")  # the main namespaces'
        async with raw_client(one.url, nsp="/team-1"):
            await wait_for(lambda: numsub(request).endswith(b":1\r\n"))
            assert "/team-1" in one.bridge.adapters
        await wait_for(lambda: numsub(request).endswith(b":0\r\n"))
        assert "/team-1" not in one.bridge.adapters
        assert redis_server.command("PUBSUB", "NUMPAT") == patterns

        async with raw_client(one.url, nsp="/team-1") as a, raw_client(two.url, nsp="/team-1"):
            await wait_for(lambda: numsub(request).endswith(b":2\r\n"))
            two.hub.of("/team-1").emit("news", "across")
            assert await a.receive_event("news") == ["across"]
