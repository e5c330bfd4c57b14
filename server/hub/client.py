"""One Engine.IO session seen by Socket.IO: packet decoding and its namespace sockets."""

from __future__ import annotations

import inspect
import logging
import secrets
from typing import TYPE_CHECKING, Any

import trio

from server.hub.engine import Session, Wire
from server.hub.errors import ConnectRefused, EventRefused, RecoveryDeclined
from server.hub.protocol import ProtocolError
from server.hub.protocol import socketio as sio
from server.hub.socket import Handshake, Socket, call

if TYPE_CHECKING:
    from server.hub.namespace import Handler, Namespace
    from server.hub.recovery import Restored
    from server.hub.server import Hub

log = logging.getLogger("hub")

_NOT_FROM_A_CONNECTED_CLIENT = (sio.PacketType.CONNECT, sio.PacketType.CONNECT_ERROR)


class Client:
    """The :class:`~server.hub.engine.SessionHandler` of a Socket.IO connection.

    Event handlers run in the session's nursery, so they belong to the connection's task
    tree and are cancelled with it. At most ``hub.max_handlers`` async handlers run at once
    per connection; past that the reader waits, and TCP pushes back on the client.
    """

    def __init__(self, hub: Hub, session: Session) -> None:
        self.hub = hub
        self.session = session
        self.decoder = sio.Decoder(hub.max_attachments)
        self.sockets: dict[str, Socket] = {}
        self._slots = trio.Semaphore(hub.max_handlers)
        #: Set by the first successful CONNECT: from then on the connect timeout no longer
        #: applies, even once the client has left every namespace (as in Node).
        self._joined = False
        address = session.request.address
        hub.connect_deadlines.add(self, address[0] if address else "")

    @property
    def handlers_in_flight(self) -> int:
        return self.hub.max_handlers - self._slots.value

    def send_packet(self, packet: sio.Packet, *, volatile: bool = False) -> bool:
        return self.session.send(Wire.messages(sio.encode(packet)), volatile=volatile)

    def connect_deadline_passed(self) -> None:
        if not self._joined and self.session.is_open:
            log.info("session %s joined no namespace in time: closing", self.session.sid)
            self.session.close("connect timeout")

    # ---- SessionHandler ----------------------------------------------------------------
    async def on_message(self, data: str | bytes) -> None:
        self.hub.stats["packets_in"] += 1
        try:
            packet = self.decoder.feed(data)
        except ProtocolError as exc:
            self.hub.stats["parse_errors"] += 1
            log.info("session %s sent a malformed packet (%s): closing", self.session.sid, exc)
            self.session.close("parse error")
            return
        if packet is None:
            return
        socket = self.sockets.get(packet.nsp)
        if socket is None and packet.type is sio.PacketType.CONNECT:
            await self._connect(packet.nsp, packet.data or {})
        elif socket is not None and packet.type not in _NOT_FROM_A_CONNECTED_CLIENT:
            await socket._on_packet(packet)
        else:
            # a packet for a namespace the client is not in, a second CONNECT, or a
            # CONNECT_ERROR: the reference server treats these as a broken client, and so do we
            self.hub.stats["parse_errors"] += 1
            log.info(
                "session %s: %s packet for namespace %s in the wrong state: closing",
                self.session.sid,
                packet.type.name,
                packet.nsp,
            )
            self.session.close("parse error")

    async def on_close(self, reason: str) -> None:
        self.hub.connect_deadlines.done(self)
        for socket in list(self.sockets.values()):
            await socket._on_close(reason)

    # ---- namespaces --------------------------------------------------------------------
    async def _connect(self, name: str, auth: dict[str, Any]) -> None:
        nsp = self.hub.namespaces.get(name)
        if nsp is None:
            self._refuse(name, "Invalid namespace")
            return
        request = self.session.request
        handshake = Handshake(
            auth=auth,
            query=request.query,
            headers=request.headers,
            address=request.address[0] if request.address else None,
            time=request.time,
            url=request.url,
            secure=request.secure,
        )
        recovery = nsp.adapter.recovery
        restored = None
        if recovery is not None:
            pid, offset = auth.get("pid"), auth.get("offset")
            if isinstance(pid, str) and isinstance(offset, str | None):
                restored = recovery.restore(pid, offset)
        while True:
            socket = self._new_socket(nsp, handshake, restored)
            try:
                if restored is None or not self.hub.recovery_skips_middlewares:
                    await nsp.run_middlewares(socket)
            except RecoveryDeclined:
                if restored is None:  # nothing to decline: a misplaced raise
                    self.hub.stats["handler_errors"] += 1
                    log.error("middleware of %s declined the recovery of a new socket", name)
                    self._refuse(name, "Internal server error")
                    return
                restored = None  # connect it as a new socket; its saved state is dropped
                continue
            except ConnectRefused as refusal:
                if restored is not None and recovery is not None:
                    recovery.put_back(restored)  # another attempt (a fresh token) may resume
                self._refuse(name, refusal.message, refusal.data)
                return
            except Exception:
                if restored is not None and recovery is not None:
                    recovery.put_back(restored)
                self.hub.stats["handler_errors"] += 1
                log.exception("middleware of %s failed", name)
                self._refuse(name, "Internal server error")
                return
            break
        if not self.session.is_open:
            if restored is not None and recovery is not None:
                recovery.put_back(restored)
            return
        socket.connected = True
        if not self._joined:
            self._joined = True
            self.hub.connect_deadlines.done(self)
        self.sockets[name] = socket
        nsp.sockets[socket.id] = socket
        nsp.adapter.add_all(socket.id, (socket.id,))
        answer = {"sid": socket.id} if socket.pid is None else {"sid": socket.id, "pid": socket.pid}
        self.send_packet(sio.Packet(sio.PacketType.CONNECT, name, answer))
        if restored is not None and recovery is not None:
            # no checkpoint between listing what was missed and rejoining the rooms, so
            # every stored packet reaches the socket exactly once
            nsp.adapter.add_all(socket.id, restored.session.rooms)
            for wire in recovery.missed(restored):
                self.session.send(wire, bounded=False)
        handler = nsp.handler_for("connect")
        if handler is not None:
            await self._start(nsp, handler, (socket,), socket, None, "connect")

    def _new_socket(
        self, nsp: Namespace, handshake: Handshake, restored: Restored | None
    ) -> Socket:
        recovery = nsp.adapter.recovery
        if restored is not None:
            saved = restored.session
            # a copy of the saved data: a middleware that declines the recovery may have
            # changed it, and the saved session may be put back for another attempt
            socket = Socket(saved.sid, nsp, self, handshake, data=dict(saved.data), recovered=True)
            socket.pid = saved.pid
            socket.recovery_base = saved.base
            return socket
        socket = Socket(secrets.token_urlsafe(15), nsp, self, handshake)
        if recovery is not None:
            socket.pid = secrets.token_urlsafe(15)
            socket.recovery_base = recovery.next_seq
        return socket

    def _refuse(self, name: str, message: str, data: Any = None) -> None:
        body: dict[str, Any] = {"message": message}
        if data is not None:
            body["data"] = data
        self.send_packet(sio.Packet(sio.PacketType.CONNECT_ERROR, name, body))

    async def disconnect_all(self) -> None:
        for socket in list(self.sockets.values()):
            await socket.disconnect()
        self.session.close("forced server close")

    # ---- events ------------------------------------------------------------------------
    async def dispatch(
        self, socket: Socket, event: str, args: tuple[Any, ...], ack_id: int | None
    ) -> None:
        nsp = socket.nsp
        if nsp.incoming and not await self._admit(socket, event, args, ack_id):
            return
        for catch_all in nsp.any_handlers:
            await self._start(nsp, catch_all, (socket, event, *args), socket, None, event)
        handler = nsp.handler_for(event)
        if handler is not None:
            await self._start(nsp, handler, (socket, *args), socket, ack_id, event)

    async def _admit(
        self, socket: Socket, event: str, args: tuple[Any, ...], ack_id: int | None
    ) -> bool:
        """Run the namespace's incoming-event middlewares: False if one refused the event."""
        for middleware in socket.nsp.incoming:
            try:
                outcome = middleware(socket, event, args)
                if inspect.isawaitable(outcome):
                    await outcome
            except EventRefused as refusal:
                self.hub.stats["events_refused"] += 1
                if ack_id is not None and refusal.answer is not None:
                    self._answer(socket, ack_id, event, refusal.answer)
                if refusal.disconnect:
                    log.info(
                        "session %s: %r refused (%s): disconnecting socket %s",
                        self.session.sid,
                        event,
                        refusal.reason,
                        socket.id,
                    )
                    await socket.disconnect()
                return False
            except Exception:
                self.hub.stats["handler_errors"] += 1
                log.exception("incoming middleware of %s failed on %r", socket.nsp.name, event)
                return False
        return True

    def _answer(self, socket: Socket, ack_id: int, event: str, value: Any) -> None:
        """Answer an ack; a value that cannot be sent is the handler's error, not the
        connection's."""
        try:
            socket._answer(ack_id, value)
        except (TypeError, ValueError) as exc:
            self.hub.stats["handler_errors"] += 1
            log.error("the answer of %r in %s cannot be sent: %s", event, socket.nsp.name, exc)

    async def _start(
        self,
        nsp: Namespace,
        handler: Handler,
        args: tuple[Any, ...],
        socket: Socket,
        ack_id: int | None,
        event: str,
    ) -> None:
        """Run a plain handler now; start an async one in order, within the bound."""
        if not nsp.is_async(handler):
            self._finish(socket, ack_id, event, *_run_sync(handler, args))
            return
        await self._slots.acquire()
        nursery = self.session.nursery
        if nursery is None or not self.session.is_open:
            self._slots.release()
            return
        await nursery.start(self._run_async, handler, args, socket, ack_id, event)

    async def _run_async(
        self,
        handler: Handler,
        args: tuple[Any, ...],
        socket: Socket,
        ack_id: int | None,
        event: str,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        try:
            task_status.started()
            try:
                result = await call(handler, *args)
            except Exception as exc:
                self._finish(socket, ack_id, event, None, exc)
                return
            self._finish(socket, ack_id, event, result, None)
        finally:
            self._slots.release()

    def _finish(
        self,
        socket: Socket,
        ack_id: int | None,
        event: str,
        result: Any,
        error: BaseException | None,
    ) -> None:
        if error is not None:
            self.hub.stats["handler_errors"] += 1
            log.error("handler of %r in %s failed", event, socket.nsp.name, exc_info=error)
            return
        if ack_id is not None:
            self._answer(socket, ack_id, event, result)


def _run_sync(handler: Handler, args: tuple[Any, ...]) -> tuple[Any, BaseException | None]:
    try:
        return handler(*args), None
    except Exception as exc:
        return None, exc
