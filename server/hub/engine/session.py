"""An Engine.IO session: one client, whichever transport carries it at the moment.

The session owns the outbound queue, the heartbeat state and its :class:`State` (the state
machine is the table of :mod:`server.hub.engine.state`; the methods here are its transitions,
called by the transports and the heartbeat). Transports (a long-polling request, a WebSocket
connection) take packets from it. Its task tree has a nursery for the work its messages
start (the Socket.IO layer's event handlers): a session born on a WebSocket is served in
that connection's task (:meth:`Session.serve`: one task and one nursery for the reader, the
writer when there is one, and the handlers), any other in a task of its own in the engine's
session nursery (:meth:`Session.run`). When the session closes its handlers are cancelled
and the clean-up runs shielded, with a deadline.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import trio

from server.hub.engine.config import EngineConfig
from server.hub.engine.flag import Flag
from server.hub.engine.ids import random_id
from server.hub.engine.state import (
    OPEN_STATES,
    POLLING_STATES,
    Event,
    State,
    initial_state,
    next_state,
)
from server.hub.engine.wire import CLOSE, NOOP, PING, Wire
from server.hub.protocol import engineio as eio

if TYPE_CHECKING:
    from server.hub.engine.deadlines import Deadline
    from server.hub.engine.heartbeat import Beating, Heartbeat
    from server.hub.engine.ticks import DirectWrites

log = logging.getLogger("hub.engine")

__all__ = ["RequestInfo", "Session", "SessionHandler", "State", "Transport", "contain"]


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

    def try_write(self, wire: Wire, batch: DirectWrites | None = None) -> bool:
        """Send now, without queueing, if the transport can (see WebSocketTransport); with
        ``batch``, as part of a broadcast's writes."""

    def unread_for(self) -> float:
        """Seconds the client has left bytes written to it unread without taking any; 0.0
        when it has taken everything written (see :meth:`Session.unread_for`)."""


class Session:
    """One Engine.IO client, across polling and WebSocket."""

    # slots: an instance dict past 30 attributes is a table of its own (1.5 KB a session)
    __slots__ = (
        "_clean_up_in",
        "_cleaned",
        "_closed",
        "_heartbeat",
        "_on_cleaned",
        "_on_fault",
        "_on_removed",
        "_open",
        "_poll_wakeup",
        "_polled_at",
        "_tasks",
        "_tasks_ended",
        "awaiting_pong",
        "close_reason",
        "config",
        "dropped_volatile",
        "fault",
        "handler",
        "heartbeat_token",
        "kept_past_bounds",
        "nursery",
        "packets_out",
        "poll_pending",
        "post_pending",
        "queue",
        "queued_bytes",
        "request",
        "sid",
        "state",
        "transport",
    )

    def __init__(
        self,
        config: EngineConfig,
        heartbeat: Heartbeat,
        request: RequestInfo,
        transport: Transport,
        on_removed: Callable[[Session], None],
        on_fault: Callable[[Session], None] | None = None,
    ) -> None:
        self.sid = random_id()
        self.config = config
        self.request = request
        self.transport: Transport = transport
        #: Where the session is in its life (see :mod:`server.hub.engine.state`); moved
        #: only by the transition methods below.
        self.state = initial_state(transport.name)
        #: ``state in OPEN_STATES``, kept with it: the send path reads it for every packet.
        self._open = True
        self.close_reason = ""
        #: The session's pending heartbeat deadline (its next ping or its pong's deadline);
        #: a pong or the close cancels it (see :class:`Heartbeat`).
        self.heartbeat_token: Deadline[Beating] | None = None
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
        #: Packets queued past the bounds because the client was reading (the hub's backlog).
        self.kept_past_bounds = 0
        self._heartbeat = heartbeat
        self._on_removed = on_removed
        self._on_fault = on_fault
        # long-polling state
        self.poll_pending = False
        self.post_pending = False
        #: Created by a waiting GET: a WebSocket session never needs one.
        self._poll_wakeup: trio.Event | None = None
        #: When a GET last took what was queued (or the session began).
        self._polled_at = trio.current_time()
        self._closed = Flag()
        #: Where the work its messages start runs (see :meth:`run` and :meth:`serve`).
        self.nursery: trio.Nursery | None = None
        #: The cancel scopes of that work's tasks, running now (see :meth:`task_scope`);
        #: made by the first.
        self._tasks: set[trio.CancelScope] | None = None
        #: Set by the clean-up while it waits for those tasks to end.
        self._tasks_ended: trio.Event | None = None
        #: Served in its connection's task: where the clean-up starts once it closes.
        self._clean_up_in: trio.Nursery | None = None
        self._cleaned = False
        self._on_cleaned: Callable[[], None] | None = None

    # ---- lifecycle -------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self._open

    @property
    def polling(self) -> bool:
        """Long-polling carries the session (GET and POST are served for it)."""
        return self.state in POLLING_STATES

    def _move(self, event: Event) -> bool:
        """Take the transition of ``event``, if the table allows it from here."""
        state = next_state(self.state, event)
        if state is None:
            return False
        self.state = state
        self._open = state in OPEN_STATES
        return True

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
        """The session's supervised task tree, in a task of its own (a session that begins
        on long-polling); returns after the clean-up has run."""
        try:
            async with trio.open_nursery() as nursery:
                self.nursery = nursery
                self.handler = handler_factory(self)
                self._heartbeat.schedule_ping(self)
                task_status.started()
                # the status holds the nursery of the start() that made this task: let go
                del task_status
                await self._closed.wait()
                nursery.cancel_scope.cancel()
        except Exception as exc:
            # a task of this session's tree failed: it ends this session, and only this one
            self.failed(exc, "a task of its tree")
        finally:
            await self._clean_up()

    async def serve(
        self,
        handler_factory: Callable[[Session], SessionHandler],
        carry: Callable[[Session, trio.Nursery], Awaitable[None]],
        on_cleaned: Callable[[], None],
    ) -> None:
        """The session served in the task of the connection that carries it (a WebSocket's):
        ``carry`` is that connection's reader, run in the nursery it is given, which is also
        the session's (the writer and the handlers run in it). When the session closes,
        its handlers are cancelled and its clean-up starts in that nursery at once, so that
        it does not wait for the connection's last writes (a stalled client has
        ``CLOSE_FLUSH_TIMEOUT``); ``on_cleaned`` is called once the clean-up is done.
        Returns when the connection is over, after the clean-up."""
        self._on_cleaned = on_cleaned
        try:
            async with trio.open_nursery() as nursery:
                self.nursery = self._clean_up_in = nursery
                self.handler = handler_factory(self)
                self._heartbeat.schedule_ping(self)
                await carry(self, nursery)
        except Exception as exc:
            # a task of this connection's tree failed: it ends this session, and only this one
            self._clean_up_in = None
            self.failed(exc, "a task of its tree")
        finally:
            self._clean_up_in = None
            await self._clean_up()  # done already, unless the connection ended first

    async def _clean_up(self) -> None:
        """Once: nothing more goes out, the session's tasks end (cancelled when it closed),
        then the handler's ``on_close`` runs, shielded, within ``cleanup_timeout``."""
        if self._cleaned:
            return
        self._cleaned = True
        try:
            if self._open:  # cancelled with the engine: nothing more goes out
                self._move(Event.ABORT)
            self._heartbeat.stop(self)
            if self._tasks:
                self._cancel_tasks()
                self._tasks_ended = trio.Event()
                await self._tasks_ended.wait()
        finally:
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
            on_cleaned, self._on_cleaned = self._on_cleaned, None
            if on_cleaned is not None:
                on_cleaned()

    def task_scope(self) -> trio.CancelScope:
        """A cancel scope for a task of this session's work (an event handler), cancelled
        when the session closes (at once if it has); :meth:`task_done` gives it back when
        the task ends. The clean-up waits for these tasks."""
        scope = trio.CancelScope()
        if not self._open:
            scope.cancel()
        tasks = self._tasks
        if tasks is None:
            tasks = self._tasks = set()
        tasks.add(scope)
        return scope

    def task_done(self, scope: trio.CancelScope) -> None:
        tasks = self._tasks
        if tasks is not None:
            tasks.discard(scope)
            if not tasks and self._tasks_ended is not None:
                self._tasks_ended.set()

    def _cancel_tasks(self) -> None:
        if self._tasks:
            for scope in self._tasks:
                scope.cancel()

    def close(self, reason: str = "forced close", *, final: bool = True) -> bool:
        """Server-initiated close (``CLOSE``): queued packets still go out, then the end:
        over long-polling a CLOSE packet, over a WebSocket its close frame alone, as Node's
        server does (a CLOSE packet is a deliberate disconnect to python-socketio's client,
        which then does not reconnect).

        ``final=False`` is for a server going away (a shutdown or a restart), whose clients
        should come back: no CLOSE packet on either transport; a pending GET ends with what
        is queued (or a NOOP), and the next request finds no session, which every stock
        client takes as a reason to reconnect. False if the session was not open."""
        on_websocket = self.state is State.WEBSOCKET
        if not self._move(Event.CLOSE):
            return False
        if not on_websocket:
            end = CLOSE if final else NOOP
            if final or not self.queue:
                self.queue.append(end)
                self.queued_bytes += end.nbytes
        self._finish(reason)
        self.transport.notify()
        self.wake_poll()
        return True

    def failed(self, error: BaseException, where: str) -> None:
        """An unexpected error in this session's connection or tasks: log it with the sid,
        and end the session (its clients reconnect; with recovery, with their state)."""
        if self.fault is None:
            self.fault = error
            if self._on_fault is not None:
                self._on_fault(self)
        log.error("session %s: %s failed; closing the session", self.sid, where, exc_info=error)
        self.abort("transport error")

    def abort(self, reason: str) -> bool:
        """The client went away or broke the protocol (``ABORT``): nothing more is sent.
        False if the session was closed already."""
        if not self._move(Event.ABORT):
            return False
        self.queue.clear()
        self.queued_bytes = 0
        self._finish(reason)
        self.transport.notify()
        self.wake_poll()
        return True

    def _finish(self, reason: str) -> None:
        if not self.close_reason:
            self.close_reason = reason
            self._on_removed(self)
            self._heartbeat.stop(self)
        self._closed.set()
        self._cancel_tasks()
        nursery = self._clean_up_in
        if nursery is not None:
            # served in its connection's task: the clean-up starts now, beside the writes
            self._clean_up_in = None
            with contextlib.suppress(RuntimeError):  # the connection is over: serve() does it
                nursery.start_soon(self._clean_up, name="session clean-up")

    async def wait_closed(self) -> None:
        await self._closed.wait()

    # ---- outbound ----------------------------------------------------------------------
    def send(
        self,
        wire: Wire,
        volatile: bool = False,
        batch: DirectWrites | None = None,
        *,
        bounded: bool = True,
    ) -> bool:
        """Queue packets for the client; never waits.

        ``batch``: a broadcast's :class:`~server.hub.engine.ticks.DirectWrites`, which writes
        to the idle connections a chunk of recipients at a time.

        Returns False when nothing was queued: the session is closing, or the packet was
        volatile and the queue is full. A full queue and a non-volatile packet close the
        session as a slow consumer, so memory stays bounded. ``bounded=False`` is for
        packets that are held in memory anyway (a recovered session's missed packets): the
        queue only adds a reference to each.
        """
        if not self._open:
            return False
        if not self.queue and self.transport.try_write(wire, batch):
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
            why = self._slow_consumer(wire)
            if why:
                log.warning(
                    "session %s closed: slow consumer, %s (%d packets, %d bytes queued)",
                    self.sid,
                    why,
                    len(self.queue),
                    self.queued_bytes,
                )
                self.close("slow consumer")
                return False
            self.kept_past_bounds += 1
        self.queue.append(wire)
        self.queued_bytes += wire.nbytes
        self.packets_out += wire.count
        self.transport.notify()
        self.wake_poll()
        return True

    def _slow_consumer(self, wire: Wire) -> str:
        """The queue is past its bounds: why the client is to blame (empty: it is not).

        A client is slow when what was written to it lies unread and it has taken nothing
        for ``slow_consumer_timeout``. When its socket holds nothing unread, the backlog is
        the hub's own (its writer has not had its turn yet: everyone's queue grows while the
        hub works through a burst), and closing it would only start a reconnect storm. Past
        ``queue_hard_limit`` times the bounds, the session is closed whatever the cause.
        """
        config = self.config
        hard = config.queue_hard_limit
        if (
            len(self.queue) >= hard * config.max_queue
            or self.queued_bytes + wire.nbytes > hard * config.max_queue_bytes
        ):
            return f"queue past {hard} times its bounds"
        unread_for = self.unread_for()
        if unread_for >= config.slow_consumer_timeout:
            return f"nothing read for {unread_for:.1f} s"
        return ""

    def unread_for(self) -> float:
        """Seconds the client has left what it was sent untaken (0.0: it has taken all)."""
        if self.polling:
            # a waiting GET takes everything at once; otherwise the client owes us one
            return 0.0 if self.poll_pending else trio.current_time() - self._polled_at
        return self.transport.unread_for()

    def send_ping(self) -> None:
        if self.is_open:
            self.awaiting_pong = True
            if not self.queue and self.transport.try_write(PING):
                return
            self.queue.append(PING)
            self.queued_bytes += PING.nbytes
            self.transport.notify()
            self.wake_poll()

    def ping_timed_out(self) -> None:
        self.close("ping timeout")

    def take_all(self, max_bytes: int | None = None) -> list[Wire]:
        """What is queued, for a transport to send: everything, or (``max_bytes``) the
        oldest packets up to that many bytes (one at least), so a transport never copies
        more than that at once; what is left stays queued and counted. A closing session
        has queued all it will (``FLUSHED``): it is closed once the last is taken."""
        items = self.queue
        if max_bytes is not None and self.queued_bytes > max_bytes:
            size = 0
            for n, wire in enumerate(items):
                size += wire.nbytes
                if size >= max_bytes:
                    items, self.queue = items[: n + 1], items[n + 1 :]
                    self.queued_bytes -= size
                    return items
        self.queue = []
        self.queued_bytes = 0
        self._move(Event.FLUSHED)
        return items

    # ---- inbound -----------------------------------------------------------------------
    async def receive(self, packet: eio.Packet) -> None:
        """A packet from the client, on whichever transport carries the session."""
        if not self.is_open:
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
            self._move(Event.CLOSE)
            self._finish("transport close")
            self.wake_poll()
        else:
            self.abort("transport close")

    # ---- the upgrade (driven by the WebSocket that connected with this session's sid) ----
    def begin_upgrade(self) -> bool:
        """A WebSocket with this sid has completed its handshake (``BEGIN_UPGRADE``). False
        when the session cannot be upgraded: it is not polling, or another WebSocket is
        upgrading it already; that WebSocket is then closed (as Node's server does)."""
        return self._move(Event.BEGIN_UPGRADE)

    def probe(self) -> bool:
        """The WebSocket sent ``2probe`` (``PROBE``): a pending GET ends with NOOP, so that
        the client can send ``5``. False if the session is not upgrading (any more)."""
        if not self._move(Event.PROBE):
            return False
        self.wake_poll()
        return True

    def upgrade(self, transport: Transport) -> bool:
        """The WebSocket sent ``5`` (``UPGRADE``): it carries the session from now on (it
        then sends what was queued for polling). False unless the probe came first."""
        if not self._move(Event.UPGRADE):
            return False
        self.transport = transport
        return True

    def upgrade_failed(self) -> None:
        """The upgrading WebSocket is gone (``UPGRADE_FAILED``): polling goes on as before.
        Nothing changes if the upgrade completed or the session closed meanwhile."""
        self._move(Event.UPGRADE_FAILED)

    # ---- long-polling ------------------------------------------------------------------
    async def poll(self) -> list[Wire]:
        """Serve one GET: wait for packets (or the probe, or the close) and take them all.
        One at a time: the caller checks :attr:`poll_pending` first."""
        assert not self.poll_pending, "a GET is pending already"
        self.poll_pending = True
        try:
            while not self.queue and self.state in _POLL_WAITS:
                self._poll_wakeup = trio.Event()
                await self._poll_wakeup.wait()
            if not self.queue and self.state is State.PROBED:
                return [NOOP]  # a WebSocket is taking over: end this poll cleanly
            # one response carries at most max_payload bytes; the next GET takes the rest
            return self.take_all(self.config.max_payload)
        finally:
            self.poll_pending = False
            self._polled_at = trio.current_time()

    def wake_poll(self) -> None:
        if self._poll_wakeup is not None:
            self._poll_wakeup.set()


#: The states in which a GET waits for something to send.
_POLL_WAITS = frozenset({State.POLLING, State.UPGRADING})


@contextlib.contextmanager
def contain(session: Session, where: str) -> Iterator[None]:
    """A connection serving ``session``: an unexpected error in here ends the session
    (logged with its sid, counted: :meth:`Session.failed`) and is not raised any further,
    so it never reaches another connection or the process. The code after the ``with``
    runs only when that happened: it ends the connection.

    A broken or closed stream is the client going away, not a fault: it goes on up.
    """
    try:
        yield
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        raise
    except Exception as exc:
        session.failed(exc, where)
