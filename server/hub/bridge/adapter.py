"""The adapter of one namespace when a bridge links processes.

It is the in-memory :class:`~server.hub.adapter.Adapter` (this process's rooms and sockets)
plus the cluster: what it does locally it also tells the other nodes, and it answers what
they ask. The Redis connection, the publish queue and pending requests belong to the
:class:`~server.hub.bridge.bridge.Bridge`; this class knows only the namespace's side.
"""

from __future__ import annotations

import email.utils
import json
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import trio

from server.hub.adapter import Adapter, BroadcastOptions, RemoteAcks
from server.hub.bridge import wire
from server.hub.bridge.wire import BroadcastMessage, Channels, Request, RequestType, Selection
from server.hub.protocol import socketio as sio
from server.hub.remote import RemoteSocket
from server.hub.socket import Handshake, Socket

if TYPE_CHECKING:
    from server.hub.bridge.bridge import Bridge
    from server.hub.namespace import Namespace

log = logging.getLogger("hub.bridge")


def selection_of(opts: BroadcastOptions) -> Selection:
    flags: dict[str, Any] = {}
    if opts.volatile:
        flags["volatile"] = True
    return Selection(opts.rooms, opts.except_rooms, flags)


def options_of(selection: Selection) -> BroadcastOptions:
    """Options for local delivery of what another node asked for: never relayed again."""
    return BroadcastOptions(
        rooms=selection.rooms,
        except_rooms=selection.except_rooms,
        volatile=selection.volatile,
        local=True,
    )


class RedisAdapter(Adapter):
    """One namespace's rooms here, and its channels in Redis."""

    def __init__(self, nsp: Namespace, recovery: Any = None, *, bridge: Bridge) -> None:
        super().__init__(nsp)
        if recovery is not None:
            self.recovery = recovery
        self.bridge = bridge
        self.channels = Channels(nsp.name, bridge.key)
        bridge.register(self)

    # ---- what this node does, told to the others ---------------------------------------
    def broadcast(self, packet: sio.Packet, opts: BroadcastOptions) -> int:
        if not opts.local:
            body = BroadcastMessage(self.bridge.uid, packet, selection_of(opts)).encode()
            self.bridge.publish(self.channels.broadcast_channel(opts.rooms), body)
        return super().broadcast(packet, opts)

    def acks_from_others(
        self, packet: sio.Packet, opts: BroadcastOptions, timeout: float
    ) -> RemoteAcks | None:
        """A BROADCAST request: each node answers with its client count, then each of its
        clients' acks. None when degraded (this process's clients only)."""
        if not self.bridge.healthy:
            return None
        flags = selection_of(opts).flags | {"timeout": round(timeout * 1000)}
        request = Request(
            RequestType.BROADCAST,
            self.bridge.uid,
            self.bridge.new_request_id(),
            Selection(opts.rooms, opts.except_rooms, flags),
            packet=packet,
        )
        return self.bridge.broadcast_with_ack(self, request, timeout)

    async def fetch_sockets(self, opts: BroadcastOptions) -> list[Socket | RemoteSocket]:
        found: list[Socket | RemoteSocket] = list(self.matching(opts))
        if opts.local:
            return found
        request = Request(
            RequestType.REMOTE_FETCH,
            self.bridge.uid,
            self.bridge.new_request_id(),
            Selection(opts.rooms, opts.except_rooms),
        )
        for answer in await self.bridge.ask(self, request):
            for item in answer.get("sockets") or ():
                remote = self._remote_socket(item)
                if remote is not None:
                    found.append(remote)
        return found

    async def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        await super().add_sockets(opts, rooms)
        if not opts.local:
            self._tell(RequestType.REMOTE_JOIN, opts, rooms=rooms)

    async def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        await super().del_sockets(opts, rooms)
        if not opts.local:
            self._tell(RequestType.REMOTE_LEAVE, opts, rooms=rooms)

    async def disconnect_sockets(self, opts: BroadcastOptions, close: bool = False) -> None:
        if not opts.local:
            self._tell(RequestType.REMOTE_DISCONNECT, opts, close=close)
        await super().disconnect_sockets(opts, close)

    def _tell(self, kind: RequestType, opts: BroadcastOptions, **fields: Any) -> None:
        """A request no one answers (as Node's adapter does for join, leave, disconnect)."""
        selection = Selection(opts.rooms, opts.except_rooms)
        request = Request(kind, self.bridge.uid, selection=selection, **fields)
        self.bridge.publish(self.channels.request, request.encode())

    def _remote_socket(self, item: Any) -> RemoteSocket | None:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            return None
        shake = item.get("handshake")
        shake = shake if isinstance(shake, dict) else {}
        issued = shake.get("issued")
        rooms = item.get("rooms")
        data = item.get("data")
        return RemoteSocket(
            id=item["id"],
            nsp=self.nsp,
            handshake=Handshake(
                auth=_dict(shake.get("auth")),
                query=_dict(shake.get("query")),
                headers=_dict(shake.get("headers")),
                address=shake.get("address") if isinstance(shake.get("address"), str) else None,
                time=issued / 1000 if isinstance(issued, int | float) else 0.0,
                url=str(shake.get("url") or ""),
                secure=bool(shake.get("secure")),
            ),
            rooms={str(r) for r in rooms} if isinstance(rooms, list) else set(),
            data=data if isinstance(data, dict) else {},
        )

    # ---- what other nodes send ---------------------------------------------------------
    def on_broadcast(self, channel: str, body: bytes) -> None:
        """A broadcast published by another node (or an emitter), delivered here.

        What cannot concern this node is dropped before decoding: a room channel of a room
        with no socket here, anything when the namespace has no socket, our own messages.
        """
        stats = self.bridge.stats
        room = self.channels.room_of(channel)
        if room is None:
            return
        if not self.nsp.sockets or (room and room not in self.rooms):
            stats["broadcasts_skipped"] += 1
            return
        if wire.peek_uid(body) == self.bridge.uid:
            return
        message = BroadcastMessage.decode(body, self.nsp.name)
        if message.uid == self.bridge.uid:
            return
        stats["broadcasts_in"] += 1
        Adapter.broadcast(self, message.packet, options_of(message.selection))

    def on_request(self, body: bytes) -> None:
        request = Request.decode(body, self.nsp.name)
        if request.uid == self.bridge.uid:
            return  # our own request: done locally already
        self.bridge.stats["requests_in"] += 1
        handler = _HANDLERS.get(request.type)
        if handler is not None:
            handler(self, request)

    def _respond(self, request: Request, body: dict[str, Any]) -> None:
        channel = self.channels.response_for(request.uid) if request.uid else None
        self.bridge.publish(channel or self.channels.response, wire.encode_response(body))

    def _local(self, request: Request) -> BroadcastOptions:
        return options_of(request.selection or Selection())

    def _sockets(self, request: Request) -> None:
        opts = BroadcastOptions(rooms=frozenset(request.rooms or ()), local=True)
        sids = [s.id for s in self.matching(opts)]
        self._respond(request, {"requestId": request.request_id, "sockets": sids})

    def _all_rooms(self, request: Request) -> None:
        self._respond(request, {"requestId": request.request_id, "rooms": list(self.rooms)})

    def _join(self, request: Request) -> None:
        if request.selection is not None:
            rooms = request.rooms or []
            for socket in list(self.matching(self._local(request))):
                socket.join(*rooms)
            return
        one = self.nsp.sockets.get(request.sid or "")
        if one is not None and request.room is not None:
            one.join(request.room)
            self._respond(request, {"requestId": request.request_id})

    def _leave(self, request: Request) -> None:
        if request.selection is not None:
            rooms = request.rooms or []
            for socket in list(self.matching(self._local(request))):
                socket.leave(*rooms)
            return
        one = self.nsp.sockets.get(request.sid or "")
        if one is not None and request.room is not None:
            one.leave(request.room)
            self._respond(request, {"requestId": request.request_id})

    def _disconnect(self, request: Request) -> None:
        if request.selection is not None:
            sockets = list(self.matching(self._local(request)))
        else:
            found = self.nsp.sockets.get(request.sid or "")
            sockets = [found] if found is not None else []
            if found is not None:
                self._respond(request, {"requestId": request.request_id})
        for socket in sockets:
            self.bridge.spawn(socket.disconnect, request.close)

    def _fetch(self, request: Request) -> None:
        sockets = [describe(s) for s in self.matching(self._local(request))]
        self._respond(request, {"requestId": request.request_id, "sockets": sockets})

    def _server_side_emit(self, request: Request) -> None:
        data = request.data
        if not data or not isinstance(data[0], str):
            return
        event, args = data[0], data[1:]
        request_id = request.request_id

        reply: Callable[[Any], None] | None = None
        if request_id is not None:

            def reply(value: Any) -> None:
                body = {"type": RequestType.SERVER_SIDE_EMIT, "requestId": request_id}
                body["data"] = value
                # Node publishes these on the shared response channel
                self.bridge.publish(self.channels.response, wire.encode_response(body))

        self.bridge.on_server_side_emit(self.nsp.name, event, args, reply)

    def _broadcast_with_ack(self, request: Request) -> None:
        packet = request.packet
        if packet is None or packet.type is not sio.PacketType.EVENT:
            return
        request_id = request.request_id
        ack_id = self.nsp.next_ack_id()
        packet = sio.Packet(packet.type, packet.nsp, packet.data, ack_id)
        sockets = Adapter.broadcast_with_ack(self, packet, self._local(request))
        self._respond(
            request,
            {
                "type": RequestType.BROADCAST_CLIENT_COUNT,
                "requestId": request_id,
                "clientCount": len(sockets),
            },
        )

        def answered(value: Any) -> None:
            body = {"type": RequestType.BROADCAST_ACK, "requestId": request_id, "packet": value}
            self._respond(request, body)

        for socket in sockets:
            socket._expect_ack(ack_id, answered, _nothing)
        timeout = (request.selection.flags if request.selection else {}).get("timeout")
        limit = timeout / 1000 if isinstance(timeout, int | float) else self.bridge.request_timeout

        async def forget() -> None:
            await trio.sleep(limit)
            for socket in sockets:
                socket._forget_ack(ack_id)

        self.bridge.spawn(forget)


def _nothing() -> None:
    return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def describe(socket: Socket) -> dict[str, Any]:
    """A socket as Node's adapter describes one in a REMOTE_FETCH response."""
    shake = socket.handshake
    data: Any = socket.data
    try:
        json.dumps(data)
    except (TypeError, ValueError):
        data = json.loads(json.dumps(data, default=repr))
    return {
        "id": socket.id,
        "handshake": {
            "headers": shake.headers,
            "time": email.utils.formatdate(shake.time, usegmt=True),
            "address": shake.address,
            "xdomain": "origin" in shake.headers,
            "secure": shake.secure,
            "issued": int(shake.time * 1000),
            "url": shake.url,
            "query": shake.query,
            "auth": shake.auth,
        },
        "rooms": sorted(socket.rooms),
        "data": data,
    }


_HANDLERS: dict[RequestType, Callable[[RedisAdapter, Request], None]] = {
    RequestType.SOCKETS: RedisAdapter._sockets,
    RequestType.ALL_ROOMS: RedisAdapter._all_rooms,
    RequestType.REMOTE_JOIN: RedisAdapter._join,
    RequestType.REMOTE_LEAVE: RedisAdapter._leave,
    RequestType.REMOTE_DISCONNECT: RedisAdapter._disconnect,
    RequestType.REMOTE_FETCH: RedisAdapter._fetch,
    RequestType.SERVER_SIDE_EMIT: RedisAdapter._server_side_emit,
    RequestType.BROADCAST: RedisAdapter._broadcast_with_ack,
}
