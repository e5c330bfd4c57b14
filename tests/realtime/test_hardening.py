"""The service against what an attacker (or a broken client) sends, with stock clients:
lone surrogates, floods, a database that fails. The service runs inside the test's
``trio.run``: a fault escaping it fails the test."""

from __future__ import annotations

import re
import socket
import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import socketio
import trio

from server.hub import Rate
from tests.bridge.tcp_proxy import tcp_proxy
from tests.postgres import postgres_database
from tests.realtime.harness import Service, make_project, metric, serving, token
from tests.realtime.test_events import two_in_a_project
from tests.realtime.test_faults import drop

RATE_LIMITED = {"ok": False, "error": "Rate limit exceeded"}


async def test_a_lone_surrogate_reaches_every_member_and_the_server_lives(svc: Service) -> None:
    """python-socketio writes the str ``"\\ud800"`` as the JSON escape a hostile client
    would send; it is relayed to a long-polling member and a WebSocket member alike."""
    project = await make_project(svc, "Bomb", {"ada": "Ada", "bob": "Bob", "cy": "Cy"})
    ada = svc.tab(token("ada", "Ada"))
    bob = svc.tab(token("bob", "Bob"), ("polling",))
    cy = svc.tab(token("cy", "Cy"))
    for tab in (ada, bob, cy):
        await tab.connect()
        await tab.call("joinProject", project)
    try:
        move = {"projectId": project, "taskId": "\ud800", "position": {"\udfff": 1}}
        assert await ada.call("cursorMove", move) == {"ok": True}
        for member in (bob, cy):
            (update,) = await member.next("cursorUpdate")
            assert update["taskId"] == "\ud800" and update["position"] == {"\udfff": 1}
        # text that is stored must be text: a clear error, nothing stored or sent
        answer = await ada.call("chatMessage", {"projectId": project, "message": "a\ud800b"})
        assert answer == {
            "ok": False,
            "error": "message is not valid Unicode text (it holds a lone surrogate)",
        }
        assert (await ada.call("chatMessage", {"projectId": project, "message": "ok"}))["ok"]
        assert [m["message"] for m in await bob.next("newMessage")] == ["ok"]
        assert all(tab.connected for tab in (ada, bob, cy))
    finally:
        for tab in (ada, bob, cy):
            await tab.disconnect()
    assert svc.running.hub.engine.totals()["connection_errors"] == 0


async def test_rest_refuses_text_with_a_lone_surrogate_with_400(svc: Service) -> None:
    project = await make_project(svc, "Rest", {"ada": "Ada"})
    async with svc.http(token("ada")) as http:
        body = b'{"title": "bad \\ud800"}'  # the JSON text, as a client sends it
        headers = {"Content-Type": "application/json"}
        created = await http.post(f"/api/projects/{project}/tasks", content=body, headers=headers)
        assert created.status_code == 400
        assert created.json() == {
            "error": "title is not valid Unicode text (it holds a lone surrogate)"
        }
        good = await http.post(f"/api/projects/{project}/tasks", json={"title": "fine"})
        assert good.status_code == 201
        task = good.json()["id"]
        updated = await http.put(f"/api/tasks/{task}", content=body, headers=headers)
        assert updated.status_code == 400
        assert (await http.get(f"/api/tasks/{task}")).json()["title"] == "fine"


async def test_a_token_whose_claims_are_not_text_is_invalid(svc: Service) -> None:
    refusal = await svc.tab(token("mallory", "Mal\ud800lory")).refused()
    assert refusal == {"message": "Authentication failed: invalid token"}
    async with svc.http(token("eve", "\udfff")) as http:
        assert (await http.get("/api/me")).status_code == 401


async def test_chat_is_limited_per_user_across_tabs(svc: Service) -> None:
    project, ada, bob = await two_in_a_project(svc)
    second = svc.tab(token("ada", "Ada"))  # Ada's second tab shares her budget
    await second.connect()
    await second.call("joinProject", project)
    try:
        answers = []
        for n in range(15):
            for tab in (ada, second):
                chat = {"projectId": project, "message": f"{n}"}
                answers.append(await tab.call("chatMessage", chat))
        accepted = [a for a in answers if a.get("ok")]
        assert 20 <= len(accepted) <= 22  # the burst, and what refilled at 5/s meanwhile
        assert all(a == RATE_LIMITED for a in answers if not a.get("ok"))
        async with svc.http(token("ada")) as http:
            history = (await http.get(f"/api/projects/{project}/messages?limit=100")).json()
            metrics = (await http.get("/metrics")).text
        assert len(history["messages"]) == len(accepted)  # what was refused was not stored
        refused = 30 - len(accepted)
        assert metric(metrics, 'realtime_rate_limited_total{event="chatMessage"}') == refused
        # Bob's budget is his own
        assert (await bob.call("chatMessage", {"projectId": project, "message": "me"}))["ok"]
    finally:
        for tab in (ada, bob, second):
            await tab.disconnect()


async def test_volatile_events_over_the_limit_are_dropped(svc: Service) -> None:
    project, ada, bob = await two_in_a_project(svc)
    try:
        for _ in range(60):
            await ada.emit("typing", {"projectId": project, "isTyping": True})
        # a marker after them: everything not dropped has arrived before it
        await ada.call("chatMessage", {"projectId": project, "message": "marker"})
        await bob.next("newMessage")
        assert 20 <= len(bob.got("userTyping")) < 60
        assert ada.connected  # 40 refusals are no flood
    finally:
        await ada.disconnect()
        await bob.disconnect()


async def test_a_user_who_keeps_flooding_is_disconnected(tmp_path: Path) -> None:
    async with serving(tmp_path, flood_disconnect=30) as svc:
        project, ada, bob = await two_in_a_project(svc)
        try:
            for n in range(200):
                try:
                    await ada.emit("chatMessage", {"projectId": project, "message": f"{n}"})
                except socketio.exceptions.BadNamespaceError:
                    break  # disconnected by the server: there is nothing to send to any more
            await ada.until(lambda: not ada.connected)
            assert bob.connected
            async with svc.http(token("ada")) as http:
                metrics = (await http.get("/metrics")).text
            assert metric(metrics, "realtime_flood_disconnects_total") == 1
            await bob.next("userLeft")
        finally:
            await ada.disconnect()
            await bob.disconnect()


async def test_the_limits_are_settings(tmp_path: Path) -> None:
    async with serving(tmp_path, rate_limits=(("chatMessage", Rate(1, 2)),)) as svc:
        project, ada, bob = await two_in_a_project(svc)
        try:
            answers = [
                await ada.call("chatMessage", {"projectId": project, "message": "x"})
                for _ in range(4)
            ]
            assert [a.get("ok") for a in answers].count(True) in (2, 3)
            for _ in range(100):  # typing has no limit of its own now, and no '*' either
                await ada.emit("typing", {"projectId": project, "isTyping": True})
            await ada.call("leaveProject", project)
            await bob.next("userLeft")
            assert len(bob.got("userTyping")) == 100
        finally:
            await ada.disconnect()
            await bob.disconnect()


async def test_healthz_is_degraded_while_the_database_fails(svc: Service) -> None:
    project, ada, bob = await two_in_a_project(svc)
    svc.running.realtime.store.health.window = 0.5
    try:
        async with svc.http() as http:
            health = (await http.get("/healthz")).json()
            assert health["status"] == "ok" and health["store"] == {"status": "ok"}
            assert metric((await http.get("/metrics")).text, "store_up") == 1
            drop(svc, "messages")
            answer = await ada.call("chatMessage", {"projectId": project, "message": "lost"})
            assert answer == {"ok": False, "error": "Internal error"}
            health = (await http.get("/healthz")).json()
            assert health["status"] == "degraded"
            assert health["store"]["status"] == "failing"
            # SQLite's words, and PostgreSQL's
            assert re.search(
                r'no such table: messages|relation "messages" does not exist',
                health["store"]["error"],
            ), health["store"]
            metrics = (await http.get("/metrics")).text
            assert metric(metrics, "store_up") == 0
            assert metric(metrics, "store_errors_total") == 1
            await trio.sleep(0.6)  # no failure since: the store is up again
            assert (await http.get("/healthz")).json()["status"] == "ok"
    finally:
        await ada.disconnect()
        await bob.disconnect()


async def test_healthz_asks_the_database_itself(svc: Service) -> None:
    """A database nobody is using at the moment fails too: /healthz reads it."""
    store: Any = svc.running.realtime.store

    async def broken() -> None:
        raise sqlite3.DatabaseError("file is not a database")

    store.ping = broken  # what a corrupted file answers, without corrupting one
    async with svc.http() as http:
        health = (await http.get("/healthz")).json()
    assert health["status"] == "degraded"
    assert health["store"] == {
        "status": "failing",
        "error": "DatabaseError: file is not a database",
    }


async def test_rest_requests_are_limited_per_user_with_429(tmp_path: Path) -> None:
    limits = (("rest.write", Rate(1, 3)), ("rest.read", Rate(1, 5)))
    async with serving(tmp_path, rate_limits=limits) as svc:
        project = await make_project(svc, "Rest", {"ada": "Ada"})
        async with svc.http(token("ada")) as ada, svc.http(token("bob")) as bob:
            created = [
                await ada.post(f"/api/projects/{project}/tasks", json={"title": f"t{n}"})
                for n in range(5)
            ]
            statuses = [r.status_code for r in created]
            assert statuses.count(201) in (3, 4) and 429 in statuses
            refused = next(r for r in created if r.status_code == 429)
            assert refused.json() == {"error": "Rate limit exceeded"}
            assert refused.headers["retry-after"] == "1"
            tasks = (await ada.get(f"/api/projects/{project}/tasks")).json()["tasks"]
            assert len(tasks) == statuses.count(201)  # nothing refused was stored
            assert (await bob.get("/api/me")).status_code == 200  # a budget of his own
            reads = [(await ada.get("/api/me")).status_code for _ in range(8)]
            assert 429 in reads
            metrics = (await ada.get("/metrics")).text  # /metrics is not limited
        assert metric(metrics, 'realtime_rate_limited_total{event="rest.write"}') >= 1
        assert metric(metrics, 'realtime_rate_limited_total{event="rest.read"}') >= 1


async def test_a_postgresql_that_goes_away_and_comes_back(tmp_path: Path) -> None:
    """The service on PostgreSQL through a proxy that the test cuts: the server is gone for
    the service (live connections reset, new ones refused) and then back. Meanwhile a chat
    message gets ``Internal error`` (its connection kept), /healthz says degraded, and once
    PostgreSQL answers again everything works without a restart."""
    with postgres_database() as direct:
        info = psycopg.conninfo.conninfo_to_dict(direct)
        pg_port = int(info.get("port") or 5432)
        async with tcp_proxy(pg_port) as proxy:
            url = direct.replace(f":{pg_port}/", f":{proxy.port}/")
            async with serving(tmp_path, database_url=url) as svc:
                project, ada, bob = await two_in_a_project(svc)
                svc.running.realtime.store.health.window = 0.5
                try:
                    async with svc.http() as http:
                        assert (await http.get("/healthz")).json()["status"] == "ok"
                        proxy.switch(free_port())  # nothing listens there: refused
                        await proxy.cut()
                        answer = await ada.call(
                            "chatMessage", {"projectId": project, "message": "lost"}, timeout=30
                        )
                        assert answer == {"ok": False, "error": "Internal error"}
                        health = (await http.get("/healthz")).json()
                        assert health["status"] == "degraded", health
                        assert health["store"]["status"] == "failing"
                        assert metric((await http.get("/metrics")).text, "store_up") == 0
                        assert ada.connected and bob.connected

                        proxy.switch(pg_port)
                        with trio.fail_after(30):
                            while (await http.get("/healthz")).json()["status"] != "ok":
                                await trio.sleep(0.2)
                        message = {"projectId": project, "message": "back"}
                        assert (await ada.call("chatMessage", message))["ok"]
                        assert [m["message"] for m in await bob.next("newMessage")] == ["back"]
                finally:
                    await ada.disconnect()
                    await bob.disconnect()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
