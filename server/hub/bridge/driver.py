"""The Redis driver: publish, subscribe with a callback, count the nodes. It knows channels
and bytes, no adapter and no wire format (socketioxide's ``Driver`` has this shape).

Task tree (the owner is whoever starts :meth:`RedisDriver.run`, normally the root nursery)::

    RedisDriver.run
    ├── tasks nursery: work that outlives one connection (see :meth:`spawn`)
    └── one connection at a time, reopened with backoff after a loss
        ├── coredis pub/sub (its own reader task)
        ├── publisher: takes everything queued, sends it as one pipeline
        ├── reader: hands each message to its channel's (or pattern's) callback
        └── watchdog: a PING every ``health_interval`` that must answer in time

Why this shape:

- A publish never waits: ``(channel, body)`` goes on a queue. One publisher drains it in
  batches (a pipeline per batch), because coredis's cost per command is high and a round
  trip per publish would be the bottleneck.
- While Redis is down the driver is *degraded*, and nothing published is lost: the queue
  keeps what is published meanwhile (bounded by bytes, by count and by age; past a bound
  the oldest is dropped and counted), and the publisher sends it, in order, once Redis is
  back, before anything newer, and only once the other nodes are subscribed again (as many
  as before the loss, or ``settle_timeout`` at most): published before they are, it would
  reach no one. A batch that was being written when the connection broke is sent again (so
  a message of that batch may arrive twice; none is lost). The ``on_down``
  callbacks run (requests waiting for answers give up at once, with this node's part). The
  run loop reconnects with exponential backoff and subscribes again to everything.
- A Redis that stops answering without closing the connection (frozen, or a network cut) is
  noticed by the watchdog, or by a publish held up for ``health_timeout``.
"""

from __future__ import annotations

import logging
import math
import random
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio
import coredis
import coredis.exceptions
import trio

log = logging.getLogger("hub.bridge")

#: What a lost or refused Redis connection raises. coredis's pub/sub may also raise
#: anyio's ClosedResourceError when its connection is torn down under it.
CONNECTION_ERRORS = (
    coredis.exceptions.RedisError,
    OSError,
    TimeoutError,
    trio.TooSlowError,
    anyio.ClosedResourceError,
    anyio.BrokenResourceError,
)

#: Seconds between two counts of the nodes subscribed with us.
PEER_WATCH_INTERVAL = 1.0

#: ``callback(channel, body)`` for a message on a subscribed channel or pattern.
MessageCallback = Callable[[str, bytes], None]


class RedisDriver:
    def __init__(
        self,
        url: str,
        *,
        max_queue: int = 100_000,
        max_queue_bytes: int = 16 * 1024 * 1024,
        max_queue_age: float = 60.0,
        max_batch: int = 512,
        backoff: tuple[float, float] = (0.05, 5.0),
        health_interval: float = 5.0,
        health_timeout: float = 3.0,
        settle_timeout: float = 5.0,
        stats: Counter[str] | None = None,
    ) -> None:
        self.url = url
        #: After a loss, how long a backlog waits for the other nodes to be back.
        self.settle_timeout = settle_timeout
        #: Nodes subscribed with us, as last seen (this one included).
        self.peers = 0
        self._on_peers: list[Callable[[int, int], None]] = []
        #: What may wait to be published (an outage's worth): count, bytes, seconds.
        self.max_queue = max_queue
        self.max_queue_bytes = max_queue_bytes
        self.max_queue_age = max_queue_age
        self.max_batch = max_batch
        self.backoff = backoff
        self.health_interval = health_interval
        self.health_timeout = health_timeout
        #: Whether Redis is reachable now; False means degraded.
        self.healthy = False
        #: connects, disconnects, published, publish_batches, publish_dropped (past a bound
        #: of the queue), publish_kept (published while degraded, kept for later),
        #: publish_resent, bad_messages, errors.
        self.stats: Counter[str] = stats if stats is not None else Counter()
        #: ``(channel, body, when)`` waiting to be published, oldest first.
        self._queue: deque[tuple[str, bytes, float]] = deque()
        self._queue_bytes = 0
        #: The batch being written now: sent again if the connection breaks under it.
        self._inflight: list[tuple[str, bytes, float]] = []
        self._wakeup = trio.Event()
        self._channels: dict[str, MessageCallback] = {}
        self._patterns: dict[str, MessageCallback] = {}
        self._on_down: list[Callable[[], None]] = []
        self._client: coredis.Redis[bytes] | None = None
        self._pubsub: Any = None
        self._connection: trio.Nursery | None = None
        self._tasks: trio.Nursery | None = None
        self._connected = trio.Event()

    # ---- subscribing -----------------------------------------------------------------------
    def subscribe(self, channel: str, callback: MessageCallback) -> None:
        """Call ``callback`` for every message on ``channel`` (now, or once connected)."""
        self._channels[channel] = callback
        self._resubscribe(channels=[channel])

    def psubscribe(self, pattern: str, callback: MessageCallback) -> None:
        """Call ``callback`` for every message on a channel matching ``pattern``."""
        self._patterns[pattern] = callback
        self._resubscribe(patterns=[pattern])

    def on_down(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` each time the connection to Redis is lost."""
        self._on_down.append(callback)

    def on_peers(self, callback: Callable[[int, int], None]) -> None:
        """Call ``callback(before, now)`` when the count of nodes listening with us changes
        (a node that dies leaves Redis's subscribers at once)."""
        self._on_peers.append(callback)

    def _count_is(self, count: int) -> None:
        before, self.peers = self.peers, count
        if count != before:
            for callback in self._on_peers:
                callback(before, count)

    def _resubscribe(self, channels: Sequence[str] = (), patterns: Sequence[str] = ()) -> None:
        if self._connection is not None and self._pubsub is not None:
            self._connection.start_soon(self._subscribe, self._pubsub, channels, patterns)

    @staticmethod
    async def _subscribe(pubsub: Any, channels: Sequence[str], patterns: Sequence[str]) -> None:
        if patterns:
            await pubsub.psubscribe(*patterns)
        if channels:
            await pubsub.subscribe(*channels)

    # ---- status ------------------------------------------------------------------------------
    async def wait_connected(self) -> None:
        await self._connected.wait()

    async def node_count(self, channel: str) -> int:
        """Subscribers of ``channel`` (every node subscribes once), at least 1: this one."""
        client = self._client
        if client is None or not self.healthy:
            return 1
        counts = await client.pubsub_numsub(channel)
        return sum(counts.values()) or 1

    # ---- running -------------------------------------------------------------------------------
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
                except* CONNECTION_ERRORS as group:
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
            await self._subscribe(pubsub, list(self._channels), list(self._patterns))
            connecting.deadline = math.inf
            self._client, self._pubsub, self._connection = client, pubsub, nursery
            nursery.start_soon(self._reader, pubsub)
            nursery.start_soon(self._watchdog, client)
            if self._queue and self.peers > 1:
                # a backlog is for the other nodes: not before they listen again
                with trio.move_on_after(self.settle_timeout):
                    # polled: Redis tells of no subscriber coming back
                    while await self._count_peers(client) < self.peers:  # noqa: ASYNC110
                        await trio.sleep(0.05)
            self._count_is(await self._count_peers(client))
            self.healthy = True
            self._connected.set()
            self.stats["connects"] += 1
            log.info("connected to Redis: %d channels", len(self._channels) + len(self._patterns))
            nursery.start_soon(self._publisher, client)
            nursery.start_soon(self._peer_watch, client)
            report_started()

    async def _count_peers(self, client: coredis.Redis[bytes]) -> int:
        """The nodes subscribed to the channels we are (each channel every node listens to
        counts them all; the most of any)."""
        if not self._channels:
            return 0
        counts = await client.pubsub_numsub(*self._channels)
        return max(counts.values(), default=0)

    def _went_down(self) -> None:
        if self.healthy:
            self.stats["disconnects"] += 1
        self.healthy = False
        self._connected = trio.Event()
        self._client = self._pubsub = self._connection = None
        # the batch the connection broke under may not have reached Redis: again, first
        if self._inflight:
            self.stats["publish_resent"] += len(self._inflight)
            self._queue.extendleft(reversed(self._inflight))
            self._queue_bytes += sum(len(body) for _, body, _ in self._inflight)
            self._inflight = []
        for callback in self._on_down:
            callback()

    # ---- publishing ------------------------------------------------------------------------
    def publish(self, channel: str, body: bytes) -> None:
        """Queue one publish; never waits. While degraded it is kept for when Redis is back
        (see the module's documentation); past the queue's bounds the oldest is dropped."""
        now = trio.current_time()
        self._queue.append((channel, body, now))
        self._queue_bytes += len(body)
        if not self.healthy:
            self.stats["publish_kept"] += 1
        self._trim(now)
        self._wakeup.set()

    def _trim(self, now: float) -> None:
        queue = self._queue
        oldest = now - self.max_queue_age
        while queue and (
            len(queue) > self.max_queue
            or self._queue_bytes > self.max_queue_bytes
            or queue[0][2] < oldest
        ):
            _, body, _ = queue.popleft()
            self._queue_bytes -= len(body)
            self.stats["publish_dropped"] += 1

    @property
    def backlog(self) -> tuple[int, int]:
        """Publishes waiting (an outage's, while degraded): how many, and their bytes."""
        return len(self._queue), self._queue_bytes

    async def _watchdog(self, client: coredis.Redis[bytes]) -> None:
        while True:
            await trio.sleep(self.health_interval)
            with trio.fail_after(self.health_timeout):
                await client.ping()

    async def _peer_watch(self, client: coredis.Redis[bytes]) -> None:
        """How many nodes listen with us, once a second: what a backlog waits for after a
        loss (a node that is gone lowers it within a second)."""
        while True:
            await trio.sleep(PEER_WATCH_INTERVAL)
            with trio.fail_after(self.health_timeout):
                self._count_is(await self._count_peers(client))

    async def _publisher(self, client: coredis.Redis[bytes]) -> None:
        queue = self._queue
        while True:
            while not queue:
                self._wakeup = trio.Event()
                await self._wakeup.wait()
            self._trim(trio.current_time())  # what waited past its age goes now
            batch = self._inflight = []
            while queue and len(batch) < self.max_batch:
                entry = queue.popleft()
                self._queue_bytes -= len(entry[1])
                batch.append(entry)
            if not batch:
                continue
            with trio.fail_after(self.health_timeout):
                if len(batch) == 1:
                    await client.publish(*batch[0][:2])
                else:
                    async with client.pipeline(transaction=False) as pipe:
                        for channel, body, _ in batch:
                            pipe.publish(channel, body)
            self._inflight = []
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
            except Exception:
                # a callback's own failure (it counts what it could not read itself)
                self.stats["bad_messages"] += 1
                log.exception("handling a message from Redis failed")

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        channel = _text(message.get("channel"))
        body = message.get("data")
        if not isinstance(body, bytes):
            return
        if kind == "pmessage":
            callback = self._patterns.get(_text(message.get("pattern")))
        elif kind == "message":
            callback = self._channels.get(channel)
        else:
            return
        if callback is not None:
            callback(channel, body)

    # ---- tasks -----------------------------------------------------------------------------
    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run ``fn(*args)`` in the driver's own nursery (work that may outlive a message)."""
        if self._tasks is None:
            raise RuntimeError("the bridge is not running")
        self._tasks.start_soon(_logged, fn, *args)


async def _logged(fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
    try:
        await fn(*args)
    except Exception:
        log.exception("bridge task %s failed", getattr(fn, "__name__", fn))


def _leaf(error: BaseException) -> BaseException:
    """The first error inside (nested) exception groups, for a readable log line."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value) if value is not None else ""
