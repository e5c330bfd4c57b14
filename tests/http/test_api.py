"""The REST API over real HTTP (httpx) against the whole service, with real clients
listening on the hub for what REST changes push."""

from __future__ import annotations

from typing import Any

import pytest

from tests.realtime.harness import Service, make_project, token

NOTHING = "nothing to change: send title, description, status, assigneeId or position"
BIG_POSITION = f"position must be between -{2**53} and {2**53}"


def q(title: str) -> str:
    """A title as notifications quote it."""
    return f"\u201c{title}\u201d"


ADMIN = token("root", "Root", "admin")


async def test_projects_members_tasks_round_trip(svc: Service) -> None:
    project = await make_project(svc, "Board", {"ada": "Ada", "bob": "Bob"}, admin="root")
    async with svc.http(token("ada", "Ada")) as ada:
        mine = (await ada.get("/api/projects")).json()["projects"]
        assert [(p["id"], p["name"]) for p in mine] == [(project, "Board")]
        assert (await ada.get(f"/api/projects/{project}")).json()["name"] == "Board"
        members = (await ada.get(f"/api/projects/{project}/members")).json()["members"]
        assert [m["userId"] for m in members] == ["root", "ada", "bob"]

        created = await ada.post(
            f"/api/projects/{project}/tasks",
            json={"title": "Draw the board", "assigneeId": "bob", "status": "todo"},
        )
        assert created.status_code == 201
        task = created.json()
        assert task["title"] == "Draw the board" and task["assigneeId"] == "bob"
        assert task["projectId"] == project and task["createdBy"] == "ada"
        assert task["status"] == "todo" and task["description"] == ""
        plain = await ada.post(f"/api/projects/{project}/tasks", json={"title": "Plain"})
        assert plain.json()["status"] == "todo" and plain.json()["assigneeId"] is None

        tasks = (await ada.get(f"/api/projects/{project}/tasks")).json()["tasks"]
        assert [t["title"] for t in tasks] == ["Draw the board", "Plain"]
        assert (await ada.get(f"/api/tasks/{task['id']}")).json() == task

        async with svc.http(token("bob", "Bob")) as bob:
            assigned = (await bob.get("/api/tasks")).json()["tasks"]
            assert [t["id"] for t in assigned] == [task["id"]]
        assert (await ada.get("/api/tasks")).json() == {"tasks": []}
        updated = await ada.put(
            f"/api/tasks/{task['id']}", json={"status": "done", "assigneeId": None}
        )
        assert updated.status_code == 200
        assert updated.json()["status"] == "done" and updated.json()["assigneeId"] is None
    async with svc.http(ADMIN) as root:
        everything = (await root.get("/api/projects")).json()["projects"]
        assert project in [p["id"] for p in everything]
        me = (await root.get("/api/me")).json()
        assert me == {"userId": "root", "userName": "Root", "role": "admin"}


async def test_a_task_change_over_rest_reaches_the_room_and_the_assignee(svc: Service) -> None:
    project = await make_project(svc, "Live", {"ada": "Ada", "bob": "Bob"})
    ada, bob = svc.tab(token("ada", "Ada")), svc.tab(token("bob", "Bob"))
    await ada.connect()
    await bob.connect()
    try:
        await ada.call("joinProject", project)
        await bob.call("joinProject", project)
        async with svc.http(token("ada", "Ada")) as http:
            created = await http.post(
                f"/api/projects/{project}/tasks", json={"title": "Ship", "assigneeId": "bob"}
            )
            task_id = created.json()["id"]
            (announced,) = await bob.next("taskCreated")
            assert announced == created.json()
            response = await http.put(f"/api/tasks/{task_id}", json={"status": "in_progress"})
            assert response.status_code == 200
        for tab in (ada, bob):  # the whole room, the one who changed it too
            (event,) = await tab.next("taskUpdated")
            assert event["taskId"] == task_id and event["projectId"] == project
            assert event["changes"] == {"status": "in_progress"}
            assert event["updatedBy"] == {"userId": "ada", "userName": "Ada"}
            assert event["timestamp"] == response.json()["updatedAt"]
            assert event["task"] == response.json()
        kinds = [n["type"] for n in await bob.next("notification", 2)]
        assert kinds == ["task_assigned", "task_update"]
        await ada.call("joinProject", project)  # a round trip
        assert ada.got("notification") == []  # the updater is not notified
    finally:
        await ada.disconnect()
        await bob.disconnect()


async def test_chat_history_pages_back(svc: Service) -> None:
    project = await make_project(svc, "Talk", {"ada": "Ada"})
    ada = svc.tab(token("ada", "Ada"))
    await ada.connect()
    try:
        await ada.call("joinProject", project)
        ids = []
        for n in range(5):
            answer = await ada.call("chatMessage", {"projectId": project, "message": f"m{n}"})
            ids.append(answer["id"])
    finally:
        await ada.disconnect()
    async with svc.http(token("ada")) as http:
        url = f"/api/projects/{project}/messages"
        page = (await http.get(url, params={"limit": 2})).json()["messages"]
        assert [m["message"] for m in page] == ["m4", "m3"]
        older = (await http.get(url, params={"limit": 2, "before": page[-1]["id"]})).json()
        assert [m["message"] for m in older["messages"]] == ["m2", "m1"]
        assert set(older["messages"][0]) == {
            "id", "projectId", "userId", "userName", "message", "replyTo", "timestamp",
        }  # fmt: skip


async def test_unauthenticated_requests_get_401(svc: Service) -> None:
    for bearer, error in [
        (None, "Authentication token missing"),
        ("nonsense", "Authentication failed: invalid token"),
        (token("ada", expires_in=-5), "Authentication failed: invalid token"),
        (
            token("ada", secret="some-other-secret-for-signing-tokens"),
            "Authentication failed: invalid token",
        ),
    ]:
        async with svc.http(bearer) as http:
            response = await http.get("/api/projects")
            assert response.status_code == 401
            assert response.json() == {"error": error}
            assert response.headers["www-authenticate"] == "Bearer"
    async with svc.http() as http:
        basic = await http.get("/api/projects", headers={"Authorization": "Basic abc"})
        assert basic.status_code == 401


async def test_forbidden_and_not_found(svc: Service) -> None:
    project = await make_project(svc, "Closed", {"ada": "Ada"})
    async with svc.http(ADMIN) as root:
        task = (await root.post(f"/api/projects/{project}/tasks", json={"title": "T"})).json()
    async with svc.http(token("eve", "Eve")) as eve:
        cases: list[tuple[str, str, Any, int, str]] = [
            ("POST", "/api/projects", {"name": "Mine"}, 403, "Only an admin may do this"),
            ("POST", f"/api/projects/{project}/members", {"userId": "eve", "userName": "E"},
             403, "Only an admin may do this"),
            ("GET", f"/api/projects/{project}", None, 403, "No access to this project"),
            ("GET", f"/api/projects/{project}/members", None, 403, "No access to this project"),
            ("GET", f"/api/projects/{project}/tasks", None, 403, "No access to this project"),
            ("POST", f"/api/projects/{project}/tasks", {"title": "x"}, 403,
             "No access to this project"),
            ("GET", f"/api/tasks/{task['id']}", None, 403, "No access to this project"),
            ("PUT", f"/api/tasks/{task['id']}", {"status": "done"}, 403,
             "No access to this project"),
            ("GET", f"/api/projects/{project}/messages", None, 403, "No access to this project"),
            ("GET", "/api/projects/999", None, 404, "Project not found"),
            ("GET", "/api/tasks/999", None, 404, "Task not found"),
            ("PUT", "/api/tasks/999", {"status": "done"}, 404, "Task not found"),
            ("POST", "/api/notifications/999/read", None, 404, "Notification not found"),
            ("GET", "/api/no-such-route", None, 404, "Not Found"),
            ("DELETE", "/api/projects", None, 405, "Method Not Allowed"),
        ]  # fmt: skip
        for method, url, body, status, error in cases:
            response = await eve.request(method, url, json=body)
            assert (response.status_code, response.json()) == (status, {"error": error}), url
        assert (await eve.get("/api/projects")).json() == {"projects": []}
    async with svc.http(ADMIN) as root:
        task_after = (await root.get(f"/api/tasks/{task['id']}")).json()
    assert task_after == task  # nothing changed


BAD_BEFORE = f"before must be an integer from 1 to {2**53}"
NOT_MEMBER = "assigneeId is not a member of this project"
BAD_BODIES: list[tuple[str, str, Any, str]] = [
    ("POST", "/api/projects", None, "the body must be a JSON object"),
    ("POST", "/api/projects", [1], "the body must be a JSON object"),
    ("POST", "/api/projects", {}, "name must be a string"),
    ("POST", "/api/projects", {"name": "  "}, "name must not be empty"),
    ("POST", "/api/projects", {"name": "x" * 101}, "name is longer than 100 characters"),
    ("POST", "/api/projects/1/members", {"userId": "x"}, "userName must be a string"),
    ("POST", "/api/projects/1/members", {"userId": [], "userName": "X"},
     "userId must be a string"),
    ("POST", "/api/projects/1/tasks", {"title": 5}, "title must be a string"),
    ("POST", "/api/projects/1/tasks", {"title": "t", "status": "doing"},
     "status must be one of todo, in_progress, done"),
    ("POST", "/api/projects/1/tasks", {"title": "t", "assigneeId": "stranger"},
     "assigneeId is not a member of this project"),
    ("PUT", "/api/tasks/1", {}, NOTHING),
    ("PUT", "/api/tasks/1", {"version": 1}, NOTHING),
    ("PUT", "/api/tasks/1", {"position": "top"}, "position must be a finite number"),
    ("PUT", "/api/tasks/1", {"position": True}, "position must be a finite number"),
    ("PUT", "/api/tasks/1", {"position": 1e300}, BIG_POSITION),
    ("PUT", "/api/tasks/1", {"title": "x", "version": 0}, "version must be a positive integer"),
    ("PUT", "/api/tasks/1", {"colour": "red"}, "unknown fields: colour"),
    ("PUT", "/api/tasks/1", {"status": None}, "status must be one of todo, in_progress, done"),
    ("PUT", "/api/tasks/1", {"title": ""}, "title must not be empty"),
    ("PUT", "/api/tasks/1", {"assigneeId": "stranger"}, NOT_MEMBER),
    ("GET", "/api/projects/1/messages?limit=0", None, "limit must be an integer from 1 to 200"),
    ("GET", "/api/projects/1/messages?limit=abc", None, "limit must be an integer from 1 to 200"),
    ("GET", "/api/projects/1/messages?before=-1", None, BAD_BEFORE),
]  # fmt: skip


@pytest.mark.parametrize(("method", "url", "body", "error"), BAD_BODIES)
async def test_malformed_requests_get_400_and_change_nothing(
    svc: Service, method: str, url: str, body: Any, error: str
) -> None:
    project = await make_project(svc, "Original", {"ada": "Ada"}, admin="root")
    assert project == 1
    async with svc.http(ADMIN) as root:
        task = (await root.post("/api/projects/1/tasks", json={"title": "Keep"})).json()
        response = await root.request(method, url, json=body)
        assert response.status_code == 400, response.text
        assert response.json() == {"error": error}
        assert (await root.get("/api/tasks/1")).json() == task
        projects = (await root.get("/api/projects")).json()["projects"]
        assert [p["name"] for p in projects] == ["Original"]


async def test_a_body_that_is_not_json_is_a_400(svc: Service) -> None:
    async with svc.http(ADMIN) as root:
        response = await root.post(
            "/api/projects", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400
        assert response.json() == {"error": "the body must be a JSON object"}
    async with svc.http(ADMIN) as root:
        huge = await root.post("/api/projects", content=b"x" * 1_100_000)
        assert huge.status_code == 413
        assert huge.json() == {"error": "Request Entity Too Large"}
    async with svc.http(ADMIN) as root:
        assert (await root.get("/api/projects")).json() == {"projects": []}


async def test_notifications_routes(svc: Service) -> None:
    project = await make_project(svc, "N", {"ada": "Ada", "bob": "Bob"})
    async with svc.http(token("ada", "Ada")) as ada:
        for title in ("one", "two"):
            await ada.post(
                f"/api/projects/{project}/tasks", json={"title": title, "assigneeId": "bob"}
            )
    async with svc.http(token("bob")) as bob:
        listed = (await bob.get("/api/notifications")).json()["notifications"]
        titles = [n["title"] for n in listed]
        assert titles == [f"Ada assigned {q('two')} to you", f"Ada assigned {q('one')} to you"]
        assert not any(n["read"] for n in listed)
        read = await bob.post(f"/api/notifications/{listed[1]['id']}/read")
        assert read.json() == {"id": listed[1]["id"], "read": True}
        again = await bob.post(f"/api/notifications/{listed[1]['id']}/read")  # idempotent
        assert again.status_code == 200
        unread = (await bob.get("/api/notifications", params={"unread": "1"})).json()
        assert [n["title"] for n in unread["notifications"]] == [f"Ada assigned {q('two')} to you"]
    async with svc.http(token("ada")) as ada:
        assert (await ada.get("/api/notifications")).json() == {"notifications": []}
