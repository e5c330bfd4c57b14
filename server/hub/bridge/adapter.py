"""The adapter of one namespace when Redis links processes: the cluster around a local one.

It wraps a :class:`~server.hub.adapter.LocalAdapter` (this process's rooms and sockets) and
adds the other nodes, as socket.io's ``cluster-adapter.ts`` does: what it does locally it
also tells the others, it answers what they ask, and requests wait for the nodes that must
answer. The Redis connection is a :class:`~server.hub.bridge.driver.RedisDriver`; the wire
format is :mod:`server.hub.bridge.wire`.
"""

from __future__ import annotations

import email.utils
import json
import logging
import secrets
import string
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import trio

from server.hub.adapter import AckCollector, LocalAcks, LocalAdapter, SocketEmitter, SocketLike
from server.hub.bridge import wire
from server.hub.bridge.driver import CONNECTION_ERRORS, RedisDriver
from server.hub.bridge.wire import BroadcastMessage, Channels, Request, RequestType, Selection
from server.hub.broadcast import BroadcastOperator, Target
from server.hub.engine import Wire
from server.hub.handshake import Handshake
from server.hub.protocol import socketio as sio
from server.hub.recovery import RecoveryStore
from server.hub.remote import RemoteSocket
from server.hub.selection import BroadcastOptions

log = logging.getLogger("hub.bridge")

_ALPHABET = string.ascii_letters + string.digits


def new_uid(length: int = 6) -> str:
    """A node or request id, as Node's adapter makes them."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


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


@dataclass(slots=True)
class PendingRequest:
    """A request waiting for the answers of ``expected`` other nodes."""

    expected: int
    answers: list[dict[str, Any]] = field(default_factory=list)
    done: trio.Event = field(default_factory=trio.Event)

    def add(self, answer: dict[str, Any]) -> None:
        self.answers.append(answer)
        if len(self.answers) >= self.expected:
            self.done.set()


class RemoteAcks:
    """The other nodes' part of a broadcast with acks: complete once every node told how
    many of its clients got the packet, and that many acks arrived."""

    def __init__(self) -> None:
        self.nodes: int | None = None
        self.reports = 0
        self.clients = 0
        self.answers: list[Any] = []
        self.done = trio.Event()

    def expect(self, nodes: int) -> None:
        self.nodes = nodes
        self._check()

    def add(self, answer: dict[str, Any]) -> None:
        kind = answer.get("type")
        if kind == RequestType.BROADCAST_CLIENT_COUNT:
            self.reports += 1
            count = answer.get("clientCount")
            self.clients += count if isinstance(count, int) else 0
        elif kind == RequestType.BROADCAST_ACK:
            self.answers.append(answer.get("packet"))
        self._check()

    def _check(self) -> None:
        reported = self.nodes is not None and self.reports >= self.nodes
        if reported and len(self.answers) >= self.clients:
            self.done.set()

    @property
    def missing(self) -> int:
        nodes = self.nodes or 0
        return max(0, self.clients - len(self.answers)) + max(0, nodes - self.reports)


class ClusterAcks:
    """This node's acks and the other nodes', as one collector."""

    def __init__(self, local: LocalAcks, remote: RemoteAcks | None) -> None:
        self._local = local
        self._remote = remote

    @property
    def responses(self) -> list[Any]:
        remote = self._remote.answers if self._remote is not None else []
        return [*self._local.responses, *remote]

    @property
    def missing(self) -> int:
        return self._local.missing + (self._remote.missing if self._remote is not None else 0)

    async def wait(self) -> None:
        await self._local.wait()
        if self._remote is not None:
            await self._remote.done.wait()

    def forget(self) -> None:
        self._local.forget()


class RedisAdapter:
    """One namespace's rooms here, and its channels in Redis."""

    def __init__(
        self,
        emitter: SocketEmitter,
        recovery: RecoveryStore | None,
        *,
        driver: RedisDriver,
        uid: str,
        key: str = wire.DEFAULT_KEY,
        request_timeout: float = 5.0,
        stats: Counter[str] | None = None,
        on_close: Callable[[RedisAdapter], None] | None = None,
    ) -> None:
        self.local = LocalAdapter(emitter, recovery)
        self.emitter = emitter
        #: Told when :meth:`close` is called (the bridge forgets the adapter then).
        self.on_close = on_close
        self.driver = driver
        self.uid = uid
        self.request_timeout = request_timeout
        #: broadcasts_in, broadcasts_skipped, requests_in, requests_out, request_timeouts,
        #: bad_messages (shared with the driver's and the other namespaces').
        self.stats: Counter[str] = stats if stats is not None else Counter()
        self.channels = Channels(emitter.name, key)
        self._pending: dict[str, PendingRequest | RemoteAcks] = {}
        channels = self.channels
        driver.psubscribe(channels.pattern, self._on_broadcast)
        driver.subscribe(channels.request, self._on_request)
        driver.subscribe(channels.response, self._on_response)
        driver.subscribe(channels.response_for(uid), self._on_response)
        driver.on_down(self._went_down)
        #: Every socket of the namespace, on every node: what a RemoteSocket acts through.
        self._everyone = BroadcastOperator(
            Target(emitter.name, self, request_timeout, emitter.next_ack_id)
        )

    # ---- this node's rooms ---------------------------------------------------------------
    @property
    def recovery(self) -> RecoveryStore | None:
        return self.local.recovery

    def add_all(self, sid: str, rooms: Iterable[str]) -> None:
        self.local.add_all(sid, rooms)

    def delete(self, sid: str, room: str) -> None:
        self.local.delete(sid, room)

    def delete_all(self, sid: str) -> None:
        self.local.delete_all(sid)

    def socket_rooms(self, sid: str) -> set[str]:
        return self.local.socket_rooms(sid)

    # ---- what this node does, told to the others ---------------------------------------
    def broadcast(self, packet: sio.Packet, opts: BroadcastOptions) -> int:
        if not opts.local:
            body = BroadcastMessage(self.uid, packet, selection_of(opts)).encode()
            self.driver.publish(self.channels.broadcast_channel(opts.rooms), body)
        return self.local.broadcast(packet, opts)

    def broadcast_with_ack(
        self, packet: sio.Packet, opts: BroadcastOptions, timeout: float
    ) -> AckCollector:
        """This node's sockets, and (unless ``local``, or degraded) a BROADCAST request:
        each node answers with its client count, then each of its clients' acks."""
        local = self.local.broadcast_with_ack(packet, opts, timeout)
        if opts.local or not self.driver.healthy:
            return ClusterAcks(local, None)
        flags = selection_of(opts).flags | {"timeout": round(timeout * 1000)}
        request = Request(
            RequestType.BROADCAST,
            self.uid,
            new_uid(),
            Selection(opts.rooms, opts.except_rooms, flags),
            packet=packet,
        )
        return ClusterAcks(local, self._ask_for_acks(request, timeout))

    async def fetch_sockets(self, opts: BroadcastOptions) -> list[SocketLike]:
        found = await self.local.fetch_sockets(opts)
        if opts.local:
            return found
        request = Request(
            RequestType.REMOTE_FETCH, self.uid, new_uid(), Selection(opts.rooms, opts.except_rooms)
        )
        for answer in await self._ask(request):
            for item in answer.get("sockets") or ():
                remote = self._remote_socket(item)
                if remote is not None:
                    found.append(remote)
        return found

    async def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        await self.local.add_sockets(opts, rooms)
        if not opts.local:
            self._tell(RequestType.REMOTE_JOIN, opts, rooms=rooms)

    async def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        await self.local.del_sockets(opts, rooms)
        if not opts.local:
            self._tell(RequestType.REMOTE_LEAVE, opts, rooms=rooms)

    async def disconnect_sockets(self, opts: BroadcastOptions, close: bool = False) -> None:
        if not opts.local:
            self._tell(RequestType.REMOTE_DISCONNECT, opts, close=close)
        await self.local.disconnect_sockets(opts, close)

    def server_side_emit(self, event: str, args: list[Any]) -> None:
        request = Request(RequestType.SERVER_SIDE_EMIT, self.uid, data=[event, *args])
        self.driver.publish(self.channels.request, request.encode())

    async def server_side_emit_with_ack(
        self, event: str, args: list[Any], timeout: float
    ) -> list[Any]:
        request = Request(RequestType.SERVER_SIDE_EMIT, self.uid, new_uid(), data=[event, *args])
        return [answer.get("data") for answer in await self._ask(request, timeout)]

    def _tell(self, kind: RequestType, opts: BroadcastOptions, **fields: Any) -> None:
        """A request no one answers (as Node's adapter does for join, leave, disconnect)."""
        selection = Selection(opts.rooms, opts.except_rooms)
        request = Request(kind, self.uid, selection=selection, **fields)
        self.driver.publish(self.channels.request, request.encode())

    def _remote_socket(self, item: Any) -> RemoteSocket | None:
        return remote_socket(item, self._everyone)

    # ---- requests waiting for answers ----------------------------------------------------------
    async def _ask(self, request: Request, timeout: float | None = None) -> list[dict[str, Any]]:
        """Publish ``request`` and return the other nodes' answers: all of them, or what
        arrived when ``timeout`` (the ``request_timeout``) ran out."""
        driver = self.driver
        if not driver.healthy:
            return []
        try:
            others = await driver.node_count(self.channels.request) - 1
        except CONNECTION_ERRORS:
            return []
        if others <= 0:
            return []
        request_id = request.request_id or new_uid()
        request.request_id = request_id
        pending = self._pending[request_id] = PendingRequest(others)
        self.stats["requests_out"] += 1
        try:
            driver.publish(self.channels.request, request.encode())
            with trio.move_on_after(timeout if timeout is not None else self.request_timeout):
                await pending.done.wait()
            if len(pending.answers) < pending.expected:
                self.stats["request_timeouts"] += 1
                log.info(
                    "request %s (%s): %d of %d nodes answered",
                    request_id,
                    request.type.name,
                    len(pending.answers),
                    pending.expected,
                )
            return list(pending.answers)
        finally:
            del self._pending[request_id]

    def _ask_for_acks(self, request: Request, timeout: float) -> RemoteAcks:
        """Publish a BROADCAST request now; count the nodes that must answer meanwhile."""
        collector = RemoteAcks()
        request_id = request.request_id or new_uid()
        request.request_id = request_id
        self._pending[request_id] = collector
        self.stats["requests_out"] += 1
        self.driver.publish(self.channels.request, request.encode())

        async def count_then_forget() -> None:
            try:
                try:
                    collector.expect(await self.driver.node_count(self.channels.request) - 1)
                except CONNECTION_ERRORS:
                    collector.expect(0)
                with trio.move_on_after(timeout):
                    await collector.done.wait()
            finally:
                self._pending.pop(request_id, None)

        self.driver.spawn(count_then_forget)
        return collector

    def _went_down(self) -> None:
        for pending in self._pending.values():
            pending.done.set()

    def close(self) -> None:
        """The namespace is gone: its channels are unsubscribed, what waits is ended."""
        channels = self.channels
        self.driver.punsubscribe(channels.pattern)
        for channel in (channels.request, channels.response, channels.response_for(self.uid)):
            self.driver.unsubscribe(channel)
        self.driver.off_down(self._went_down)
        self._went_down()
        self.local.close()
        if self.on_close is not None:
            self.on_close(self)

    # ---- what other nodes send ---------------------------------------------------------
    def _on_broadcast(self, channel: str, body: bytes) -> None:
        """A broadcast published by another node (or an emitter), delivered here.

        What cannot concern this node is dropped before decoding: a room channel of a room
        with no socket here, anything when the namespace has no socket, our own messages;
        unless a socket that went away and may be recovered here was in the room (it gets
        the broadcast when it comes back).
        """
        room = self.channels.room_of(channel)
        if room is None:
            return
        local = self.local
        if (not local.sids or (room and room not in local.rooms)) and not (
            local.recovery is not None and local.recovery.awaited(room)
        ):
            self.stats["broadcasts_skipped"] += 1
            return
        if wire.peek_uid(body) == self.uid:
            return
        message = self._read(BroadcastMessage.decode, body)
        if message is None or message.uid == self.uid:
            return
        self.stats["broadcasts_in"] += 1
        local.broadcast(message.packet, options_of(message.selection))

    def _on_request(self, channel: str, body: bytes) -> None:
        request = self._read(Request.decode, body)
        if request is None or request.uid == self.uid:
            return  # malformed (counted), or our own request: done locally already
        self.stats["requests_in"] += 1
        handler = _HANDLERS.get(request.type)
        if handler is not None:
            handler(self, request)

    def _on_response(self, channel: str, body: bytes) -> None:
        answer = self._read(lambda data, nsp: wire.decode_response(data), body)
        if answer is None:
            return
        pending = self._pending.get(str(answer.get("requestId")))
        if pending is not None:
            pending.add(answer)

    def _read(self, decode: Callable[[bytes, str], Any], body: bytes) -> Any:
        try:
            return decode(body, self.channels.nsp)
        except wire.WireError as exc:
            self.stats["bad_messages"] += 1
            log.debug("ignoring a malformed message: %s", exc)
            return None

    def _respond(self, request: Request, body: dict[str, Any]) -> None:
        channel = self.channels.response_for(request.uid) if request.uid else None
        self.driver.publish(channel or self.channels.response, wire.encode_response(body))

    def _sockets(self, request: Request) -> None:
        opts = BroadcastOptions(rooms=frozenset(request.rooms or ()), local=True)
        sids = list(self.local.selected(opts))
        self._respond(request, {"requestId": request.request_id, "sockets": sids})

    def _all_rooms(self, request: Request) -> None:
        rooms = list(self.local.rooms)
        self._respond(request, {"requestId": request.request_id, "rooms": rooms})

    def _join(self, request: Request) -> None:
        local = self.local
        if request.selection is not None:
            rooms = request.rooms or []
            for sid in list(local.selected(options_of(request.selection))):
                local.add_all(sid, rooms)
            return
        if request.sid in local.sids and request.room is not None:
            local.add_all(request.sid, (request.room,))
            self._respond(request, {"requestId": request.request_id})

    def _leave(self, request: Request) -> None:
        local = self.local
        if request.selection is not None:
            rooms = request.rooms or []
            for sid in list(local.selected(options_of(request.selection))):
                for room in rooms:
                    local.delete(sid, room)
            return
        if request.sid in local.sids and request.room is not None:
            local.delete(request.sid, request.room)
            self._respond(request, {"requestId": request.request_id})

    def _disconnect(self, request: Request) -> None:
        local = self.local
        if request.selection is not None:
            sids = list(local.selected(options_of(request.selection)))
        else:
            sids = [request.sid] if request.sid in local.sids else []
            if sids:
                self._respond(request, {"requestId": request.request_id})
        if sids:
            self.driver.spawn(self.emitter.disconnect, sids, request.close)

    def _fetch(self, request: Request) -> None:
        opts = options_of(request.selection or Selection())
        sockets = []
        for sid in self.local.selected(opts):
            socket = self.emitter.socket(sid)
            if socket is not None:
                sockets.append(describe(socket))
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
                self.driver.publish(self.channels.response, wire.encode_response(body))

        self.emitter.server_side(event, args, reply)

    def _broadcast_with_ack(self, request: Request) -> None:
        packet = request.packet
        if packet is None or packet.type is not sio.PacketType.EVENT:
            return
        request_id = request.request_id
        ack_id = self.emitter.next_ack_id()
        packet = sio.Packet(packet.type, packet.nsp, packet.data, ack_id)
        opts = options_of(request.selection or Selection())

        def answered(value: Any) -> None:
            body = {"type": RequestType.BROADCAST_ACK, "requestId": request_id, "packet": value}
            self._respond(request, body)

        reached = self.emitter.send_with_acks(
            self.local.selected(opts), _wire_of(packet), ack_id, answered, _nothing
        )
        self._respond(
            request,
            {
                "type": RequestType.BROADCAST_CLIENT_COUNT,
                "requestId": request_id,
                "clientCount": len(reached),
            },
        )
        timeout = (request.selection.flags if request.selection else {}).get("timeout")
        limit = timeout / 1000 if isinstance(timeout, int | float) else self.request_timeout

        async def forget() -> None:
            await trio.sleep(limit)
            self.emitter.forget_acks(reached, ack_id)

        self.driver.spawn(forget)


def _wire_of(packet: sio.Packet) -> Wire:
    return Wire.messages(sio.encode(packet))


def _nothing() -> None:
    return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def remote_socket(item: Any, everyone: BroadcastOperator) -> RemoteSocket | None:
    """Another node's socket as a fetch answer describes it (see :func:`describe`); it acts
    through ``everyone``, the namespace's sockets on every node."""
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        return None
    shake = item.get("handshake")
    shake = shake if isinstance(shake, dict) else {}
    issued = shake.get("issued")
    rooms = item.get("rooms")
    data = item.get("data")
    return RemoteSocket(
        id=item["id"],
        everyone=everyone,
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


def describe(socket: SocketLike) -> dict[str, Any]:
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
