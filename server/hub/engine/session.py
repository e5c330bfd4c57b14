"""An Engine.IO session: one client, whichever transport carries it at the moment.

The session owns the outbound queue and the heartbeat state; transports (a long-polling
request, a WebSocket connection) take packets from it. Its task tree lives in the engine's
session nursery: :meth:`Session.run` holds a nursery for the work its messages start (the
Socket.IO layer's event handlers), and when the session closes that nursery is cancelled and
the clean-up runs shielded, with a deadline.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Protocol

import trio

from server.hub.engine.config import EngineConfig
from server.hub.engine.wire import CLOSE, NOOP, PING, Wire
from server.hub.protocol import engineio as eio

if TYPE_CHECKING:
    from server.hub.engine.heartbeat import Heartbeat

log = logging.getLogger("hub.engine")


class State(Enum):
    OPEN = "open"
    CLOSING = "closing"  # server-initiated: what is queued (ending with CLOSE) still goes out
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What the handshake request said: the Socket.IO layer exposes it as ``handshake``."""

    method: str
    url: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    address: tuple[str, int] | None
    secure: bool = False
    time: float = field(default=0.0)


class SessionHandler(Protocol):
    """The layer above: told of every message and, once, of the close."""

    async def on_message(self, data: str | bytes) -> None: ...
    async def on_close(self, reason: str) -> None: ...


class Transport(Protocol):
    name: str

    def notify(self) -> None:
        """The session has packets queued (or is closing): go and send them."""

    def try_write(self, wire: Wire) -> bool:
        """Send now, without queueing, if the transport can (see WebSocketTransport)."""


class DuplicatePoll(Exception):
    """A second GET arrived while one was pending: the specification closes the session."""


class Session:
    """One Engine.IO client, across polling and WebSocket."""

    def __init__(
        self,
        config: EngineConfig,
        heartbeat: Heartbeat,
        request: RequestInfo,
        transport: Transport,
        on_removed: Callable[[Session], None],
        on_fault: Callable[[Session], None] | None = None,
    ) -> None:
        self.sid = secrets.token_urlsafe(15)
        self.config = config
        self.request = request
        self.transport: Transport = transport
        self.state = State.OPEN
        self.close_reason = ""
        self.heartbeat_token = 0
        #: A ping is out and its pong not back yet; any other pong is ignored, so a client
        #: cannot make the heartbeat queue grow by sending pongs nobody asked for.
        self.awaiting_pong = False
        self.handler: SessionHandler | None = None
        #: A list, not a deque: it is only appended to and taken whole, and an empty deque
        #: costs 600 bytes, a tenth of an idle connection.
        self.queue: list[Wire] = []
        #: The size of what is queued, in bytes (see EngineConfig.max_queue_bytes).
        self.queued_bytes = 0
        #: Set when a task of this session's tree failed (the engine counts it).
        self.fault: BaseException | None = None
        #: Counted here so the Socket.IO layer and /metrics can read them.
        self.dropped_volatile = 0
        #: Engine.IO messages queued or written for the client (pings not counted).
        self.packets_out = 0
        self._heartbeat = heartbeat
        self._on_removed = on_removed
        self._on_fault = on_fault
        # long-polling state
        self.poll_pending = False
        self.post_pending = False
        #: Created by a waiting GET: a WebSocket session never needs one.
        self._poll_wakeup: trio.Event | None = None
        # upgrade state: a WebSocket has connected with our sid / has sent "2probe"
        self.upgrading = False
        self.probed = False
        self.upgraded = False
        self._closed = trio.Event()
        self.nursery: trio.Nursery | None = None

    # ---- lifecycle -------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self.state is State.OPEN

    def handshake_packet(self) -> eio.Packet:
        upgrades = (
            ["websocket"]
            if self.transport.name == "polling" and "websocket" in self.config.transports
            else []
        )
        body = json.dumps(
            {
                "sid": self.sid,
                "upgrades": upgrades,
                "pingInterval": round(self.config.ping_interval * 1000),
                "pingTimeout": round(self.config.ping_timeout * 1000),
                "maxPayload": self.config.max_payload,
            },
            separators=(",", ":"),
        )
        return eio.Packet(eio.PacketType.OPEN, body)

    async def run(
        self,
        handler_factory: Callable[[Session], SessionHandler],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """The session's supervised task tree; returns after the clean-up has run."""
        try:
            async with trio.open_nursery() as nursery:
                self.nursery = nursery
                self.handler = handler_factory(self)
                self._heartbeat.schedule_ping(self)
                task_status.started()
                await self._closed.wait()
                nursery.cancel_scope.cancel()
        except Exception as exc:
            # a task of this session's tree failed: it ends this session, and only this one
            self.failed(exc, "a task of its tree")
        finally:
            self.state = State.CLOSED
            handler = self.handler
            if handler is not None:
                with trio.move_on_after(self.config.cleanup_timeout) as scope:
                    scope.shield = True
                    try:
                        await handler.on_close(self.close_reason or "transport close")
                    except Exception:
                        log.exception("clean-up of session %s failed", self.sid)
                if scope.cancelled_caught:
                    log.warning("clean-up of session %s passed its deadline", self.sid)

    def close(self, reason: str = "forced close") -> None:
        """Server-initiated close: queued packets and a CLOSE packet still go out."""
        if self.state is not State.OPEN:
            return
        self.queue.append(CLOSE)
        self.queued_bytes += CLOSE.nbytes
        self._finish(reason, State.CLOSING)
        self.transport.notify()
        self.wake_poll()

    def failed(self, error: BaseException, where: str) -> None:
        """An unexpected error in this session's connection or tasks: log it with the sid,
        and end the session (its clients reconnect; with recovery, with their state)."""
        if self.fault is None:
            self.fault = error
            if self._on_fault is not None:
                self._on_fault(self)
        log.error("session %s: %s failed; closing the session", self.sid, where, exc_info=error)
        self.abort("transport error")

    def abort(self, reason: str) -> None:
        """The client went away or broke the protocol: nothing more is sent."""
        if self.state is State.CLOSED:
            return
        self.queue.clear()
        self.queued_bytes = 0
        self._finish(reason, State.CLOSED)
        self.transport.notify()
        self.wake_poll()

    def _finish(self, reason: str, state: State) -> None:
        if not self.close_reason:
            self.close_reason = reason
            self._on_removed(self)
        self.state = state
        self._closed.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    # ---- outbound ----------------------------------------------------------------------
    def send(self, wire: Wire, *, volatile: bool = False, bounded: bool = True) -> bool:
        """Queue packets for the client; never waits.

        Returns False when nothing was queued: the session is closing, or the packet was
        volatile and the queue is full. A full queue and a non-volatile packet close the
        session as a slow consumer, so memory stays bounded. ``bounded=False`` is for
        packets that are held in memory anyway (a recovered session's missed packets): the
        queue only adds a reference to each.
        """
        if self.state is not State.OPEN:
            return False
        if not self.queue and self.transport.try_write(wire):
            self.packets_out += wire.count
            return True
        config = self.config
        if bounded and (
            len(self.queue) >= config.max_queue
            or self.queued_bytes + wire.nbytes > config.max_queue_bytes
        ):
            if volatile:
                self.dropped_volatile += 1
                return False
            log.warning(
                "session %s closed: slow consumer (%d packets, %d bytes queued)",
                self.sid,
                len(self.queue),
                self.queued_bytes,
            )
            self.close("slow consumer")
            return False
        self.queue.append(wire)
        self.queued_bytes += wire.nbytes
        self.packets_out += wire.count
        self.transport.notify()
        self.wake_poll()
        return True

    def send_ping(self) -> None:
        if self.state is State.OPEN:
            self.awaiting_pong = True
            if not self.queue and self.transport.try_write(PING):
                return
            self.queue.append(PING)
            self.queued_bytes += PING.nbytes
            self.transport.notify()
            self.wake_poll()

    def ping_timed_out(self) -> None:
        self.close("ping timeout")

    def take_all(self) -> list[Wire]:
        items = self.queue
        self.queue = []
        self.queued_bytes = 0
        if self.state is State.CLOSING and items and items[-1].is_close:
            self.state = State.CLOSED
        return items

    # ---- inbound -----------------------------------------------------------------------
    async def receive(self, packet: eio.Packet) -> None:
        """A packet from the client, on whichever transport carries the session."""
        if self.state is not State.OPEN:
            return
        kind = packet.type
        if kind is eio.PacketType.MESSAGE:
            if self.handler is not None:
                await self.handler.on_message(packet.data)
        elif kind is eio.PacketType.PONG:
            if self.awaiting_pong:
                self.awaiting_pong = False
                self._heartbeat.schedule_ping(self)
        elif kind is eio.PacketType.CLOSE:
            self._client_closed()
        # PING (protocol 3 clients), NOOP, OPEN and a stray UPGRADE carry nothing for us.

    def _client_closed(self) -> None:
        if self.poll_pending:
            # a pending GET ends cleanly with a NOOP, as the reference server does
            self.queue.clear()
            self.queue.append(NOOP)
            self.queued_bytes = NOOP.nbytes
            self._finish("transport close", State.CLOSING)
            self.wake_poll()
        else:
            self.abort("transport close")

    # ---- long-polling ------------------------------------------------------------------
    async def poll(self) -> list[Wire]:
        """Serve one GET: wait for packets (or a probe, or the close) and take them all."""
        if self.poll_pending:
            raise DuplicatePoll
        self.poll_pending = True
        try:
            while not self.queue and self.state is State.OPEN and not self.probed:
                self._poll_wakeup = trio.Event()
                await self._poll_wakeup.wait()
            if not self.queue and self.probed:
                return [NOOP]  # a WebSocket is taking over: end this poll cleanly
            return self.take_all()
        finally:
            self.poll_pending = False

    def wake_poll(self) -> None:
        if self._poll_wakeup is not None:
            self._poll_wakeup.set()
