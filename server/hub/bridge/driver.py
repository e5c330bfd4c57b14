"""The Redis driver: publish, subscribe with a callback, append to a stream and follow it,
keep keys, count the nodes. It knows channels, streams, keys and bytes, no adapter and no
wire format (socketioxide's ``Driver`` has this shape).

Task tree (the owner is whoever starts :meth:`RedisDriver.run`, normally the root nursery)::

    RedisDriver.run
    ├── tasks nursery: work that outlives one connection (see :meth:`spawn`)
    └── one connection at a time, reopened with backoff after a loss
        ├── coredis pub/sub (its own reader task)
        ├── publisher: takes everything queued, sends it as one pipeline
        ├── reader: hands each message to its channel's (or pattern's) callback
        ├── a follower per stream followed: ``XREAD BLOCK`` on a connection of its own,
        │   from the last entry read (so nothing written meanwhile is missed)
        └── watchdog: a PING every ``health_interval`` that must answer in time

Why this shape:

- A publish never waits: ``(channel, body)`` goes on a queue. One publisher drains it in
  batches (a pipeline per batch), because coredis's cost per command is high and a round
  trip per publish would be the bottleneck. Appends to a stream and writes of keys go on
  the same queue, in order with the publishes.
- An append names the id it wants (its writer told its clients that id already, before
  any round trip). A script adds each entry of a batch at that id, or, when the stream is
  already past it (another node wrote meanwhile), at the next id Redis gives, with the
  wanted one in a ``cid`` field; the id it got is reported back.
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
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

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
#: How often ``flush`` looks whether the queue is empty (a process about to exit waits on it).
FLUSH_POLL = 0.01
#: A follower's ``XREAD``: at most this many entries, blocking at most this long (Node's).
FOLLOW_COUNT = 100
FOLLOW_BLOCK_MS = 5000

#: ``callback(channel, body)`` for a message on a subscribed channel or pattern.
MessageCallback = Callable[[str, bytes], None]

T = TypeVar("T")

#: Adds each entry at the id asked for, or at the next one Redis gives (the one asked for
#: then goes in a ``cid`` field); an entry sent again after a lost connection is not added
#: twice. KEYS[1]: the stream. ARGV: MAXLEN, then per entry: the id wanted ("*": any),
#: 1 if it is sent again, the number of field-value pairs, the pairs.
APPEND_SCRIPT = """
local ids = {}
local i = 2
while i <= #ARGV do
  local wanted = ARGV[i]
  local again = ARGV[i + 1] == '1'
  local n = tonumber(ARGV[i + 2])
  local fields = {}
  for j = 1, n * 2 do fields[j] = ARGV[i + 2 + j] end
  i = i + 3 + n * 2
  local id = nil
  if again and wanted ~= '*' and #redis.call('XRANGE', KEYS[1], wanted, wanted) > 0 then
    id = wanted
  else
    id = redis.pcall('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], wanted, unpack(fields))
    if type(id) == 'table' then
      fields[#fields + 1] = 'cid'
      fields[#fields + 1] = wanted
      id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(fields))
    end
  end
  ids[#ids + 1] = id
end
return ids
"""


class StreamFollower(Protocol):
    """Who reads a stream: where it stopped, and what to do with what comes."""

    @property
    def position(self) -> str | None:
        """The id of the last entry read; None before the first connection."""

    def begin(self, top: str) -> None:
        """The first connection: the stream ends at ``top`` ("0-0": empty); read after it."""

    def entries(self, entries: Sequence[Any]) -> None:
        """Entries read, oldest first (coredis ``StreamEntry``: ``identifier``,
        ``field_values``)."""


@dataclass(slots=True)
class _Publish:
    channel: str
    body: bytes

    @property
    def size(self) -> int:
        return len(self.body)


@dataclass(slots=True)
class _Append:
    stream: str
    wanted: str
    fields: list[bytes]
    maxlen: int
    done: Callable[[str], None] | None
    again: bool = False
    size: int = field(default=0)

    def __post_init__(self) -> None:
        self.size = sum(len(f) for f in self.fields)


@dataclass(slots=True)
class _Store:
    """SET with an expiry, or DEL (``value`` None)."""

    key: str
    value: bytes | None
    expiry_ms: int

    @property
    def size(self) -> int:
        return len(self.value or b"") + len(self.key)


_Op = _Publish | _Append | _Store


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
        #: ``(operation, when)`` waiting to be sent, oldest first.
        self._queue: deque[tuple[_Op, float]] = deque()
        self._queue_bytes = 0
        #: The batch being written now: sent again if the connection breaks under it.
        self._inflight: list[tuple[_Op, float]] = []
        self._wakeup = trio.Event()
        self._channels: dict[str, MessageCallback] = {}
        self._patterns: dict[str, MessageCallback] = {}
        self._followers: dict[str, StreamFollower] = {}
        #: Subscription changes for the connection, applied in order by one task.
        self._changes: deque[tuple[Any, Sequence[str], Sequence[str]]] = deque()
        self._changing = False
        self._append_sha: str | None = None
        #: Milliseconds to add to this host's clock to get Redis's (measured on connecting).
        self.clock_skew_ms = 0.0
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

    def unsubscribe(self, channel: str) -> None:
        """Stop listening on ``channel`` (see :meth:`subscribe`)."""
        if self._channels.pop(channel, None) is not None:
            self._later(self._unsubscribe, [channel], [])

    def punsubscribe(self, pattern: str) -> None:
        """Stop listening on the channels of ``pattern`` (see :meth:`psubscribe`)."""
        if self._patterns.pop(pattern, None) is not None:
            self._later(self._unsubscribe, [], [pattern])

    def follow(self, stream: str, follower: StreamFollower) -> None:
        """Read every entry appended to ``stream`` (by any node) from now on, in order."""
        self._followers[stream] = follower
        if self._connection is not None:
            self._connection.start_soon(self._follow, stream, follower)

    def on_down(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` each time the connection to Redis is lost."""
        self._on_down.append(callback)

    def off_down(self, callback: Callable[[], None]) -> None:
        if callback in self._on_down:
            self._on_down.remove(callback)

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
        self._later(self._subscribe, channels, patterns)

    def _later(
        self,
        change: Callable[[Any, Sequence[str], Sequence[str]], Awaitable[None]],
        channels: Sequence[str],
        patterns: Sequence[str],
    ) -> None:
        """Change the subscriptions of the connection, if there is one now (the next one
        subscribes to what is registered then); one task applies the changes in order, so an
        unsubscribe and a subscribe of one channel never swap."""
        if self._connection is None or self._pubsub is None:
            return
        self._changes.append((change, channels, patterns))
        if not self._changing:
            self._changing = True
            self._connection.start_soon(self._apply_changes, self._pubsub)

    async def _apply_changes(self, pubsub: Any) -> None:
        try:
            while self._changes:
                change, channels, patterns = self._changes.popleft()
                await change(pubsub, channels, patterns)
        finally:
            self._changing = False

    @staticmethod
    async def _subscribe(pubsub: Any, channels: Sequence[str], patterns: Sequence[str]) -> None:
        if patterns:
            await pubsub.psubscribe(*patterns)
        if channels:
            await pubsub.subscribe(*channels)

    @staticmethod
    async def _unsubscribe(pubsub: Any, channels: Sequence[str], patterns: Sequence[str]) -> None:
        for change, names in ((pubsub.punsubscribe, patterns), (pubsub.unsubscribe, channels)):
            if names:
                await change(*names)

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
                    elif not started:
                        log.warning(
                            "Redis at %s is not reachable (%r): serving this process's "
                            "clients alone until it is; retrying",
                            shown_url(self.url),
                            first,
                        )
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
            if self._followers:
                self._append_sha = (await client.script_load(APPEND_SCRIPT)).decode()
                await self._measure_clock(client)
            connecting.deadline = math.inf
            self._client, self._pubsub, self._connection = client, pubsub, nursery
            nursery.start_soon(self._reader, pubsub)
            nursery.start_soon(self._watchdog, client)
            for stream, follower in self._followers.items():
                nursery.start_soon(self._follow, stream, follower)
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
        self._changes.clear()  # the next connection subscribes to what is registered then
        # the batch the connection broke under may not have reached Redis: again, first
        if self._inflight:
            self.stats["publish_resent"] += len(self._inflight)
            for op, _ in self._inflight:
                if isinstance(op, _Append):
                    op.again = True  # it may be in the stream already: not twice
            self._queue.extendleft(reversed(self._inflight))
            self._queue_bytes += sum(op.size for op, _ in self._inflight)
            self._inflight = []
        for callback in self._on_down:
            callback()

    # ---- publishing ------------------------------------------------------------------------
    def publish(self, channel: str, body: bytes) -> None:
        """Queue one publish; never waits. While degraded it is kept for when Redis is back
        (see the module's documentation); past the queue's bounds the oldest is dropped."""
        self._enqueue(_Publish(channel, body))

    def append(
        self,
        stream: str,
        wanted: str,
        fields: list[bytes],
        *,
        maxlen: int,
        done: Callable[[str], None] | None = None,
    ) -> None:
        """Queue an entry for ``stream`` (``fields``: flat field-value pairs), at the id
        ``wanted`` if the stream is not past it yet ("*": any); ``done(id)`` is told the id
        it got. Never waits; kept while degraded, as a publish is."""
        self._enqueue(_Append(stream, wanted, fields, maxlen, done))

    def store(self, key: str, value: bytes | None, *, expiry: float) -> None:
        """Queue ``SET key value PX expiry`` (``value`` None: ``DEL key``); never waits."""
        self._enqueue(_Store(key, value, max(1, round(expiry * 1000))))

    def _enqueue(self, op: _Op) -> None:
        now = trio.current_time()
        self._queue.append((op, now))
        self._queue_bytes += op.size
        if not self.healthy:
            self.stats["publish_kept"] += 1
        self._trim(now)
        self._wakeup.set()

    async def flush(self, timeout: float) -> bool:
        """Wait, at most ``timeout`` s, until what is queued has been written; False if it
        has not (Redis is down, or slow). For a process about to exit: a session saved by
        its last disconnects, or an outage's backlog, is not thrown away with the process."""
        with trio.move_on_after(timeout):
            while self._queue or self._inflight:
                if not self.healthy:
                    return False
                await trio.sleep(FLUSH_POLL)
            return True
        return False

    async def call(self, command: Callable[[coredis.Redis[bytes]], Awaitable[T]]) -> T:
        """Run ``command(client)`` now, within ``health_timeout``; raises ConnectionError
        while degraded (and what coredis raises when Redis fails meanwhile)."""
        client = self._client
        if client is None or not self.healthy:
            raise ConnectionError("Redis is not reachable")
        with trio.fail_after(self.health_timeout):
            return await command(client)

    def redis_time_ms(self) -> int:
        """Redis's clock now, as this host's clock and the skew measured say."""
        return int(time.time() * 1000 + self.clock_skew_ms)

    async def _measure_clock(self, client: coredis.Redis[bytes]) -> None:
        before = time.time()
        reply: Any = await client.eval("return redis.call('TIME')")
        after = time.time()
        redis_ms = int(reply[0]) * 1000 + int(reply[1]) / 1000
        self.clock_skew_ms = redis_ms - (before + after) * 500

    def _trim(self, now: float) -> None:
        queue = self._queue
        oldest = now - self.max_queue_age
        while queue and (
            len(queue) > self.max_queue
            or self._queue_bytes > self.max_queue_bytes
            or queue[0][1] < oldest
        ):
            op, _ = queue.popleft()
            self._queue_bytes -= op.size
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
                self._queue_bytes -= entry[0].size
                batch.append(entry)
            if not batch:
                continue
            with trio.fail_after(self.health_timeout):
                if len(batch) == 1 and isinstance(batch[0][0], _Publish):
                    await client.publish(batch[0][0].channel, batch[0][0].body)
                else:
                    await self._send(client, [op for op, _ in batch])
            self._inflight = []
            self.stats["published"] += len(batch)
            self.stats["publish_batches"] += 1

    async def _send(self, client: coredis.Redis[bytes], ops: list[_Op]) -> None:
        """One pipeline: each run of appends to one stream is one call of the script."""
        runs: list[tuple[list[_Append], Any]] = []
        async with client.pipeline(transaction=False) as pipe:
            at = 0
            while at < len(ops):
                op = ops[at]
                if isinstance(op, _Publish):
                    pipe.publish(op.channel, op.body)
                elif isinstance(op, _Store):
                    if op.value is None:
                        pipe.delete([op.key])
                    else:
                        pipe.set(op.key, op.value, px=op.expiry_ms)
                else:
                    run = [op]
                    while (
                        at + 1 < len(ops)
                        and isinstance(ops[at + 1], _Append)
                        and ops[at + 1].stream == op.stream  # type: ignore[union-attr]
                    ):
                        at += 1
                        run.append(ops[at])  # type: ignore[arg-type]
                    args: list[Any] = [op.maxlen]
                    for item in run:
                        args += [item.wanted, "1" if item.again else "0", len(item.fields) // 2]
                        args += item.fields
                    assert self._append_sha is not None, "follow() the stream first"
                    runs.append((run, pipe.evalsha(self._append_sha, keys=[op.stream], args=args)))
                at += 1
        for run, reply in runs:
            ids = await reply
            for item, got in zip(run, ids, strict=False):
                if item.done is not None:
                    item.done(got.decode() if isinstance(got, bytes) else str(got))

    # ---- receiving -------------------------------------------------------------------------
    async def _follow(self, stream: str, follower: StreamFollower) -> None:
        """``XREAD BLOCK`` on a connection of its own, from where the follower stopped."""
        async with coredis.Redis.from_url(
            self.url, decode_responses=False, connect_timeout=self.health_timeout
        ) as client:
            last = follower.position
            if last is None:
                top = await client.xrevrange(stream, count=1)
                last = _text(top[0].identifier) if top else "0-0"
                follower.begin(last)
            key = stream.encode()
            while True:
                result = await client.xread(
                    {stream: last}, count=FOLLOW_COUNT, block=FOLLOW_BLOCK_MS
                )
                entries = (result or {}).get(key)
                if not entries:
                    continue
                last = _text(entries[-1].identifier)
                try:
                    follower.entries(entries)
                except Exception:
                    self.stats["bad_messages"] += 1
                    log.exception("handling entries of stream %s failed", stream)

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


def shown_url(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***`` (for the logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _leaf(error: BaseException) -> BaseException:
    """The first error inside (nested) exception groups, for a readable log line."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value) if value is not None else ""
