"""``GET /metrics`` (Prometheus text format, version 0.0.4) and ``GET /healthz``."""

from __future__ import annotations

from collections import Counter
from typing import Any

import trio
from quart import Blueprint, Response, jsonify

from server.hub import Hub
from server.hub.bridge import Bridge
from server.realtime import Realtime

#: (method, route, status) -> requests served; filled by the app's after_request hook.
HttpCounts = Counter[tuple[str, str, int]]


def _num(value: float) -> str:
    return str(value) if isinstance(value, int) else repr(float(value))


def _label(value: object) -> str:
    text = str(value)
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class _Text:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def metric(self, name: str, kind: str, help: str, samples: list[tuple[str, float]]) -> None:
        self.lines.append(f"# HELP {name} {help}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            self.lines.append(f"{name}{labels} {_num(value)}")

    def render(self) -> str:
        return "\n".join(self.lines) + "\n"


def render(
    hub: Hub, realtime: Realtime | None, http: HttpCounts, bridge: Bridge | None = None
) -> str:
    out = _Text()
    totals = hub.engine.totals()
    stats = hub.stats
    handler_errors = stats["handler_errors"] + (realtime.stats["handler_errors"] if realtime else 0)
    out.metric(
        "hub_connected_clients",
        "gauge",
        "Engine.IO connections open now.",
        [("", hub.client_count)],
    )
    out.metric(
        "hub_packets_in_total",
        "counter",
        "Messages received from clients.",
        [("", stats["packets_in"])],
    )
    out.metric(
        "hub_packets_out_total",
        "counter",
        "Messages queued or written to clients (one per recipient).",
        [("", totals["packets_out"])],
    )
    out.metric(
        "hub_fast_path_packets_total",
        "counter",
        "Packets written to idle WebSockets without a writer task: at once (direct), or "
        "gathered with the others of one tick into one write (gathered).",
        [
            ('{how="direct"}', totals["fast_path_direct"]),
            ('{how="gathered"}', totals["fast_path_gathered"]),
        ],
    )
    out.metric(
        "hub_gathered_writes_total",
        "counter",
        "System calls that wrote gathered packets (one per connection per busy tick).",
        [("", totals["fast_path_flushes"])],
    )
    out.metric(
        "hub_volatile_dropped_total",
        "counter",
        "Volatile packets dropped because a client's queue was full.",
        [("", totals["dropped_volatile"])],
    )
    out.metric(
        "hub_slow_consumer_closes_total",
        "counter",
        "Connections closed because their outbound queue was full.",
        [("", totals["slow_consumer_closes"])],
    )
    out.metric(
        "hub_parse_errors_total",
        "counter",
        "Malformed packets (connection closed).",
        [("", stats["parse_errors"])],
    )
    out.metric(
        "hub_handler_errors_total", "counter", "Event handlers that failed.", [("", handler_errors)]
    )
    out.metric(
        "hub_connection_errors_total",
        "counter",
        "Connections ended by an unexpected error in their reader, writer, poll or tasks.",
        [("", totals["connection_errors"])],
    )
    out.metric(
        "hub_request_timeouts_total",
        "counter",
        "HTTP requests whose headers or body did not arrive in time (408, closed).",
        [("", totals["request_timeouts"])],
    )
    out.metric(
        "hub_handshaking_connections",
        "gauge",
        "Connections open now that have not completed a request yet.",
        [("", hub.engine.handshaking)],
    )
    out.metric(
        "hub_connections_refused_total",
        "counter",
        "Connections still handshaking answered 503 to make room for newer ones.",
        [
            ('{limit="per_address"}', totals["refused_handshaking_per_address"]),
            ('{limit="total"}', totals["refused_handshaking_total"]),
        ],
    )
    out.metric(
        "hub_unjoined_connections",
        "gauge",
        "Connections open now that have not joined a namespace (sent CONNECT) yet.",
        [("", hub.connect_deadlines.waiting)],
    )
    out.metric(
        "hub_unjoined_closed_total",
        "counter",
        "Connections that had not joined a namespace, closed to make room for newer ones.",
        [("", hub.connect_deadlines.evicted)],
    )
    out.metric(
        "hub_events_refused_total",
        "counter",
        "Incoming events refused by a middleware (a rate limit, say).",
        [("", stats["events_refused"])],
    )
    if realtime is not None:
        rooms = realtime.room_users()
        out.metric(
            "realtime_project_rooms",
            "gauge",
            "Project rooms with sockets in this process.",
            [("", len(rooms))],
        )
        out.metric(
            "realtime_project_room_users",
            "gauge",
            "Users (not sockets) in each project room, in this process.",
            [(f'{{project="{pid}"}}', users) for pid, users in rooms.items()],
        )
        out.metric(
            "realtime_auth_refused_total",
            "counter",
            "Connections refused at the handshake (missing or invalid token).",
            [("", realtime.stats["auth_refused"])],
        )
        out.metric(
            "realtime_chat_messages_total",
            "counter",
            "Chat messages stored and sent.",
            [("", realtime.stats["messages"])],
        )
        out.metric(
            "realtime_membership_checks_total",
            "counter",
            "Membership checks (joins, REST), by how they were answered: remembered, or by "
            "the store.",
            [
                ('{how="remembered"}', realtime.access.hits),
                ('{how="store"}', realtime.access.queries),
            ],
        )
        limited = Counter[str]()
        for limiter in (realtime.limiter, realtime.rest_limiter):
            if limiter is not None:
                limited.update(limiter.stats)
        out.metric(
            "realtime_rate_limited_total",
            "counter",
            "Events (acks answered, others dropped) and REST requests (429) over the user's "
            "rate limit, by limit: an event's name, * for the others, rest.read, rest.write.",
            [
                (f'{{event="{_label(key.removeprefix("refused:"))}"}}', n)
                for key, n in sorted(limited.items())
                if key.startswith("refused:")
            ],
        )
        out.metric(
            "realtime_flood_disconnects_total",
            "counter",
            "Sockets disconnected for flooding past their rate limits.",
            [("", limited["disconnects"])],
        )
        health = realtime.store.health
        out.metric(
            "store_up",
            "gauge",
            "0 while database calls fail (within the last few seconds), else 1.",
            [("", int(not health.failing))],
        )
        out.metric(
            "store_errors_total",
            "counter",
            "Database calls that failed with a database error.",
            [("", health.errors)],
        )
        latency = realtime.store.latency
        samples: list[tuple[str, float]] = []
        for op, hist in sorted(latency.ops.items()):
            for le, count in hist.cumulative():
                samples.append((f'_bucket{{op="{_label(op)}",le="{le}"}}', count))
            samples.append((f'_sum{{op="{_label(op)}"}}', hist.total))
            samples.append((f'_count{{op="{_label(op)}"}}', hist.count))
        out.lines.append("# HELP store_operation_seconds Time of a database call, queue included.")
        out.lines.append("# TYPE store_operation_seconds histogram")
        for suffix, value in samples:
            out.lines.append(f"store_operation_seconds{suffix} {_num(value)}")
    if bridge is not None:
        _bridge_metrics(out, bridge)
    out.metric(
        "http_requests_total",
        "counter",
        "HTTP requests served by the app.",
        [
            (f'{{method="{_label(m)}",route="{_label(r)}",status="{s}"}}', n)
            for (m, r, s), n in sorted(http.items())
        ],
    )
    return out.render()


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
)


def _bridge_metrics(out: _Text, bridge: Bridge) -> None:
    stats = bridge.stats
    out.metric(
        "bridge_up",
        "gauge",
        "1 when Redis is reachable, 0 when degraded.",
        [("", int(bridge.healthy))],
    )
    out.metric(
        "bridge_nodes",
        "gauge",
        "Nodes of the cluster as last counted, this one included (0 while degraded).",
        [("", bridge.nodes)],
    )
    out.metric(
        "bridge_info", "gauge", "The bridge's wire format.", [(f'{{mode="{bridge.mode}"}}', 1)]
    )
    count, size = bridge.backlog
    out.metric(
        "bridge_backlog_messages",
        "gauge",
        "Publishes waiting to go out (while degraded: what the outage kept).",
        [("", count)],
    )
    out.metric("bridge_backlog_bytes", "gauge", "Their size.", [("", size)])
    for key, help in _BRIDGE_COUNTERS:
        out.metric(f"bridge_{key}_total", "counter", help, [("", stats[key])])


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

    @bp.get("/metrics")
    async def metrics() -> Any:
        text = render(hub, realtime, http, bridge)
        return Response(text, content_type="text/plain; version=0.0.4")

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
