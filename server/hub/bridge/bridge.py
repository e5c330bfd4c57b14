"""The bridge between processes: a Redis driver, and the cluster adapter of each namespace.

::

    bridge = Bridge("redis://127.0.0.1:6379/0")
    hub = Hub(adapter_factory=bridge.adapter)      # the one way to install it
    async with trio.open_nursery() as root:
        await root.start(bridge.run)
        await root.start(hub.serve, host, port)

Every namespace of the hub then has a cluster adapter (around a local one) on the bridge's
one :class:`~server.hub.bridge.driver.RedisDriver` (its connection, publish queue and
subscriptions). Two modes, as Node has two adapters: ``pubsub`` (the default), a
:class:`~server.hub.bridge.adapter.RedisAdapter` in the format of
``@socket.io/redis-adapter``; ``streams``, a
:class:`~server.hub.bridge.streams_adapter.StreamsAdapter` in the format of
``@socket.io/redis-streams-adapter``, whose connection state recovery works across nodes
(its sessions and packets are in Redis). While Redis is down the bridge is
*degraded*: local delivery goes on, what goes to other nodes is kept (bounded by bytes,
count and age) and sent in order once Redis is back, requests answer with this node's part
only; it reconnects by itself.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import trio

from server.hub.adapter import SocketEmitter
from server.hub.bridge import streams, wire
from server.hub.bridge.adapter import RedisAdapter, new_uid
from server.hub.bridge.driver import RedisDriver
from server.hub.bridge.streams_adapter import StreamLog, StreamsAdapter, new_node_uid
from server.hub.namespace import Namespace
from server.hub.recovery import RecoveryStore

#: The two wire formats: Node's ``@socket.io/redis-adapter`` and its streams adapter.
MODES = ("pubsub", "streams")


class Bridge:
    """Links this process's hub to the others through Redis, in the format of
    ``@socket.io/redis-adapter`` v8 (``mode="pubsub"``) or of
    ``@socket.io/redis-streams-adapter`` 0.3 (``mode="streams"``).

    ``healthy`` (and ``status``) tell whether Redis is reachable now; ``stats`` counts what
    happened, for ``/metrics``.
    """

    def __init__(
        self,
        url: str,
        *,
        mode: str = "pubsub",
        key: str = wire.DEFAULT_KEY,
        stream: str = streams.DEFAULT_STREAM,
        stream_maxlen: int = streams.DEFAULT_MAXLEN,
        request_timeout: float = 5.0,
        max_queue: int = 100_000,
        max_queue_bytes: int = 16 * 1024 * 1024,
        max_queue_age: float = 60.0,
        max_batch: int = 512,
        backoff: tuple[float, float] = (0.05, 5.0),
        health_interval: float = 5.0,
        health_timeout: float = 3.0,
        uid: str | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"bridge mode {mode!r}: one of {', '.join(MODES)}")
        self.url = url
        #: The wire format: ``pubsub`` or ``streams``.
        self.mode = mode
        self.key = key
        self.request_timeout = request_timeout
        #: This node's id in the cluster (as the mode's Node adapter makes them).
        self.uid = uid or (new_node_uid() if mode == "streams" else new_uid(6))
        #: Counters for ``/metrics``: published, publish_batches, publish_dropped,
        #: publish_kept, publish_resent, broadcasts_in, broadcasts_skipped, requests_in,
        #: requests_out, request_timeouts, bad_messages, connects, disconnects (the
        #: driver's and every adapter's).
        self.stats: Counter[str] = Counter()
        #: A Redis that stops answering (frozen, or a network cut without a reset) is noticed
        #: by a PING every ``health_interval`` s that must answer within ``health_timeout``
        #: s, and by publishes held up that long: either ends the connection (degraded).
        self.driver = RedisDriver(
            url,
            max_queue=max_queue,
            max_queue_bytes=max_queue_bytes,
            max_queue_age=max_queue_age,
            max_batch=max_batch,
            backoff=backoff,
            health_interval=health_interval,
            health_timeout=health_timeout,
            stats=self.stats,
        )
        self.adapters: dict[str, RedisAdapter | StreamsAdapter] = {}
        self._namespaces: dict[str, Namespace] = {}
        #: Streams mode: the stream as this node follows it.
        self.log = (
            StreamLog(self.driver, self.uid, stream=stream, maxlen=stream_maxlen, stats=self.stats)
            if mode == "streams"
            else None
        )

    def adapter(
        self, emitter: SocketEmitter, recovery: RecoveryStore | None
    ) -> RedisAdapter | StreamsAdapter:
        """The adapter factory to give the hub: ``Hub(adapter_factory=bridge.adapter)``."""
        adapter: RedisAdapter | StreamsAdapter
        if self.log is not None:
            adapter = StreamsAdapter(
                emitter,
                recovery,
                log=self.log,
                prefix=self.key,
                request_timeout=self.request_timeout,
                stats=self.stats,
                on_close=self._closed,
            )
        else:
            adapter = RedisAdapter(
                emitter,
                recovery,
                driver=self.driver,
                uid=self.uid,
                key=self.key,
                request_timeout=self.request_timeout,
                stats=self.stats,
                on_close=self._closed,
            )
        self.adapters[emitter.name] = adapter
        if isinstance(emitter, Namespace):
            self._namespaces[emitter.name] = emitter
        return adapter

    def _closed(self, adapter: RedisAdapter | StreamsAdapter) -> None:
        name = adapter.emitter.name
        if self.adapters.get(name) is adapter:
            del self.adapters[name]
            self._namespaces.pop(name, None)

    # ---- status --------------------------------------------------------------------------
    @property
    def healthy(self) -> bool:
        """Whether Redis is reachable now; False means degraded (local delivery only)."""
        return self.driver.healthy

    @property
    def status(self) -> str:
        """``ok`` when Redis is reachable, else ``degraded`` (this process works alone)."""
        return "ok" if self.healthy else "degraded"

    @property
    def nodes(self) -> int:
        """Nodes of the cluster as last counted (this one included; 0 while degraded)."""
        return self.driver.peers if self.healthy else 0

    @property
    def backlog(self) -> tuple[int, int]:
        """Publishes waiting to go out (an outage's, while degraded): count and bytes."""
        return self.driver.backlog

    def on_nodes_lost(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when the cluster has fewer nodes than a moment ago (one died,
        or stopped): presence may need healing."""

        def changed(before: int, now: int) -> None:
            if 0 < now < before:
                callback()

        self.driver.on_peers(changed)

    async def wait_connected(self) -> None:
        await self.driver.wait_connected()

    async def flush(self, timeout: float) -> bool:
        """Write what is still queued (sessions saved by the last disconnects, a backlog)
        before the process exits; at most ``timeout`` s. False if some of it is not written."""
        return await self.driver.flush(timeout)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Stay connected until cancelled (see :meth:`RedisDriver.run`); in streams mode,
        write the sessions of connected sockets again every so often."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.driver.run)
            if self.log is not None:
                nursery.start_soon(self._refresh_sessions)
            task_status.started()

    async def _refresh_sessions(self) -> None:
        while True:
            recoveries = [
                a.recovery
                for a in self.adapters.values()
                if isinstance(a, StreamsAdapter) and a.recovery is not None
            ]
            interval = min((r.refresh for r in recoveries), default=5.0)
            await trio.sleep(interval)
            for recovery in recoveries:
                recovery.refresh_all()

    # ---- server-side events (the namespaces' API, by namespace name) ---------------------
    def on(self, event: str, handler: Any = None, *, nsp: str = "/") -> Any:
        """``namespace.on_server_side(event)`` of the namespace ``nsp`` on this bridge."""
        return self._namespace(nsp).on_server_side(event, handler)

    def server_side_emit(self, event: str, *args: Any, nsp: str = "/") -> None:
        """Send ``event`` to the other nodes (not this one); never waits."""
        self._namespace(nsp).server_side_emit(event, *args)

    async def server_side_emit_with_ack(
        self, event: str, *args: Any, nsp: str = "/", timeout: float | None = None
    ) -> list[Any]:
        """Send ``event`` to the other nodes and return their answers (one per node that
        answered within ``timeout``, the request timeout by default)."""
        limit = timeout if timeout is not None else self.request_timeout
        return await self._namespace(nsp).server_side_emit_with_ack(event, *args, timeout=limit)

    def _namespace(self, name: str) -> Namespace:
        nsp = self._namespaces.get(name)
        if nsp is None:
            raise LookupError(f"namespace {name!r} does not use this bridge")
        return nsp
