"""Notifications wait for users who are offline: stored once, sent on connect (oldest
first, with ids) until read, never lost and never twice to one connection."""

from __future__ import annotations

from tests.realtime.harness import Service, make_project, token


async def update(svc: Service, who: str, task_id: int, **changes: object) -> dict[str, object]:
    async with svc.http(token(who, who.capitalize())) as http:
        response = await http.put(f"/api/tasks/{task_id}", json=changes)
        assert response.status_code == 200, response.text
        return dict(response.json())


async def new_task(svc: Service, project: int, who: str, **fields: object) -> int:
    async with svc.http(token(who, who.capitalize())) as http:
        response = await http.post(f"/api/projects/{project}/tasks", json=fields)
        assert response.status_code == 201, response.text
        task_id: int = response.json()["id"]
        return task_id


async def test_a_notification_waits_for_a_user_who_was_offline(svc: Service) -> None:
    project = await make_project(svc, "Later", {"ada": "Ada", "bob": "Bob"})
    task = await new_task(svc, project, "bob", title="Fix the login", assigneeId="bob")
    await update(svc, "ada", task, status="in_progress")  # bob is offline
    await update(svc, "ada", task, title="Fix the login page")

    bob = svc.tab(token("bob", "Bob"))
    await bob.connect()
    try:
        first, second = await bob.next("notification", 2)
        assert first["type"] == second["type"] == "task_update"
        assert first["id"] < second["id"]  # oldest first
        # a sentence to read, and where (the project)
        assert first["title"] == "Ada moved \u201cFix the login\u201d to In progress"
        assert first["body"] == "Later"
        assert second["title"] == (
            "Ada renamed \u201cFix the login\u201d to \u201cFix the login page\u201d"
        )
        assert first["link"] == f"/projects/{project}/tasks/{task}"
        assert set(first) == {"id", "type", "title", "body", "link", "timestamp"}
        assert await bob.call("notificationRead", first["id"]) == {"ok": True}
    finally:
        await bob.disconnect()

    # next time only the unread one comes, once
    again = svc.tab(token("bob", "Bob"))
    await again.connect()
    try:
        await again.next("notification")
        await again.call("joinProject", project)  # a round trip: anything queued has arrived
        assert [n["id"] for n in again.got("notification")] == [second["id"]]
        # read over REST this time
        async with svc.http(token("bob")) as http:
            read = await http.post(f"/api/notifications/{second['id']}/read")
            assert read.status_code == 200
            left = (await http.get("/api/notifications?unread=1")).json()["notifications"]
            assert left == []
            everything = (await http.get("/api/notifications")).json()["notifications"]
            assert [n["id"] for n in everything] == [second["id"], first["id"]]
            assert all(n["read"] for n in everything)
    finally:
        await again.disconnect()

    third = svc.tab(token("bob", "Bob"))
    await third.connect()
    try:
        await third.call("joinProject", project)
        assert third.got("notification") == []
    finally:
        await third.disconnect()


async def test_an_online_assignee_gets_it_live_in_every_tab_once(svc: Service) -> None:
    project = await make_project(svc, "Live", {"ada": "Ada", "bob": "Bob"})
    task = await new_task(svc, project, "ada", title="Review", assigneeId="bob")
    tabs = [svc.tab(token("bob", "Bob")), svc.tab(token("bob", "Bob"))]
    for tab in tabs:
        await tab.connect()
    try:
        # the assignment itself (made by Ada) was a notification, waiting: every tab gets
        # it before any reads it (a tab whose replay runs after the read is not sent it)
        for tab in tabs:
            (assigned,) = await tab.next("notification")
            assert assigned["type"] == "task_assigned"
        for tab in tabs:
            assert await tab.call("notificationRead", assigned["id"]) == {"ok": True}
        await update(svc, "ada", task, status="done")
        for tab in tabs:
            await tab.next("notification", 2)
            await tab.call("notificationRead", 999_999)  # a round trip
            assert [n["type"] for n in tab.got("notification")] == ["task_assigned", "task_update"]
        # the assignee changing their own task notifies nobody
        await update(svc, "bob", task, status="in_progress")
        for tab in tabs:
            await tab.call("joinProject", project)
            assert len(tab.got("notification")) == 2
    finally:
        for tab in tabs:
            await tab.disconnect()
    async with svc.http(token("bob")) as http:
        unread = (await http.get("/api/notifications?unread=1")).json()["notifications"]
    assert len(unread) == 1  # the live one, stored once, still unread


async def test_someone_elses_notification_cannot_be_read(svc: Service) -> None:
    project = await make_project(svc, "Mine", {"ada": "Ada", "bob": "Bob"})
    await new_task(svc, project, "ada", title="For Bob", assigneeId="bob")
    ada = svc.tab(token("ada", "Ada"))
    await ada.connect()
    try:
        answer = await ada.call("notificationRead", 1)
        assert answer == {"ok": False, "error": "Notification not found"}
    finally:
        await ada.disconnect()
    async with svc.http(token("ada")) as http:
        assert (await http.post("/api/notifications/1/read")).status_code == 404
    async with svc.http(token("bob")) as http:
        unread = (await http.get("/api/notifications?unread=1")).json()["notifications"]
    assert [n["id"] for n in unread] == [1]
