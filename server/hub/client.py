"""One Engine.IO session seen by Socket.IO: packets decoded and handed to their namespace's
socket (or a CONNECT to the namespace), and the connection's handlers run within a bound."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

import trio

from server.hub.config import HubConfig
from server.hub.engine import Session, Wire
from server.hub.handlers import Handler
from server.hub.namespace import Namespace
from server.hub.protocol import ProtocolError
from server.hub.protocol import socketio as sio
from server.hub.socket import Socket

log = logging.getLogger("hub")

#: The namespace a CONNECT asks for (made on demand for a dynamic one), or None.
NamespaceLookup = Callable[[str, dict[str, Any]], Awaitable[Namespace | None]]


class Waiting(Protocol):
    """Where connections wait for their first CONNECT (the connect timeout, and a cap):
    :class:`~server.hub.connecting.ConnectDeadlines`."""

    def add(self, client: Client, host: str) -> None: ...

    def done(self, client: Client) -> None: ...


class Client:
    """The :class:`~server.hub.engine.SessionHandler` of a Socket.IO connection.

    Event handlers run in the session's nursery, so they belong to the connection's task
    tree, and are cancelled when the session closes. At most ``max_handlers`` async
    handlers run at once per connection; past that the reader waits, and TCP pushes back on
    the client.
    """

    def __init__(
        self,
        session: Session,
        config: HubConfig,
        stats: Counter[str],
        lookup: NamespaceLookup,
        waiting: Waiting,
    ) -> None:
        self.session = session
        self.stats = stats
        self.decoder = sio.Decoder(config.max_attachments)
        self.sockets: dict[str, Socket] = {}
        self._lookup = lookup
        self._waiting = waiting
        self._max_handlers = config.max_handlers
        #: Made by the first async handler: most connections never run one.
        self._slots: trio.Semaphore | None = None
        #: Set by the first successful CONNECT: from then on the connect timeout no longer
        #: applies, even once the client has left every namespace (as in Node).
        self._joined = False
        address = session.request.address
        waiting.add(self, address[0] if address else "")

    @property
    def handlers_in_flight(self) -> int:
        slots = self._slots
        return 0 if slots is None else self._max_handlers - slots.value

    def send_packet(self, packet: sio.Packet, *, volatile: bool = False) -> bool:
        return self.session.send(Wire.messages(sio.encode(packet)), volatile=volatile)

    def replay(self, wires: Iterable[Wire]) -> None:
        for wire in wires:
            self.session.send(wire, bounded=False)

    def connect_deadline_passed(self) -> None:
        if not self._joined and self.session.is_open:
            log.info("session %s joined no namespace in time: closing", self.session.sid)
            self.session.close("connect timeout")

    # ---- SessionHandler ----------------------------------------------------------------
    async def on_message(self, data: str | bytes) -> None:
        self.stats["packets_in"] += 1
        try:
            packet = self.decoder.feed(data)
        except ProtocolError as exc:
            self.stats["parse_errors"] += 1
            log.info("session %s sent a malformed packet (%s): closing", self.session.sid, exc)
            self.session.close("parse error")
            return
        if packet is None:
            return
        socket = self.sockets.get(packet.nsp)
        if socket is None and packet.type is sio.PacketType.CONNECT:
            auth = packet.data or {}
            nsp = await self._lookup(packet.nsp, auth)
            if nsp is None:
                self.send_packet(
                    sio.Packet(
                        sio.PacketType.CONNECT_ERROR, packet.nsp, {"message": "Invalid namespace"}
                    )
                )
            else:
                await nsp.connect(self, auth)
        elif socket is not None and packet.type not in _FROM_A_CLIENT_NOT_CONNECTED:
            await socket.receive(packet)
        else:
            # a packet for a namespace the client is not in, a second CONNECT, or a
            # CONNECT_ERROR: the reference server treats these as a broken client, and so do we
            self.stats["parse_errors"] += 1
            log.info(
                "session %s: %s packet for namespace %s in the wrong state: closing",
                self.session.sid,
                packet.type.name,
                packet.nsp,
            )
            self.session.close("parse error")

    async def on_close(self, reason: str) -> None:
        self._waiting.done(self)
        for socket in list(self.sockets.values()):
            await socket.nsp.remove(socket, reason)

    # ---- the sockets of this connection (NamespaceClient) --------------------------------
    def attach(self, socket: Socket) -> None:
        self.sockets[socket.nsp.name] = socket

    def detach(self, socket: Socket) -> None:
        if self.sockets.get(socket.nsp.name) is socket:
            del self.sockets[socket.nsp.name]

    def joined(self) -> None:
        if not self._joined:
            self._joined = True
            self._waiting.done(self)

    async def disconnect_all(self) -> None:
        for socket in list(self.sockets.values()):
            await socket.disconnect()
        self.session.close("forced server close")

    # ---- handlers ----------------------------------------------------------------------
    async def run(
        self,
        handler: Handler,
        args: tuple[Any, ...],
        socket: Socket,
        ack_id: int | None,
        event: str,
    ) -> None:
        """Run a plain handler now; start an async one in order, within the bound."""
        if not handler.is_async:
            try:
                result = handler.fn(*args)
            except Exception as exc:
                self._failed(socket, event, exc)
                return
            self._answer(socket, ack_id, event, result)
            return
        slots = self._slots
        if slots is None:
            slots = self._slots = trio.Semaphore(self._max_handlers)
        await slots.acquire()
        nursery = self.session.nursery
        if nursery is None or not self.session.is_open:
            slots.release()
            return
        await nursery.start(self._run_async, handler, args, socket, ack_id, event, slots)

    async def _run_async(
        self,
        handler: Handler,
        args: tuple[Any, ...],
        socket: Socket,
        ack_id: int | None,
        event: str,
        slots: trio.Semaphore,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        session = self.session
        scope = session.task_scope()  # cancelled when the session closes
        try:
            task_status.started()
            del task_status  # it holds the nursery of the start() that made this task
            with scope:
                try:
                    result = await handler.fn(*args)
                except Exception as exc:
                    self._failed(socket, event, exc)
                    return
                self._answer(socket, ack_id, event, result)
        finally:
            session.task_done(scope)
            slots.release()

    def _failed(self, socket: Socket, event: str, error: BaseException) -> None:
        self.stats["handler_errors"] += 1
        log.error("handler of %r in %s failed", event, socket.nsp.name, exc_info=error)

    def _answer(self, socket: Socket, ack_id: int | None, event: str, value: Any) -> None:
        """Answer an ack; a value that cannot be sent is the handler's error, not the
        connection's."""
        if ack_id is None:
            return
        try:
            socket.answer(ack_id, value)
        except (TypeError, ValueError) as exc:
            self.stats["handler_errors"] += 1
            log.error("the answer of %r in %s cannot be sent: %s", event, socket.nsp.name, exc)


_FROM_A_CLIENT_NOT_CONNECTED = (sio.PacketType.CONNECT, sio.PacketType.CONNECT_ERROR)
