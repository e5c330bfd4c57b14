"""What the board needs of the service: task versions and order, deleting tasks, members
added and removed live, @mentions, and notifications a person can read."""

from __future__ import annotations

from typing import Any

import trio

from tests.realtime.harness import Service, Tab, make_project, token

ADMIN = token("root", "Root", role="admin")


def q(title: str) -> str:
    return f"\u201c{title}\u201d"


async def new_task(svc: Service, project: int, who: str, **fields: Any) -> dict[str, Any]:
    async with svc.http(token(who, who.capitalize())) as http:
        response = await http.post(f"/api/projects/{project}/tasks", json=fields)
        assert response.status_code == 201, response.text
        task: dict[str, Any] = response.json()
        return task


async def put(svc: Service, who: str, task_id: int, **fields: Any) -> Any:
    async with svc.http(token(who, who.capitalize())) as http:
        return await http.put(f"/api/tasks/{task_id}", json=fields)


async def joined(svc: Service, project: int, *users: str) -> list[Tab]:
    tabs = [svc.tab(token(u, u.capitalize())) for u in users]
    for tab in tabs:
        await tab.connect()
        assert (await tab.call("joinProject", project))["ok"]
    return tabs


async def test_a_stale_update_is_refused_with_the_current_task(svc: Service) -> None:
    """Two people move the same card from the version they saw: the first wins, the second
    gets 409 with the task as it is now, and nothing of theirs is applied."""
    project = await make_project(svc, "Race", {"ada": "Ada", "bob": "Bob"})
    task = await new_task(svc, project, "ada", title="Contested")
    assert (task["version"], task["position"]) == (1, 1.0)
    first = await put(svc, "ada", task["id"], status="done", position=0.5, version=1)
    assert first.status_code == 200
    assert (first.json()["version"], first.json()["status"]) == (2, "done")
    second = await put(svc, "bob", task["id"], status="in_progress", version=1)
    assert second.status_code == 409
    assert second.json() == {"error": "Conflict: the task was changed", "task": first.json()}
    # a client that read the new version may go on
    third = await put(svc, "bob", task["id"], title="Agreed", version=2)
    assert third.status_code == 200 and third.json()["version"] == 3


async def test_cards_keep_their_order_and_a_move_is_broadcast(svc: Service) -> None:
    project = await make_project(svc, "Order", {"ada": "Ada", "bob": "Bob"})
    *_, c = [await new_task(svc, project, "ada", title=t) for t in "abc"]
    (bob,) = await joined(svc, project, "bob")
    try:
        # c goes between a and b, in Done
        moved = await put(svc, "ada", c["id"], status="done", position=1.5, version=1)
        assert moved.status_code == 200
        (event,) = await bob.next("taskUpdated")
        assert event["changes"] == {"status": "done", "position": 1.5}
        assert event["task"]["position"] == 1.5 and event["task"]["version"] == 2
        async with svc.http(token("bob", "Bob")) as http:
            tasks = (await http.get(f"/api/projects/{project}/tasks")).json()["tasks"]
        assert [t["title"] for t in tasks] == ["a", "c", "b"]
    finally:
        await bob.disconnect()


async def test_a_deleted_task_is_gone_for_the_room(svc: Service) -> None:
    project = await make_project(svc, "Delete", {"ada": "Ada", "bob": "Bob"})
    task = await new_task(svc, project, "ada", title="Doomed")
    (bob,) = await joined(svc, project, "bob")
    try:
        async with svc.http(token("eve", "Eve")) as eve:
            assert (await eve.delete(f"/api/tasks/{task['id']}")).status_code == 403
        async with svc.http(token("ada", "Ada")) as http:
            assert (await http.delete(f"/api/tasks/{task['id']}")).status_code == 204
            assert (await http.get(f"/api/tasks/{task['id']}")).status_code == 404
            assert (await http.delete(f"/api/tasks/{task['id']}")).status_code == 404
        (event,) = await bob.next("taskDeleted")
        assert event == {
            "taskId": task["id"],
            "projectId": project,
            "deletedBy": {"userId": "ada", "userName": "Ada"},
        }
    finally:
        await bob.disconnect()


async def test_members_added_and_removed_live(svc: Service) -> None:
    """An admin creates a project and adds Bob: Bob's tabs hear of it at once; removed, Bob
    leaves the room (he hears nothing more of it, and may not join again), and the room hears
    that he left."""
    root, ada, bob = svc.tab(ADMIN), svc.tab(token("ada", "Ada")), svc.tab(token("bob", "Bob"))
    for tab in (root, ada, bob):
        await tab.connect()
    try:
        async with svc.http(ADMIN) as http:
            created = (await http.post("/api/projects", json={"name": "Live"})).json()
            project = created["id"]
            [added] = await root.next("projectAdded")
            assert added == {"project": created}
            for user in ("ada", "bob"):
                answer = await http.post(
                    f"/api/projects/{project}/members",
                    json={"userId": user, "userName": user.capitalize()},
                )
                assert answer.status_code == 201
            assert (await bob.next("projectAdded")) == [{"project": created}]
            assert (await ada.call("joinProject", project))["ok"]
            assert (await bob.call("joinProject", project))["ok"]
            await http.post(
                f"/api/projects/{project}/members", json={"userId": "cy", "userName": "Cy"}
            )
            added_event = {"projectId": project, "userId": "cy", "userName": "Cy"}
            assert (await ada.next("memberAdded")) == [added_event]
            removed = await http.delete(f"/api/projects/{project}/members/bob")
            assert removed.status_code == 204
            missing = await http.delete(f"/api/projects/{project}/members/bob")
            assert missing.status_code == 404
        assert (await bob.next("projectRemoved")) == [{"projectId": project}]
        assert (await ada.next("memberRemoved")) == [{"projectId": project, "userId": "bob"}]
        left = await ada.next("userLeft")
        assert left == [{"userId": "bob", "userName": "Bob", "projectId": project}]
        # Bob's socket is out of the room: Ada's message does not reach him
        await ada.call("chatMessage", {"projectId": project, "message": "after"})
        await ada.next("newMessage")
        await bob.call("leaveProject", project)  # a round trip to Bob's socket
        assert bob.got("newMessage") == []
        refused = await bob.call("joinProject", project)
        assert refused == {"ok": False, "error": "No access to this project"}
        async with svc.http(token("bob", "Bob")) as http:
            assert (await http.get("/api/projects")).json() == {"projects": []}
        await trio.sleep(0.2)
        assert len(ada.got("userLeft")) == 1  # told once
    finally:
        for tab in (root, ada, bob):
            await tab.disconnect()


async def test_only_an_admin_adds_or_removes_members(svc: Service) -> None:
    project = await make_project(svc, "Guarded", {"ada": "Ada", "bob": "Bob"})
    async with svc.http(token("ada", "Ada")) as http:
        response = await http.delete(f"/api/projects/{project}/members/bob")
        assert response.status_code == 403
    async with svc.http(ADMIN) as http:
        assert (await http.delete("/api/projects/999/members/bob")).status_code == 404


async def test_a_mention_notifies_the_member_even_offline(svc: Service) -> None:
    project = await make_project(svc, "Talk", {"ada": "Ada", "bob": "Bob", "carol": "Carol Ann"})
    (ada,) = await joined(svc, project, "ada")
    try:
        text = "@bob and @carol ann: see this; @eve is not here, nor @ada's self"
        answer = await ada.call("chatMessage", {"projectId": project, "message": text})
        assert answer["ok"]
        (message,) = await ada.next("newMessage")
        # members only (not eve), in order; the sender mentions herself, unnotified
        assert message["mentions"] == ["bob", "carol", "ada"]
        plain = await ada.call("chatMessage", {"projectId": project, "message": "no one"})
        assert plain["ok"]
        assert (await ada.next("newMessage", 2))[1]["mentions"] == []
    finally:
        await ada.disconnect()
    carol = svc.tab(token("carol", "Carol Ann"))
    await carol.connect()  # offline when mentioned: the notification waited
    try:
        (note,) = await carol.next("notification")
        assert note["type"] == "mention"
        assert note["title"] == "Ada mentioned you"
        assert note["body"] == text
        assert note["link"] == f"/projects/{project}/messages/{answer['id']}"
    finally:
        await carol.disconnect()
    async with svc.http(token("eve", "Eve")) as http:
        assert (await http.get("/api/notifications")).json() == {"notifications": []}
    async with svc.http(token("ada", "Ada")) as http:
        assert (await http.get("/api/notifications")).json() == {"notifications": []}


async def test_notifications_say_what_happened(svc: Service) -> None:
    project = await make_project(svc, "Words", {"ada": "Ada", "bob": "Bob"})
    task = await new_task(svc, project, "ada", title="Write tests", assigneeId="bob")
    assert (await put(svc, "ada", task["id"], status="done")).status_code == 200
    assert (await put(svc, "ada", task["id"], title="Write more tests")).status_code == 200
    assert (await put(svc, "ada", task["id"], description="all of them")).status_code == 200
    assert (await put(svc, "ada", task["id"], position=7)).status_code == 200  # no note
    async with svc.http(token("bob", "Bob")) as http:
        notes = (await http.get("/api/notifications")).json()["notifications"]
    assert [n["title"] for n in reversed(notes)] == [
        f"Ada assigned {q('Write tests')} to you",
        f"Ada moved {q('Write tests')} to Done",
        f"Ada renamed {q('Write tests')} to {q('Write more tests')}",
        f"Ada changed the description of {q('Write more tests')}",
    ]
    assert {n["body"] for n in notes} == {"Words"}
    assert {n["link"] for n in notes} == {f"/projects/{project}/tasks/{task['id']}"}
