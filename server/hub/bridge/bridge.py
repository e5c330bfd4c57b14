"""The bridge between processes: one Redis connection for publishing, one for subscribing.

Task tree (the owner is whoever starts :meth:`Bridge.run`, normally the root nursery)::

    Bridge.run
    ├── tasks nursery: work that outlives one connection (remote disconnects, async
    │   server-side handlers, ack clean-ups)
    └── one connection at a time, reopened with backoff after a loss
        ├── coredis pub/sub (its own reader task)
        ├── publisher: takes everything queued, sends it as one pipeline
        └── reader: hands each message to the namespace's adapter

Why this shape:

- A broadcast never waits: it encodes once and puts ``(channel, body)`` on a bounded queue.
  One publisher drains the queue in batches (a pipeline per batch), because coredis's cost
  per command is high and a round trip per publish would be the bottleneck.
- While Redis is down the bridge is *degraded*: local delivery goes on, what would have gone
  to other nodes is dropped and counted, requests answer with this node's part only. The
  run loop reconnects with exponential backoff and subscribes again to every namespace.
- Requests count the nodes that must answer with ``PUBSUB NUMSUB`` of the request channel,
  as Node's adapter does, and finish with what arrived when their timeout runs out: a node
  that died is not subscribed any more, so it is not waited for.
"""

from __future__ import annotations

import inspect
import logging
import math
import random
import secrets
import string
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import coredis
import coredis.exceptions
import trio

from server.hub.bridge import wire
from server.hub.bridge.adapter import RedisAdapter
from server.hub.bridge.wire import Request, RequestType, WireError

if TYPE_CHECKING:
    from server.hub.namespace import Namespace
    from server.hub.server import Hub

log = logging.getLogger("hub.bridge")

#: What a lost or refused Redis connection raises. coredis's pub/sub may also raise
#: anyio's ClosedResourceError when its connection is torn down under it.
_CONNECTION_ERRORS = (
    coredis.exceptions.RedisError,
    OSError,
    TimeoutError,
    trio.TooSlowError,
    anyio.ClosedResourceError,
    anyio.BrokenResourceError,
)
_ALPHABET = string.ascii_letters + string.digits
ServerSideHandler = Callable[..., Any]


def _uid(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


@dataclass(slots=True)
class _Pending:
    """A request waiting for the answers of ``expected`` other nodes."""

    expected: int
    answers: list[dict[str, Any]] = field(default_factory=list)
    done: trio.Event = field(default_factory=trio.Event)

    def add(self, answer: dict[str, Any]) -> None:
        self.answers.append(answer)
        if len(self.answers) >= self.expected:
            self.done.set()


class _AckCollector:
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

    async def wait(self) -> None:
        await self.done.wait()


class Bridge:
    """Links this process's hub to the others through Redis, in the format of
    ``@socket.io/redis-adapter`` v8.

    ::

        bridge = Bridge("redis://127.0.0.1:6379/0")
        hub = Hub(adapter_factory=bridge.adapter)      # or bridge.install(hub)
        async with trio.open_nursery() as root:
            await root.start(bridge.run)
            await root.start(hub.serve, host, port)

    ``healthy`` (and ``status``) tell whether Redis is reachable now; ``stats`` counts what
    happened, for ``/metrics``.
    """

    def __init__(
        self,
        url: str,
        *,
        key: str = wire.DEFAULT_KEY,
        request_timeout: float = 5.0,
        max_queue: int = 10_000,
        max_batch: int = 512,
        backoff: tuple[float, float] = (0.05, 5.0),
        health_interval: float = 5.0,
        health_timeout: float = 3.0,
        uid: str | None = None,
    ) -> None:
        self.url = url
        self.key = key
        self.request_timeout = request_timeout
        self.max_batch = max_batch
        self.backoff = backoff
        #: A Redis that stops answering (frozen, or a network cut without a reset) is noticed
        #: by a PING every ``health_interval`` s that must answer within ``health_timeout``
        #: s, and by publishes held up that long: either ends the connection (degraded).
        self.health_interval = health_interval
        self.health_timeout = health_timeout
        #: This node's id in the cluster (6 characters, as Node's adapter makes them).
        self.uid = uid or _uid(6)
        #: Whether Redis is reachable now; False means degraded (local delivery only).
        self.healthy = False
        #: Counters for ``/metrics``: published, publish_batches, publish_dropped,
        #: broadcasts_in, broadcasts_skipped, requests_in, requests_out, request_timeouts,
        #: bad_messages, connects, disconnects.
        self.stats: Counter[str] = Counter()
        self.adapters: dict[str, RedisAdapter] = {}
        self._send, self._queue = trio.open_memory_channel[tuple[str, bytes]](max_queue)
        self._channels: dict[str, tuple[RedisAdapter, bool]] = {}
        self._patterns: dict[str, RedisAdapter] = {}
        self._pending: dict[str, _Pending | _AckCollector] = {}
        self._handlers: dict[tuple[str, str], ServerSideHandler] = {}
        self._client: coredis.Redis[bytes] | None = None
        self._pubsub: Any = None
        self._connection: trio.Nursery | None = None
        self._tasks: trio.Nursery | None = None
        self._connected = trio.Event()

    # ---- installing ----------------------------------------------------------------------
    def adapter(self, nsp: Namespace, recovery: Any = None) -> RedisAdapter:
        """The adapter factory to give the hub: ``Hub(adapter_factory=bridge.adapter)``."""
        return RedisAdapter(nsp, recovery, bridge=self)

    def install(self, hub: Hub) -> None:
        """Make every namespace of ``hub`` (and those it creates later) use the bridge."""
        hub.adapter_factory = self.adapter
        for nsp in hub.namespaces.values():
            old = nsp.adapter
            if isinstance(old, RedisAdapter):
                continue
            new = self.adapter(nsp, old.recovery if hasattr(old, "recovery") else None)
            new.rooms, new.sids = old.rooms, old.sids
            nsp.adapter = new

    def register(self, adapter: RedisAdapter) -> None:
        """Called by each new adapter: its channels are subscribed now or on connection."""
        name = adapter.nsp.name
        self.adapters[name] = adapter
        channels = adapter.channels
        self._patterns[channels.pattern] = adapter
        self._channels[channels.request] = (adapter, True)
        self._channels[channels.response] = (adapter, False)
        self._channels[channels.response_for(self.uid)] = (adapter, False)
        if self._connection is not None and self._pubsub is not None:
            self._connection.start_soon(self._subscribe, self._pubsub, adapter)

    # ---- status --------------------------------------------------------------------------
    @property
    def status(self) -> str:
        """``ok`` when Redis is reachable, else ``degraded`` (this process works alone)."""
        return "ok" if self.healthy else "degraded"

    async def wait_connected(self) -> None:
        await self._connected.wait()

    # ---- running ---------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Stay connected until cancelled. Reports started after the first attempt, whether
        it succeeded or not: a node without Redis still serves its own clients."""
        started = False

        def report_started() -> None:
            nonlocal started
            if not started:
                started = True
                task_status.started()

        delay = self.backoff[0]
        async with trio.open_nursery() as tasks:
            self._tasks = tasks
            while True:
                # connecting and subscribing must be done within health_timeout
                connecting = trio.CancelScope(deadline=trio.current_time() + self.health_timeout)
                try:
                    with connecting:
                        async with coredis.Redis.from_url(
                            self.url, decode_responses=False, connect_timeout=self.health_timeout
                        ) as client:
                            await client.ping()
                            await self._connected_session(client, report_started, connecting)
                    if connecting.cancelled_caught:
                        log.info("Redis did not answer within %.1f s", self.health_timeout)
                except* _CONNECTION_ERRORS as group:
                    first = _leaf(group)
                    if trio.current_effective_deadline() == -math.inf:
                        pass  # shutting down: the connection was closed under us
                    elif self.healthy:
                        log.warning("Redis connection lost (%r): degraded", first)
                    else:
                        log.info("Redis not reachable (%r); retrying in %.2f s", first, delay)
                except* Exception:
                    # a bug of ours or of the client must not take the process down: this
                    # node goes on alone and tries again
                    self.stats["errors"] += 1
                    log.exception("the bridge failed; reconnecting")
                was_connected = self.healthy
                self._went_down()
                report_started()
                if was_connected:
                    delay = self.backoff[0]  # a fresh loss: try again soon
                await trio.sleep(delay * (0.75 + random.random() / 2))
                delay = min(delay * 2, self.backoff[1])

    async def _connected_session(
        self,
        client: coredis.Redis[bytes],
        report_started: Callable[[], None],
        connecting: trio.CancelScope,
    ) -> None:
        async with (
            client.pubsub(ignore_subscribe_messages=True, retry_policy=None) as pubsub,
            trio.open_nursery() as nursery,
        ):
            for adapter in list(self.adapters.values()):
                await self._subscribe(pubsub, adapter)
            connecting.deadline = math.inf
            self._client, self._pubsub, self._connection = client, pubsub, nursery
            self.healthy = True
            self._connected.set()
            self.stats["connects"] += 1
            log.info("bridge %s connected to Redis; %d namespaces", self.uid, len(self.adapters))
            nursery.start_soon(self._publisher, client)
            nursery.start_soon(self._reader, pubsub)
            nursery.start_soon(self._watchdog, client)
            report_started()

    def _went_down(self) -> None:
        if self.healthy:
            self.stats["disconnects"] += 1
        self.healthy = False
        self._connected = trio.Event()
        self._client = self._pubsub = self._connection = None
        # what was queued for a connection that is gone would arrive late, or never
        while True:
            try:
                self._queue.receive_nowait()
            except trio.WouldBlock:
                break
            self.stats["publish_dropped"] += 1
        for pending in self._pending.values():
            pending.done.set()

    async def _subscribe(self, pubsub: Any, adapter: RedisAdapter) -> None:
        channels = adapter.channels
        await pubsub.psubscribe(channels.pattern)
        await pubsub.subscribe(channels.request, channels.response, channels.response_for(self.uid))

    # ---- publishing ------------------------------------------------------------------------
    def publish(self, channel: str, body: bytes) -> None:
        """Queue one publish; never waits. Dropped (and counted) when degraded or full."""
        if not self.healthy:
            self.stats["publish_dropped"] += 1
            return
        try:
            self._send.send_nowait((channel, body))
        except trio.WouldBlock:
            self.stats["publish_dropped"] += 1

    async def _watchdog(self, client: coredis.Redis[bytes]) -> None:
        while True:
            await trio.sleep(self.health_interval)
            with trio.fail_after(self.health_timeout):
                await client.ping()

    async def _publisher(self, client: coredis.Redis[bytes]) -> None:
        queue = self._queue
        while True:
            batch = [await queue.receive()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(queue.receive_nowait())
                except trio.WouldBlock:
                    break
            with trio.fail_after(self.health_timeout):
                if len(batch) == 1:
                    await client.publish(*batch[0])
                else:
                    async with client.pipeline(transaction=False) as pipe:
                        for channel, body in batch:
                            pipe.publish(channel, body)
            self.stats["published"] += len(batch)
            self.stats["publish_batches"] += 1

    # ---- receiving -------------------------------------------------------------------------
    async def _reader(self, pubsub: Any) -> None:
        while True:
            message = await pubsub.get_message()
            if message is None:
                continue
            try:
                self._dispatch(message)
            except WireError as exc:
                self.stats["bad_messages"] += 1
                log.debug("ignoring a malformed message: %s", exc)
            except Exception:
                self.stats["bad_messages"] += 1
                log.exception("handling a message from Redis failed")

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        channel = _text(message.get("channel"))
        body = message.get("data")
        if not isinstance(body, bytes):
            return
        if kind == "pmessage":
            adapter = self._patterns.get(_text(message.get("pattern")))
            if adapter is not None:
                adapter.on_broadcast(channel, body)
            return
        if kind != "message":
            return
        entry = self._channels.get(channel)
        if entry is None:
            return
        adapter, is_request = entry
        if is_request:
            adapter.on_request(body)
        else:
            self._on_response(body)

    def _on_response(self, body: bytes) -> None:
        answer = wire.decode_response(body)
        pending = self._pending.get(str(answer.get("requestId")))
        if pending is not None:
            pending.add(answer)

    # ---- requests ----------------------------------------------------------------------------
    def new_request_id(self) -> str:
        return _uid(6)

    async def node_count(self, adapter: RedisAdapter) -> int:
        """Nodes subscribed to the namespace's request channel, this one included."""
        client = self._client
        if client is None or not self.healthy:
            return 1
        counts = await client.pubsub_numsub(adapter.channels.request)
        return sum(counts.values()) or 1

    async def ask(
        self, adapter: RedisAdapter, request: Request, timeout: float | None = None
    ) -> list[dict[str, Any]]:
        """Publish ``request`` and return the other nodes' answers: all of them, or what
        arrived when ``timeout`` (the bridge's ``request_timeout``) ran out."""
        if not self.healthy:
            return []
        try:
            others = await self.node_count(adapter) - 1
        except _CONNECTION_ERRORS:
            return []
        if others <= 0:
            return []
        request_id = request.request_id or self.new_request_id()
        request.request_id = request_id
        pending = self._pending[request_id] = _Pending(others)
        self.stats["requests_out"] += 1
        try:
            self.publish(adapter.channels.request, request.encode())
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

    def broadcast_with_ack(
        self, adapter: RedisAdapter, request: Request, timeout: float
    ) -> _AckCollector:
        """Publish a BROADCAST request now; count the nodes that must answer meanwhile."""
        collector = _AckCollector()
        request_id = request.request_id or self.new_request_id()
        request.request_id = request_id
        self._pending[request_id] = collector
        self.stats["requests_out"] += 1
        self.publish(adapter.channels.request, request.encode())

        async def count_then_forget() -> None:
            try:
                try:
                    collector.expect(await self.node_count(adapter) - 1)
                except _CONNECTION_ERRORS:
                    collector.expect(0)
                with trio.move_on_after(timeout):
                    await collector.done.wait()
            finally:
                self._pending.pop(request_id, None)

        self.spawn(count_then_forget)
        return collector

    # ---- server-side events --------------------------------------------------------------
    def on(self, event: str, handler: ServerSideHandler | None = None, *, nsp: str = "/") -> Any:
        """Register the handler of a server-side ``event`` sent by other nodes, directly or
        as a decorator. It receives the event's arguments; its return value (awaited if it
        is a coroutine) answers an emit that waits for acks."""

        def register(fn: ServerSideHandler) -> ServerSideHandler:
            self._handlers[(nsp, event)] = fn
            return fn

        return register(handler) if handler is not None else register

    def server_side_emit(self, event: str, *args: Any, nsp: str = "/") -> None:
        """Send ``event`` to the other nodes (not this one); never waits."""
        adapter = self._adapter_of(nsp)
        request = Request(RequestType.SERVER_SIDE_EMIT, self.uid, data=[event, *args])
        self.publish(adapter.channels.request, request.encode())

    async def server_side_emit_with_ack(
        self, event: str, *args: Any, nsp: str = "/", timeout: float | None = None
    ) -> list[Any]:
        """Send ``event`` to the other nodes and return their answers (one per node that
        answered within ``timeout``)."""
        adapter = self._adapter_of(nsp)
        request = Request(
            RequestType.SERVER_SIDE_EMIT, self.uid, self.new_request_id(), data=[event, *args]
        )
        answers = await self.ask(adapter, request, timeout)
        return [answer.get("data") for answer in answers]

    def _adapter_of(self, nsp: str) -> RedisAdapter:
        adapter = self.adapters.get(nsp)
        if adapter is None:
            raise LookupError(f"namespace {nsp!r} does not use this bridge")
        return adapter

    def on_server_side_emit(
        self, nsp: str, event: str, args: list[Any], reply: Callable[[Any], None] | None
    ) -> None:
        handler = self._handlers.get((nsp, event))
        if handler is None:
            return
        try:
            result = handler(*args)
        except Exception:
            log.exception("server-side handler of %r failed", event)
            return
        if inspect.isawaitable(result):
            self.spawn(_answer_later, result, reply)
        elif reply is not None:
            reply(result)

    # ---- tasks -----------------------------------------------------------------------------
    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run ``fn(*args)`` in the bridge's own nursery (work that may outlive a message)."""
        if self._tasks is None:
            raise RuntimeError("the bridge is not running")
        self._tasks.start_soon(_logged, fn, *args)


async def _logged(fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
    try:
        await fn(*args)
    except Exception:
        log.exception("bridge task %s failed", getattr(fn, "__name__", fn))


async def _answer_later(result: Awaitable[Any], reply: Callable[[Any], None] | None) -> None:
    value = await result
    if reply is not None:
        reply(value)


def _leaf(error: BaseException) -> BaseException:
    """The first error inside (nested) exception groups, for a readable log line."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value) if value is not None else ""
