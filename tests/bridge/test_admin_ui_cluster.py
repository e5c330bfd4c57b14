"""The admin UI on a cluster: two of our hubs on one real redis-server, each instrumented.

An admin client on one node sees both nodes' stats, the sockets of both (``all_sockets``
through ``fetch_sockets``), what happens on the other node (its feed is broadcast in
``/admin`` across the cluster), and its commands reach sockets of the other node.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

import pytest
import trio

from server.hub import Hub, Socket
from server.hub.admin import instrument
from server.hub.protocol import socketio as sio
from tests.bridge.nodes import Node, bridged_node
from tests.bridge.redis_server import RedisServer
from tests.hub.rawclient import raw_client
from tests.hub.test_admin_ui import HASH, USER, admin_client, call, events, next_event


def admin_node(redis_url: str, server_id: str, mode: str) -> AbstractAsyncContextManager[Node]:
    """A bridged node, instrumented, whose clients may ask for their rooms."""

    def setup(hub: Hub) -> None:
        @hub.on("rooms")
        def rooms(socket: Socket) -> list[str]:
            return sorted(socket.rooms)

        instrument(hub, auth=(USER, HASH), server_id=server_id)

    return bridged_node(redis_url, setup=setup, mode=mode)


@pytest.mark.parametrize("mode", ["pubsub", "streams"])
async def test_one_admin_sees_and_acts_on_both_nodes(redis_server: RedisServer, mode: str) -> None:
    async with (
        admin_node(redis_server.url, "node-1", mode) as one,
        admin_node(redis_server.url, "node-2", mode) as two,
        raw_client(one.url, auth={"name": "ann"}) as ann,
        raw_client(two.url, auth={"name": "bob"}) as bob,
        admin_client(one.url) as admin,
    ):
        got = await events(admin, "all_sockets")
        listed = {(s["nsp"], s["id"]): s for s in got["all_sockets"][0]}
        assert ("/", ann.sids["/"]) in listed and ("/", bob.sids["/"]) in listed
        # the other node's socket, as its node described it (clientId, transport included)
        remote = listed[("/", bob.sids["/"])]
        assert remote["data"] == {"name": "bob"}
        assert remote["clientId"] == bob.handshake["sid"][:12]
        assert remote["transport"] == "websocket"
        assert remote["rooms"] == [bob.sids["/"]]

        # both nodes' stats reach the admin connected to one of them
        servers: set[str] = set()
        with trio.fail_after(10):
            while servers != {"node-1", "node-2"}:
                (stats,) = await next_event(admin, "server_stats")
                servers.add(stats["serverId"])

        # the other node's feed, and commands carried out there
        bob_sid = bob.sids["/"]
        await admin.emit("emit", "/", bob_sid, "fromAdmin", "hi", nsp="/admin")
        assert await bob.receive_event("fromAdmin") == ["hi"]
        await admin.emit("join", "/", "team", bob_sid, nsp="/admin")
        joined = await next_event(admin, "room_joined", lambda a: a[1] == "team")
        assert joined[:3] == ["/", "team", bob_sid]
        assert await call(bob, "rooms") == [sorted([bob_sid, "team"])]
        async with raw_client(two.url, auth={"name": "cy"}) as cy:
            (socket, _) = await next_event(
                admin, "socket_connected", lambda a: a[0]["id"] == cy.sids["/"]
            )
            assert socket["data"] == {"name": "cy"}
        await admin.emit("_disconnect", "/", False, "team", nsp="/admin")
        with trio.fail_after(10):
            while (await bob.receive()).type is not sio.PacketType.DISCONNECT:
                pass
        gone = await next_event(admin, "socket_disconnected", lambda a: a[1] == bob_sid)
        assert gone[:3] == ["/", bob_sid, "server namespace disconnect"]
        assert await call(ann, "rooms") == [[ann.sids["/"]]]  # not in "team": still here
