"""One cluster of a stock Node Socket.IO server on ``@socket.io/redis-streams-adapter`` 0.3
and one of our hubs in streams mode, on one real redis-server: messages, requests, and
clients moved from either kind of node to the other, recovered."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from server.hub.bridge.streams import MessageType, decode_entry
from server.hub.config import HubConfig
from server.hub.protocol import socketio as sio
from server.hub.remote import RemoteSocket
from tests.bridge.node_peer import NodePeer, node_redis_ready
from tests.bridge.nodes import bridged_node, joined, wait_for
from tests.bridge.redis_server import RedisServer
from tests.hub.rawclient import RawClient, raw_client

RECOVERY = HubConfig.of(connection_state_recovery=True)


@pytest.fixture
async def node_peer(redis_server: RedisServer) -> AsyncIterator[NodePeer]:
    node_redis_ready()
    peer = NodePeer(redis_server.url, adapter="streams")
    try:
        await trio.to_thread.run_sync(peer.wait_ready)
        yield peer
    finally:
        peer.stop()


async def test_one_cluster_with_a_node_streams_server(
    redis_server: RedisServer, node_peer: NodePeer
) -> None:
    async with (
        bridged_node(redis_server.url, mode="streams", config=RECOVERY) as ours,
        raw_client(node_peer.url, auth={"name": "nora"}) as n,
        raw_client(ours.url, auth={"name": "ann"}) as a,
    ):
        await wait_for(lambda: ours.bridge.nodes == 2)
        assert await node_peer.call("serverCount") == 2
        await trio.sleep(0.3)  # the Node node's stream reader starts after its subscription
        for client in (n, a):
            await joined(client, "project:1")
        # ours -> Node, binary included (base64 MessagePack in the stream)
        ours.hub.to("project:1").emit("fromOurs", "x", b"\x00\xff", {"k": [1, 2.5]})
        for client in (n, a):
            assert await client.receive_event("fromOurs") == ["x", b"\x00\xff", {"k": [1, 2.5]}]
        assert n.offsets["/"] == a.offsets["/"], "one entry, one offset, on both kinds of node"
        # Node -> ours: a Buffer, a Date, to a room, except a room
        await node_peer.call(
            "emit",
            rooms=["project:1"],
            event="fromNode",
            args=["y", {"$bin": "0102"}, {"at": {"$date": "2026-12-02T10:00:00.000Z"}}],
        )
        expected = ["y", b"\x01\x02", {"at": "2026-12-02T10:00:00.000Z"}]
        for client in (n, a):
            assert await client.receive_event("fromNode") == expected
        await joined(a, "muted")
        await node_peer.call("emit", rooms=["project:1"], event="some", **{"except": ["muted"]})
        await node_peer.call("emit", event="marker")
        assert await a.receive_event("marker") == []
        assert await n.receive_event("some") == []
        assert await n.receive_event("marker") == []

        # fetch both ways, with each node's socket data
        found = await ours.hub.fetch_sockets()
        remote = [s for s in found if isinstance(s, RemoteSocket)]
        assert [s.data for s in remote] == [{"name": "nora"}]
        listed = await node_peer.call("fetch", rooms=["muted"])
        assert [s["data"] for s in listed] == [{"name": "ann"}]

        # rooms changed from Node reach our socket
        await node_peer.call("join", rooms=["muted"], room="from-node")
        await wait_for(lambda: "from-node" in ours.hub.of("/").sockets[a.sids["/"]].rooms)

        # server-side events with acks, both ways
        @ours.bridge.on("ping")
        def pong(value: int) -> str:
            return f"pong {value} from ours"

        assert await node_peer.call("serverSideEmitWithAck", event="ping", args=[1]) == [
            "pong 1 from ours"
        ]
        assert await ours.bridge.server_side_emit_with_ack("ping", 2) == ["pong from node"]

        # a broadcast with acks from ours, answered by the Node node's client
        async def answer(client: RawClient, value: str) -> None:
            packet = await client.receive()
            assert packet.data[0] == "question" and packet.id is not None
            await client.ack(packet.id, value)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(answer, n, "from nora")
            nursery.start_soon(answer, a, "from ann")
            answers = await ours.hub.timeout(3).emit_with_ack("question")
        assert sorted(answers) == ["from ann", "from nora"]


async def test_a_client_moves_from_node_to_ours_and_back_recovered(
    redis_server: RedisServer, node_peer: NodePeer
) -> None:
    async with bridged_node(redis_server.url, mode="streams", config=RECOVERY) as ours:
        await wait_for(lambda: ours.bridge.nodes == 2)
        await trio.sleep(0.3)
        # on the Node node first
        async with raw_client(node_peer.url, auth={"name": "nora"}) as first:
            await joined(first, "project:1")
            ours.hub.to("project:1").emit("n", 1)
            assert await first.receive_event("n") == [1]
            sid, pid, offset = first.sids["/"], first.pids["/"], first.offsets["/"]
        await trio.sleep(0.3)  # Node writes the session when it sees the socket go
        ours.hub.to("project:1").emit("n", 2)
        # 2 is in the stream before 3 (a moved entry has a test of its own, below)
        assert await ours.bridge.flush(5)
        await node_peer.call("emit", rooms=["project:1"], event="n", args=[3])
        await trio.sleep(0.3)
        # ... recovered on ours
        async with raw_client(ours.url, nsp=None) as second:
            answer = await second.connect_namespace("/", {"pid": pid, "offset": offset})
            assert answer.data == {"sid": sid, "pid": pid}
            assert await second.receive_event("n") == [2]
            assert await second.receive_event("n") == [3]
            assert "project:1" in ours.hub.of("/").sockets[sid].rooms
            assert ours.hub.of("/").sockets[sid].data == {"name": "nora"}
            offset = second.offsets["/"]
        await wait_for(lambda: sid not in ours.hub.of("/").sockets)
        await node_peer.call("emit", rooms=["project:1"], event="n", args=[4])
        ours.hub.to("project:1").emit("n", 5)
        await trio.sleep(0.3)
        # ... and back on the Node node, with what it missed meanwhile (which Node sends
        # before its CONNECT answer: the stock client holds such events until connected)
        async with raw_client(node_peer.url, nsp=None) as third:
            await third.send_packet(
                sio.Packet(sio.PacketType.CONNECT, "/", {"pid": pid, "offset": offset})
            )
            got = []
            while True:
                packet = await third.receive()
                if packet.type is sio.PacketType.CONNECT:
                    assert packet.data["sid"] == sid
                    break
                got.append(packet.data[1])
            assert sorted(got) == [4, 5]
            listed = await node_peer.call("rooms")
            assert {"id": sid, "rooms": sorted([sid, "project:1"]), "recovered": True} in listed


async def test_a_replay_goes_in_the_streams_order_so_node_gives_nothing_twice(
    redis_server: RedisServer, node_peer: NodePeer
) -> None:
    """An entry of ours that Redis moved (the Node node wrote past the id ours chose, as
    when ours's XADD waits behind it) is replayed in the stream's order, with the id it has
    there: the client's last offset is the latest of what it got, and a Node node restoring
    from it gives none of it again."""
    async with bridged_node(redis_server.url, mode="streams", config=RECOVERY) as ours:
        await wait_for(lambda: ours.bridge.nodes == 2)
        await trio.sleep(0.3)
        async with raw_client(ours.url, auth={"name": "nora"}) as first:
            await joined(first, "project:1")
            ours.hub.to("project:1").emit("n", "first")
            assert await first.receive_event("n") == ["first"]
            sid, pid, offset = first.sids["/"], first.pids["/"], first.offsets["/"]
        await wait_for(lambda: sid not in ours.hub.of("/").sockets)
        log = ours.bridge.log
        assert log is not None
        held: list[object] = []
        log.entries = held.append  # type: ignore[method-assign]  # ours stops reading
        await node_peer.call("emit", rooms=["project:1"], event="n", args=["node"])

        def node_broadcast_in_stream() -> bool:  # not one of Node's heartbeats, nor ours
            return any(
                message.type is MessageType.BROADCAST and message.uid != ours.bridge.uid
                for entries in held
                for entry in entries  # type: ignore[attr-defined]
                for message in [decode_entry(entry.identifier, entry.field_values)]
            )

        await wait_for(node_broadcast_in_stream)
        ours.bridge.driver.clock_skew_ms -= 5_000  # ours's clock lags Redis's: its id is
        ours.hub.to("project:1").emit("n", "ours")  # before Node's entry, and Redis moves it
        await wait_for(lambda: ours.bridge.stats["stream_ids_moved"] == 1)
        ours.bridge.driver.clock_skew_ms += 5_000
        del log.entries  # ours reads again
        for entries in held:
            log.entries(entries)  # type: ignore[arg-type]
        async with raw_client(ours.url, nsp=None) as second:
            answer = await second.connect_namespace("/", {"pid": pid, "offset": offset})
            assert answer.data == {"sid": sid, "pid": pid}
            assert await second.receive_event("n") == ["node"]
            assert await second.receive_event("n") == ["ours"]
            offset = second.offsets["/"]
        await wait_for(lambda: sid not in ours.hub.of("/").sockets)
        await trio.sleep(0.3)
        async with raw_client(node_peer.url, nsp=None) as third:
            await third.send_packet(
                sio.Packet(sio.PacketType.CONNECT, "/", {"pid": pid, "offset": offset})
            )
            packet = await third.receive()
            assert packet.type is sio.PacketType.CONNECT, packet  # nothing again before it
            assert packet.data["sid"] == sid
