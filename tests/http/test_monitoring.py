"""/metrics, /healthz, the monitor's log line, CORS for the API, and --dev's token route."""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

import pytest
import trio
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.parser import text_string_to_metric_families

from server.http.app import create_app
from server.hub.bridge import Bridge
from tests.realtime.harness import Service, make_project, metric, serving, token

#: What /metrics exposed before prometheus-client rendered it (taken from its output with the
#: real-time service and a bridge): name as in ``# TYPE``, type, label names. Dashboards and
#: alerts use these names; none may go or change.
EXPOSED = (
    ("hub_connected_clients", "gauge", ()),
    ("hub_packets_in_total", "counter", ()),
    ("hub_packets_out_total", "counter", ()),
    ("hub_fast_path_packets_total", "counter", ("how",)),
    ("hub_gathered_writes_total", "counter", ()),
    ("hub_volatile_dropped_total", "counter", ()),
    ("hub_slow_consumer_closes_total", "counter", ()),
    ("hub_parse_errors_total", "counter", ()),
    ("hub_handler_errors_total", "counter", ()),
    ("hub_connection_errors_total", "counter", ()),
    ("hub_request_timeouts_total", "counter", ()),
    ("hub_handshaking_connections", "gauge", ()),
    ("hub_connections_refused_total", "counter", ("limit",)),
    ("hub_unjoined_connections", "gauge", ()),
    ("hub_unjoined_closed_total", "counter", ()),
    ("hub_events_refused_total", "counter", ()),
    ("realtime_project_rooms", "gauge", ()),
    ("realtime_project_room_users", "gauge", ("project",)),
    ("realtime_auth_refused_total", "counter", ()),
    ("realtime_chat_messages_total", "counter", ()),
    ("realtime_membership_checks_total", "counter", ("how",)),
    ("realtime_rate_limited_total", "counter", ("event",)),
    ("realtime_flood_disconnects_total", "counter", ()),
    ("store_up", "gauge", ()),
    ("store_errors_total", "counter", ()),
    ("store_operation_seconds", "histogram", ("op",)),
    ("bridge_up", "gauge", ()),
    ("bridge_nodes", "gauge", ()),
    ("bridge_info", "gauge", ("mode",)),
    ("bridge_backlog_messages", "gauge", ()),
    ("bridge_backlog_bytes", "gauge", ()),
    ("bridge_connects_total", "counter", ()),
    ("bridge_disconnects_total", "counter", ()),
    ("bridge_published_total", "counter", ()),
    ("bridge_publish_batches_total", "counter", ()),
    ("bridge_publish_dropped_total", "counter", ()),
    ("bridge_publish_kept_total", "counter", ()),
    ("bridge_publish_resent_total", "counter", ()),
    ("bridge_broadcasts_in_total", "counter", ()),
    ("bridge_broadcasts_skipped_total", "counter", ()),
    ("bridge_requests_in_total", "counter", ()),
    ("bridge_requests_out_total", "counter", ()),
    ("bridge_request_timeouts_total", "counter", ()),
    ("bridge_bad_messages_total", "counter", ()),
    ("bridge_stream_appended_total", "counter", ()),
    ("bridge_stream_ids_moved_total", "counter", ()),
    ("bridge_sessions_restored_total", "counter", ()),
    ("bridge_sessions_not_restored_total", "counter", ()),
    ("bridge_restores_from_lost_entries_total", "counter", ()),
    ("http_requests_total", "counter", ("method", "route", "status")),
)


async def test_metrics_count_what_happens(svc: Service) -> None:
    project = await make_project(svc, "M", {"ada": "Ada", "bob": "Bob"})
    ada, bob = svc.tab(token("ada", "Ada")), svc.tab(token("bob", "Bob"))
    await ada.connect()
    await bob.connect()
    try:
        await ada.call("joinProject", project)
        await bob.call("joinProject", project)
        await ada.call("chatMessage", {"projectId": project, "message": "counted"})
        await bob.next("newMessage")
        async with svc.http() as http:
            response = await http.get("/metrics")
        assert response.headers["content-type"].startswith("text/plain")
        metrics = response.text
        assert metric(metrics, "hub_connected_clients") == 2
        assert metric(metrics, "realtime_project_rooms") == 1
        assert metric(metrics, f'realtime_project_room_users{{project="{project}"}}') == 2
        assert metric(metrics, "realtime_chat_messages_total") == 1
        assert metric(metrics, "hub_packets_in_total") >= 5  # 2 CONNECT, 2 joins, 1 chat
        # out: 2 CONNECT answers, 3 acks, 1 userJoined, 2 newMessage (at least)
        assert metric(metrics, "hub_packets_out_total") >= 8
        assert metric(metrics, "hub_volatile_dropped_total") == 0
        # the clients are WebSockets: their packets went out by the fast path, written at
        # once or (a second one for a socket in the same tick) gathered
        direct = metric(metrics, 'hub_fast_path_packets_total{how="direct"}')
        gathered = metric(metrics, 'hub_fast_path_packets_total{how="gathered"}')
        assert direct >= 1
        assert direct + gathered >= 8
        assert metric(metrics, "hub_gathered_writes_total") >= 0
        assert metric(metrics, "hub_slow_consumer_closes_total") == 0
        assert metric(metrics, "hub_handler_errors_total") == 0
        assert metric(metrics, 'store_operation_seconds_count{op="add_message"}') == 1
        assert metric(metrics, 'store_operation_seconds_bucket{le="+Inf",op="add_message"}') == 1
        route = 'http_requests_total{method="POST",route="/api/projects",status="201"}'
        assert metric(metrics, route) == 1
    finally:
        await ada.disconnect()
        await bob.disconnect()
    async with svc.http() as http:
        health = (await http.get("/healthz")).json()
    assert health["status"] == "ok"


async def test_metrics_keep_their_names_and_parse(svc: Service) -> None:
    """Every name /metrics ever exposed is there, with its type and labels, and the whole text
    is read by prometheus-client's own parser. The bridge is never started: its counters are
    there all the same."""
    project = await make_project(svc, "Names", {"ada": "Ada"})
    ada = svc.tab(token("ada", "Ada"))
    await ada.connect()
    try:
        await ada.call("joinProject", project)
        await ada.call("chatMessage", {"projectId": project, "message": "named"})
        running = svc.running
        app = create_app(running.hub, running.realtime, bridge=Bridge("redis://127.0.0.1:1/0"))
        client = app.test_client()
        assert (await client.get("/healthz")).status_code == 200  # an http_requests_total
        response = await client.get("/metrics")
        text = (await response.get_data()).decode()
    finally:
        await ada.disconnect()
    assert response.content_type.startswith("text/plain")
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE))
    for name, kind, _ in EXPOSED:
        assert types.get(name) == kind, name
    families = {}
    for family in text_string_to_metric_families(text):
        # the parser names a counter family without its _total, as prometheus-client does
        name = family.name + "_total" if family.type == "counter" else family.name
        families[name] = family
    for name, kind, labels in EXPOSED:
        family = families[name]
        assert family.type == kind, name
        suffixes = ("_bucket", "_sum", "_count") if kind == "histogram" else ("",)
        sample_names = {name + suffix for suffix in suffixes}
        for s in family.samples:
            assert s.name in sample_names, s.name
            assert set(s.labels) - {"le"} == set(labels), s
    # what the traffic above made has its samples
    for name in ("realtime_project_room_users", "store_operation_seconds", "bridge_info"):
        assert families[name].samples, name
    # each app counts its own requests: this one has served only /healthz (the service's own
    # app served the REST calls above in the same process)
    (healthz,) = families["http_requests_total"].samples
    assert healthz.labels == {"method": "GET", "route": "/healthz", "status": "200"}
    assert healthz.value == 1


async def test_metrics_have_the_standard_process_and_python_ones(svc: Service) -> None:
    async with svc.http() as http:
        response = await http.get("/metrics")
    assert response.headers["content-type"] == CONTENT_TYPE_PLAIN_0_0_4
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    assert families["python_info"].samples[0].labels["implementation"]
    assert families["python_gc_objects_collected"].type == "counter"
    if sys.platform == "linux":  # process_* are read from /proc
        for name in (
            "process_cpu_seconds",
            "process_resident_memory_bytes",
            "process_start_time_seconds",
            "process_open_fds",
            "process_max_fds",
        ):
            assert families[name].samples, name
        assert metric(response.text, "process_open_fds") >= 1


async def test_the_monitor_logs_clients_and_room_users(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="monitor")
    async with serving(tmp_path, monitor_interval=0.2) as svc:
        project = await make_project(svc, "Log", {"ada": "Ada"})
        ada = svc.tab(token("ada", "Ada"))
        await ada.connect()
        try:
            await ada.call("joinProject", project)
            line = f"1 clients connected; users per project room: project:{project}=1"
            with trio.fail_after(5):
                while not any(line in r.getMessage() for r in caplog.records):
                    await trio.sleep(0.05)
        finally:
            await ada.disconnect()


async def test_api_cors_allows_the_configured_origins_only(tmp_path: Path) -> None:
    origins = ("http://localhost:5173",)
    async with serving(tmp_path, cors_origins=origins) as svc, svc.http() as http:
        preflight = await http.options(
            "/api/projects",
            headers={
                "Origin": "http://localhost:5173",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert preflight.headers["access-control-allow-origin"] == "http://localhost:5173"
        assert "Authorization" in preflight.headers["access-control-allow-headers"]
        other = await http.get("/api/projects", headers={"Origin": "http://evil.example"})
        assert other.status_code == 401
        assert "access-control-allow-origin" not in other.headers


async def test_dev_tokens_exist_only_with_dev(tmp_path: Path) -> None:
    async with serving(tmp_path / "prod") as svc, svc.http() as http:
        response = await http.post("/api/dev/token", json={"userId": "carol"})
        assert response.status_code == 404
        assert svc.running.demo_project_id is None
    async with serving(tmp_path / "dev", dev=True) as svc:
        demo = svc.running.demo_project_id
        assert demo is not None
        async with svc.http() as http:
            issued = (await http.post("/api/dev/token", json={"userId": "carol"})).json()
            assert issued["userId"] == "carol" and issued["role"] == "member"
            assert issued["projectId"] == demo
            bad = await http.post("/api/dev/token", json={"userId": "x", "role": "root"})
            assert bad.status_code == 400
        carol = svc.tab(issued["token"])
        await carol.connect()
        try:
            answer = await carol.call("joinProject", demo)
            assert answer == {
                "ok": True,
                "onlineMembers": [{"userId": "carol", "userName": "Carol"}],
            }
        finally:
            await carol.disconnect()
        async with svc.http(issued["token"]) as http:
            tasks = (await http.get(f"/api/projects/{demo}/tasks")).json()["tasks"]
            assert len(tasks) == 2  # the seeded demo tasks
