"""When the database fails under a handler: the client gets an answer, the failure is logged
and counted, and the connection lives on. The fault is real: a table dropped behind the
server's back, through another connection, on both stores (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from tests.realtime.harness import Service, drop_table, make_project, metric, token

drop = drop_table


async def test_a_store_failure_answers_internal_error(
    svc: Service, caplog: pytest.LogCaptureFixture
) -> None:
    project = await make_project(svc, "Fragile", {"ada": "Ada", "bob": "Bob"})
    ada, bob = svc.tab(token("ada", "Ada")), svc.tab(token("bob", "Bob"))
    await ada.connect()
    await bob.connect()
    try:
        await ada.call("joinProject", project)
        await bob.call("joinProject", project)
        drop(svc, "messages")
        answer = await ada.call("chatMessage", {"projectId": project, "message": "lost?"})
        assert answer == {"ok": False, "error": "Internal error"}
        assert "chat_message failed" in caplog.text
        # the connection lives on, and what needs no table still works
        await ada.call("typing", {"projectId": project, "isTyping": True})
        (typing,) = await bob.next("userTyping")
        assert typing["userId"] == "ada"
        assert bob.got("newMessage") == []  # nothing was announced that was not stored

        drop(svc, "tasks")
        async with svc.http(token("ada")) as http:
            response = await http.get(f"/api/projects/{project}/tasks")
            assert response.status_code == 500
            assert response.json() == {"error": "Internal error"}
            metrics = (await http.get("/metrics")).text
        assert metric(metrics, "hub_handler_errors_total") == 1
        route = '{method="GET",route="/api/projects/<int:project_id>/tasks",status="500"}'
        assert metric(metrics, f"http_requests_total{route}") == 1
    finally:
        await ada.disconnect()
        await bob.disconnect()
