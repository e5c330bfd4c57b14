"""``GET /metrics`` (Prometheus text format, through ``prometheus-client``) and ``GET /healthz``.

The counts live in the hub, the engine, the real-time service, the store and the bridge, which
count as they go without knowing about Prometheus. Each app gets a ``CollectorRegistry`` of its
own (several apps may live in one process: the tests make many) whose collectors read those
counts when ``/metrics`` is asked for, with the standard ``process_*`` and ``python_*``
metrics of this process after them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

import trio
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry
from quart import Blueprint, Response, jsonify

from server.hub import Hub
from server.hub.bridge import Bridge
from server.realtime import Realtime

#: (method, route, status) -> requests served; filled by the app's after_request hook.
HttpCounts = Counter[tuple[str, str, int]]


def _gauge(name: str, help: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help, value=value)


def _counter(name: str, help: str, value: float) -> CounterMetricFamily:
    # a family named x_total is exposed as x_total: prometheus-client keeps the suffix apart
    return CounterMetricFamily(name, help, value=value)


def _labelled(
    family: CounterMetricFamily | GaugeMetricFamily, samples: Iterable[tuple[str, float]]
) -> CounterMetricFamily | GaugeMetricFamily:
    for label, value in samples:
        family.add_metric([label], value)
    return family


class HubCollector(Collector):
    """The hub's and the engine's counters (and the real-time service's handler errors)."""

    def __init__(self, hub: Hub, realtime: Realtime | None) -> None:
        self.hub = hub
        self.realtime = realtime

    def collect(self) -> Iterator[Metric]:
        hub, realtime = self.hub, self.realtime
        totals = hub.engine.totals()
        stats = hub.stats
        handler_errors = stats["handler_errors"] + (
            realtime.stats["handler_errors"] if realtime else 0
        )
        yield _gauge("hub_connected_clients", "Engine.IO connections open now.", hub.client_count)
        yield _counter(
            "hub_packets_in_total", "Messages received from clients.", stats["packets_in"]
        )
        yield _counter(
            "hub_packets_out_total",
            "Messages queued or written to clients (one per recipient).",
            totals["packets_out"],
        )
        yield _labelled(
            CounterMetricFamily(
                "hub_fast_path_packets_total",
                "Packets written to idle WebSockets without a writer task: at once (direct), "
                "or gathered with the others of one tick into one write (gathered).",
                labels=["how"],
            ),
            [("direct", totals["fast_path_direct"]), ("gathered", totals["fast_path_gathered"])],
        )
        yield _counter(
            "hub_gathered_writes_total",
            "System calls that wrote gathered packets (one per connection per busy tick).",
            totals["fast_path_flushes"],
        )
        yield _counter(
            "hub_volatile_dropped_total",
            "Volatile packets dropped because a client's queue was full.",
            totals["dropped_volatile"],
        )
        yield _counter(
            "hub_slow_consumer_closes_total",
            "Connections closed because their outbound queue was full.",
            totals["slow_consumer_closes"],
        )
        yield _counter(
            "hub_parse_errors_total",
            "Malformed packets (connection closed).",
            stats["parse_errors"],
        )
        yield _counter("hub_handler_errors_total", "Event handlers that failed.", handler_errors)
        yield _counter(
            "hub_connection_errors_total",
            "Connections ended by an unexpected error in their reader, writer, poll or tasks.",
            totals["connection_errors"],
        )
        yield _counter(
            "hub_request_timeouts_total",
            "HTTP requests whose headers or body did not arrive in time (408, closed).",
            totals["request_timeouts"],
        )
        yield _gauge(
            "hub_handshaking_connections",
            "Connections open now that have not completed a request yet.",
            hub.engine.handshaking,
        )
        yield _labelled(
            CounterMetricFamily(
                "hub_connections_refused_total",
                "Connections still handshaking answered 503 to make room for newer ones.",
                labels=["limit"],
            ),
            [
                ("per_address", totals["refused_handshaking_per_address"]),
                ("total", totals["refused_handshaking_total"]),
            ],
        )
        yield _gauge(
            "hub_unjoined_connections",
            "Connections open now that have not joined a namespace (sent CONNECT) yet.",
            hub.connect_deadlines.waiting,
        )
        yield _counter(
            "hub_unjoined_closed_total",
            "Connections that had not joined a namespace, closed to make room for newer ones.",
            hub.connect_deadlines.evicted,
        )
        yield _counter(
            "hub_events_refused_total",
            "Incoming events refused by a middleware (a rate limit, say).",
            stats["events_refused"],
        )


class RealtimeCollector(Collector):
    """The real-time service's counters, and its store's health and latency."""

    def __init__(self, realtime: Realtime) -> None:
        self.realtime = realtime

    def collect(self) -> Iterator[Metric]:
        realtime = self.realtime
        rooms = realtime.room_users()
        yield _gauge(
            "realtime_project_rooms", "Project rooms with sockets in this process.", len(rooms)
        )
        yield _labelled(
            GaugeMetricFamily(
                "realtime_project_room_users",
                "Users (not sockets) in each project room, in this process.",
                labels=["project"],
            ),
            [(str(pid), users) for pid, users in rooms.items()],
        )
        yield _counter(
            "realtime_auth_refused_total",
            "Connections refused at the handshake (missing or invalid token).",
            realtime.stats["auth_refused"],
        )
        yield _counter(
            "realtime_chat_messages_total",
            "Chat messages stored and sent.",
            realtime.stats["messages"],
        )
        yield _labelled(
            CounterMetricFamily(
                "realtime_membership_checks_total",
                "Membership checks (joins, REST), by how they were answered: remembered, or "
                "by the store.",
                labels=["how"],
            ),
            [("remembered", realtime.access.hits), ("store", realtime.access.queries)],
        )
        limited = Counter[str]()
        for limiter in (realtime.limiter, realtime.rest_limiter):
            if limiter is not None:
                limited.update(limiter.stats)
        yield _labelled(
            CounterMetricFamily(
                "realtime_rate_limited_total",
                "Events (acks answered, others dropped) and REST requests (429) over the "
                "user's rate limit, by limit: an event's name, * for the others, rest.read, "
                "rest.write.",
                labels=["event"],
            ),
            [
                (key.removeprefix("refused:"), n)
                for key, n in sorted(limited.items())
                if key.startswith("refused:")
            ],
        )
        yield _counter(
            "realtime_flood_disconnects_total",
            "Sockets disconnected for flooding past their rate limits.",
            limited["disconnects"],
        )
        health = realtime.store.health
        yield _gauge(
            "store_up",
            "0 while database calls fail (within the last few seconds), else 1.",
            int(not health.failing),
        )
        yield _counter(
            "store_errors_total",
            "Database calls that failed with a database error.",
            health.errors,
        )
        latency = HistogramMetricFamily(
            "store_operation_seconds",
            "Time of a database call, queue included.",
            labels=["op"],
        )
        for op, hist in sorted(realtime.store.latency.ops.items()):
            latency.add_metric([op], hist.cumulative(), sum_value=hist.total)
        yield latency


#: The Redis bridge's counters (``Bridge.stats``) and what they count.
_BRIDGE_COUNTERS = (
    ("connects", "Connections to Redis made."),
    ("disconnects", "Connections to Redis lost (each starts a degraded period)."),
    ("published", "Messages published to Redis (broadcasts, requests, responses)."),
    ("publish_batches", "Pipelines the publishes were sent in."),
    ("publish_dropped", "Publishes dropped: past the queue's bounds (bytes, count, age)."),
    ("publish_kept", "Publishes made while Redis was unreachable, kept to be sent later."),
    ("publish_resent", "Publishes sent again: the connection broke while they were written."),
    ("broadcasts_in", "Broadcasts from other nodes delivered here."),
    ("broadcasts_skipped", "Broadcasts from other nodes dropped unread: no socket here."),
    ("requests_in", "Requests from other nodes handled."),
    ("requests_out", "Requests sent to other nodes."),
    ("request_timeouts", "Requests that ended with fewer answers than nodes."),
    ("bad_messages", "Messages from Redis that could not be read."),
    ("stream_appended", "Streams mode: entries this node wrote to the stream."),
    (
        "stream_ids_moved",
        "Streams mode: entries Redis gave another id than the one this node's clients were "
        "told (another node wrote first); a restore finds them by that one.",
    ),
    ("sessions_restored", "Streams mode: sockets restored from a session in Redis."),
    ("sessions_not_restored", "Streams mode: restores refused (unknown, expired, offset gone)."),
    (
        "restores_from_lost_entries",
        "Streams mode: restores whose offset was an entry its node never wrote (killed with "
        "it queued); the other nodes' entries of that node's last moments are sent again.",
    ),
)


class BridgeCollector(Collector):
    """The Redis bridge's state and counters."""

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge

    def collect(self) -> Iterator[Metric]:
        bridge = self.bridge
        yield _gauge(
            "bridge_up", "1 when Redis is reachable, 0 when degraded.", int(bridge.healthy)
        )
        yield _gauge(
            "bridge_nodes",
            "Nodes of the cluster as last counted, this one included (0 while degraded).",
            bridge.nodes,
        )
        yield _labelled(
            GaugeMetricFamily("bridge_info", "The bridge's wire format.", labels=["mode"]),
            [(bridge.mode, 1)],
        )
        count, size = bridge.backlog
        yield _gauge(
            "bridge_backlog_messages",
            "Publishes waiting to go out (while degraded: what the outage kept).",
            count,
        )
        yield _gauge("bridge_backlog_bytes", "Their size.", size)
        stats = bridge.stats
        for key, help in _BRIDGE_COUNTERS:
            yield _counter(f"bridge_{key}_total", help, stats[key])


class HttpCollector(Collector):
    """The app's requests, by method, route and status."""

    def __init__(self, http: HttpCounts) -> None:
        self.http = http

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "http_requests_total",
            "HTTP requests served by the app.",
            labels=["method", "route", "status"],
        )
        for (method, route, status), n in sorted(self.http.items()):
            family.add_metric([method, route, str(status)], n)
        yield family


def metrics_registry(
    hub: Hub, realtime: Realtime | None, http: HttpCounts, bridge: Bridge | None = None
) -> CollectorRegistry:
    """A registry of its own for one app: what it serves at ``/metrics``, in this order."""
    registry = CollectorRegistry()
    registry.register(HubCollector(hub, realtime))
    if realtime is not None:
        registry.register(RealtimeCollector(realtime))
    if bridge is not None:
        registry.register(BridgeCollector(bridge))
    registry.register(HttpCollector(http))
    # the standard ones: process_* (CPU, memory, open files; Linux), python_info, python_gc_*
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


#: How long /healthz waits for the database to answer.
PING_TIMEOUT = 2.0


async def _store_health(realtime: Realtime) -> dict[str, Any]:
    store = realtime.store
    health = store.health
    error = ""
    with trio.move_on_after(PING_TIMEOUT) as scope:
        try:
            await store.ping()
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
    if scope.cancelled_caught:
        error = f"no answer within {PING_TIMEOUT:g} s"
        health.failed(TimeoutError(error))  # /metrics says so too
    if not error and health.failing:
        error = health.last_error
    if error:
        return {"status": "failing", "error": error}
    return {"status": "ok"}


def create_monitoring(
    hub: Hub, realtime: Realtime | None, http: HttpCounts, bridge: Bridge | None = None
) -> Blueprint:
    bp = Blueprint("monitoring", __name__)
    registry = metrics_registry(hub, realtime, http, bridge)

    @bp.get("/metrics")
    async def metrics() -> Any:
        return Response(generate_latest(registry), content_type=CONTENT_TYPE_PLAIN_0_0_4)

    @bp.get("/healthz")
    async def healthz() -> Any:
        body: dict[str, Any] = {"status": "ok", "hub": {"clients": hub.client_count}}
        if bridge is not None:
            # degraded is still 200: this node serves its own clients without Redis
            body["status"] = bridge.status
            waiting, size = bridge.backlog
            body["bridge"] = {
                "status": bridge.status,
                "mode": bridge.mode,
                "uid": bridge.uid,
                "nodes": bridge.nodes,
                "backlog": {"messages": waiting, "bytes": size},
            }
        if realtime is not None:
            store = await _store_health(realtime)
            body["store"] = store
            if store["status"] != "ok":
                body["status"] = "degraded"
        return jsonify(body)

    return bp
