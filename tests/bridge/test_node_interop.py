"""One cluster of a stock Node Socket.IO server on ``@socket.io/redis-adapter`` 8 and two of
our hubs, on one real redis-server; and ``@socket.io/redis-emitter`` publishing into it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from server.hub.protocol import socketio as sio
from server.hub.remote import RemoteSocket
from tests.bridge.node_peer import NodePeer, emit_with_emitter, node_redis_ready
from tests.bridge.nodes import bridged_node, joined, wait_for
from tests.bridge.redis_server import RedisServer
from tests.hub.rawclient import RawClient, raw_client


@pytest.fixture
async def node_peer(redis_server: RedisServer) -> AsyncIterator[NodePeer]:
    node_redis_ready()
    peer = NodePeer(redis_server.url)
    try:
        await trio.to_thread.run_sync(peer.wait_ready)
        yield peer
    finally:
        peer.stop()


async def test_messages_cross_both_ways(redis_server: RedisServer, node_peer: NodePeer) -> None:
    async with (
        bridged_node(redis_server.url) as one,
        bridged_node(redis_server.url) as two,
        raw_client(node_peer.url, auth={"name": "nora"}) as n,
        raw_client(one.url, auth={"name": "ann"}) as a,
        raw_client(two.url, auth={"name": "bob"}) as b,
    ):
        assert await node_peer.call("serverCount") == 3
        for client in (n, a, b):
            await joined(client, "project:1")
        # ours -> Node (and the other of ours), binary included
        one.hub.to("project:1").emit("fromOurs", "x", b"\x00\xff", {"k": [1, 2.5]})
        for client in (n, a, b):
            assert await client.receive_event("fromOurs") == ["x", b"\x00\xff", {"k": [1, 2.5]}]
        # Node -> ours, with a Buffer, to one room and except a room
        await node_peer.call(
            "emit", rooms=["project:1"], event="fromNode", args=["y", {"$bin": "0102"}]
        )
        for client in (n, a, b):
            assert await client.receive_event("fromNode") == ["y", b"\x01\x02"]
        await joined(b, "muted")
        await node_peer.call("emit", event="all", args=[1])
        await node_peer.call("emit", rooms=["project:1"], event="some", **{"except": ["muted"]})
        await node_peer.call("emit", rooms=["project:1"], event="marker")
        for client in (n, a, b):
            assert await client.receive_event("all") == [1]
        assert await a.receive_event("some") == []
        assert (await b.receive()).data == ["marker"]  # "some" skipped b
        # a Node client's broadcast reaches ours; ours reaches the Node client
        await n.emit("say", "project:1", "from a node client")
        assert await a.receive_event("said") == ["from a node client"]
        await a.emit("say", "project:1", "from our client")
        assert await n.receive_event("said") == ["from our client"]


async def test_except_from_node(redis_server: RedisServer, node_peer: NodePeer) -> None:
    async with (
        bridged_node(redis_server.url) as one,
        raw_client(one.url) as a,
        raw_client(one.url) as b,
    ):
        await joined(a, "r")
        await joined(b, "r", "muted")
        await node_peer.call("emit", rooms=["r"], event="first")
        await node_peer.call("emit", rooms=["r"], event="x", **{"except": ["muted"]})
        await node_peer.call("emit", rooms=["r"], event="last")
        assert await a.receive_event("first") == []
        assert await a.receive_event("x") == []
        assert await b.receive_event("first") == []
        packet = await b.receive()
        assert packet.data[0] == "last"


async def test_fetch_sockets_both_ways(redis_server: RedisServer, node_peer: NodePeer) -> None:
    async with (
        bridged_node(redis_server.url) as one,
        bridged_node(redis_server.url) as two,
        raw_client(node_peer.url, auth={"name": "nora"}) as n,
        raw_client(one.url, auth={"name": "ann"}) as a,
        raw_client(two.url, auth={"name": "bob"}) as b,
    ):
        for client in (n, a, b):
            await joined(client, "project:1")
        found = await one.hub.to("project:1").fetch_sockets()
        assert sorted(s.data["name"] for s in found) == ["ann", "bob", "nora"]
        (nora,) = [s for s in found if s.data["name"] == "nora"]
        assert isinstance(nora, RemoteSocket)
        assert nora.id == n.sids["/"]
        assert nora.rooms == {n.sids["/"], "project:1"}
        assert nora.handshake.auth == {"name": "nora"}
        # and Node lists ours
        listed = await node_peer.call("fetch", rooms=["project:1"])
        assert sorted(s["data"]["name"] for s in listed) == ["ann", "bob", "nora"]
        (bob,) = [s for s in listed if s["data"]["name"] == "bob"]
        assert bob == {
            "id": b.sids["/"],
            "rooms": sorted([b.sids["/"], "project:1"]),
            "data": {"name": "bob"},
        }


async def test_join_and_disconnect_across(redis_server: RedisServer, node_peer: NodePeer) -> None:
    async with (
        bridged_node(redis_server.url) as one,
        raw_client(node_peer.url, auth={"name": "nora"}) as n,
        raw_client(one.url, auth={"name": "ann"}) as a,
    ):
        await one.hub.sockets_join("team")  # Node's socket joins too
        await wait_for(lambda: "team" in one.hub.main.adapter.socket_rooms(a.sids["/"]))
        with trio.fail_after(5):
            while True:
                listed = await node_peer.call("fetch", rooms=["team"])
                if n.sids["/"] in [s["id"] for s in listed]:
                    break
                await trio.sleep(0.05)
        await node_peer.call("join", rooms=["team"], room="team-2")  # ours join from Node
        await wait_for(lambda: "team-2" in one.hub.main.adapter.socket_rooms(a.sids["/"]))
        await node_peer.call("disconnect", rooms=[a.sids["/"]])
        assert (await a.receive()).type is sio.PacketType.DISCONNECT
        await one.hub.to(n.sids["/"]).disconnect_sockets()
        assert (await n.receive()).type is sio.PacketType.DISCONNECT


async def test_server_side_emit_both_ways(redis_server: RedisServer, node_peer: NodePeer) -> None:
    async with (
        bridged_node(redis_server.url) as one,
        bridged_node(redis_server.url) as two,
    ):
        heard: list[object] = []
        one.bridge.on("hello", lambda *args: heard.append(("one", *args)))
        two.bridge.on("hello", lambda *args: heard.append(("two", *args)))

        @one.bridge.on("ping")
        def ping_one(value: object) -> str:
            return f"pong from one ({value})"

        @two.bridge.on("ping")
        async def ping_two(value: object) -> str:
            return f"pong from two ({value})"

        await node_peer.call("serverSideEmit", event="hello", args=["from node", 1])
        await wait_for(lambda: len(heard) == 2)
        assert sorted(heard) == [("one", "from node", 1), ("two", "from node", 1)]
        answers = await node_peer.call("serverSideEmitWithAck", event="ping", args=[5])
        assert sorted(answers) == ["pong from one (5)", "pong from two (5)"]
        # ours -> Node and the other of ours
        one.bridge.server_side_emit("hello", "from one")
        event = await node_peer.next_event()
        assert event == {"event": "serverSide", "name": "hello", "args": ["from one"]}
        await wait_for(lambda: ("two", "from one") in heard)
        answers = await one.bridge.server_side_emit_with_ack("ping", 6)
        assert sorted(answers) == ["pong from node", "pong from two (6)"]


async def test_broadcast_with_acks_from_node_reaches_our_clients(
    redis_server: RedisServer, node_peer: NodePeer
) -> None:
    async with (
        bridged_node(redis_server.url) as one,
        raw_client(one.url, auth={"name": "ann"}) as a,
        raw_client(one.url, auth={"name": "amy"}) as b,
    ):
        await joined(a, "quiz")
        await joined(b, "quiz")

        async def answer(client: RawClient, value: object) -> None:
            packet = await client.receive()
            assert packet.data == ["question", "2+2?"] and packet.id is not None
            await client.ack(packet.id, value, nsp="/")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(answer, a, 4)
            nursery.start_soon(answer, b, b"\x04")
            answers = await node_peer.call(
                "emitWithAck", rooms=["quiz"], event="question", args=["2+2?"]
            )
        assert sorted(answers, key=str) == [4, {"$bin": "04"}]


async def test_redis_emitter_reaches_our_clients(redis_server: RedisServer) -> None:
    node_redis_ready()
    async with (
        bridged_node(redis_server.url) as one,
        bridged_node(redis_server.url) as two,
        raw_client(one.url) as a,
        raw_client(two.url) as b,
        raw_client(two.url) as c,
    ):
        await joined(a, "project:9")
        await joined(b, "project:9")
        spec = {"rooms": ["project:9"], "event": "fromEmitter", "args": ["hi", {"n": 1}]}
        await trio.to_thread.run_sync(emit_with_emitter, redis_server.url, spec)
        assert await a.receive_event("fromEmitter") == ["hi", {"n": 1}]
        assert await b.receive_event("fromEmitter") == ["hi", {"n": 1}]
        everyone = {"event": "all", "args": [2]}
        await trio.to_thread.run_sync(emit_with_emitter, redis_server.url, everyone)
        for client in (a, b, c):
            assert await client.receive_event("all") == [2]


async def test_our_broadcast_with_acks_reaches_node_clients(
    redis_server: RedisServer, node_peer: NodePeer
) -> None:
    async with (
        bridged_node(redis_server.url) as one,
        raw_client(node_peer.url, auth={"name": "nora"}) as n,
        raw_client(one.url, auth={"name": "ann"}) as a,
    ):
        await joined(n, "quiz")
        await joined(a, "quiz")

        async def answer(client: RawClient, value: object) -> None:
            packet = await client.receive()
            assert packet.data == ["question", "3+3?"] and packet.id is not None
            await client.ack(packet.id, value)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(answer, n, {"from": "node", "bytes": b"\x06"})
            nursery.start_soon(answer, a, 6)
            answers = await one.hub.to("quiz").emit_with_ack("question", "3+3?", timeout=5)
        assert sorted(answers, key=repr) == [6, {"from": "node", "bytes": b"\x06"}]


async def test_dates_and_other_node_values_reach_our_clients(
    redis_server: RedisServer, node_peer: NodePeer
) -> None:
    """The seed's Node code emits ``{timestamp: new Date()}``: our clients get the string a
    client of another Node node gets (its ISO 8601 form), with buffers and big numbers."""
    async with (
        bridged_node(redis_server.url) as one,
        raw_client(one.url, auth={"name": "ann"}) as a,
    ):
        await joined(a, "project:1")
        assert await node_peer.call("serverCount") == 2
        value = {
            "timestamp": {"$date": "2026-11-25T21:46:00.207Z"},
            "gone": {"$undefined": True},
            "items": [{"$undefined": True}, {"$bin": "00ff"}],
            "big": 2**53,
        }
        await node_peer.call("emit", rooms=["project:1"], event="newMessage", args=[value])
        (got,) = await a.receive_event("newMessage")
        assert got == {
            "timestamp": "2026-11-25T21:46:00.207Z",
            "items": [None, b"\x00\xff"],
            "big": 2**53,
        }
        assert one.bridge.stats["bad_messages"] == 0
