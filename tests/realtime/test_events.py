"""Every client event, with python-socketio's client: joinProject, leaveProject,
chatMessage, typing, cursorMove, and what a malformed or unauthorised one gets back."""

from __future__ import annotations

from typing import Any

import pytest

from tests.realtime.harness import Service, make_project, token

NO_ACCESS = {"ok": False, "error": "No access to this project"}


async def two_in_a_project(svc: Service, transports: tuple[str, ...] = ("websocket",)) -> Any:
    project = await make_project(svc, "Apollo", {"ada": "Ada", "bob": "Bob"})
    ada = svc.tab(token("ada", "Ada"), transports)
    bob = svc.tab(token("bob", "Bob"), transports)
    await ada.connect()
    await bob.connect()
    assert (await ada.call("joinProject", project))["ok"]
    assert (await bob.call("joinProject", project))["ok"]
    return project, ada, bob


@pytest.mark.parametrize("transports", [("polling",), ("websocket",)], ids=["polling", "ws"])
async def test_join_chat_and_history(svc: Service, transports: tuple[str, ...]) -> None:
    project, ada, bob = await two_in_a_project(svc, transports)
    try:
        answer = await ada.call("chatMessage", {"projectId": project, "message": "hello, Bob ☀"})
        assert answer == {"ok": True, "id": answer["id"]} and isinstance(answer["id"], int)
        reply = await bob.call(
            "chatMessage", {"projectId": project, "message": "hi!", "replyTo": answer["id"]}
        )
        assert reply["ok"]
        for tab in (ada, bob):  # the room, sender included
            first, second = await tab.next("newMessage", 2)
            assert first["id"] == answer["id"]
            assert first["userId"] == "ada" and first["userName"] == "Ada"
            assert first["message"] == "hello, Bob ☀" and first["replyTo"] is None
            assert first["timestamp"].endswith("Z")
            assert second["replyTo"] == answer["id"] and second["userId"] == "bob"
    finally:
        await ada.disconnect()
        await bob.disconnect()
    async with svc.http(token("bob")) as http:
        history = (await http.get(f"/api/projects/{project}/messages")).json()["messages"]
    assert [m["message"] for m in history] == ["hi!", "hello, Bob ☀"]  # newest first


async def test_join_answers_online_members_once_per_user(svc: Service) -> None:
    project, ada, bob = await two_in_a_project(svc)
    ada2 = svc.tab(token("ada", "Ada"))
    await ada2.connect()
    try:
        answer = await ada2.call("joinProject", project)
        assert answer == {
            "ok": True,
            "onlineMembers": [
                {"userId": "ada", "userName": "Ada"},
                {"userId": "bob", "userName": "Bob"},
            ],
        }
        (event,) = await ada2.next("onlineMembers")
        assert event == {"projectId": project, "members": answer["onlineMembers"]}
        # joining again changes nothing
        assert (await ada2.call("joinProject", project))["onlineMembers"] == answer["onlineMembers"]
    finally:
        for tab in (ada, ada2, bob):
            await tab.disconnect()


async def test_a_non_member_is_refused_and_told(svc: Service) -> None:
    project = await make_project(svc, "Secret", {"ada": "Ada"})
    eve = svc.tab(token("eve", "Eve"))
    await eve.connect()
    try:
        assert await eve.call("joinProject", project) == NO_ACCESS
        (error,) = await eve.next("error")
        assert error["message"] == "No access to this project"
        assert await eve.call("joinProject", 9999) == NO_ACCESS  # no such project either
        # a socket that did not join may not post, even with a valid project id
        answer = await eve.call("chatMessage", {"projectId": project, "message": "let me in"})
        assert answer == {"ok": False, "error": "Join the project first"}
    finally:
        await eve.disconnect()
    async with svc.http(token("ada")) as http:
        history = (await http.get(f"/api/projects/{project}/messages")).json()["messages"]
    assert history == []


async def test_an_admin_may_join_any_project(svc: Service) -> None:
    project = await make_project(svc, "Any", {})
    boss = svc.tab(token("boss", "Boss", "admin"))
    await boss.connect()
    try:
        answer = await boss.call("joinProject", project)
        assert answer == {"ok": True, "onlineMembers": [{"userId": "boss", "userName": "Boss"}]}
    finally:
        await boss.disconnect()


async def test_a_member_may_not_post_to_a_project_it_has_not_joined(svc: Service) -> None:
    first = await make_project(svc, "One", {"ada": "Ada"})
    second = await make_project(svc, "Two", {"ada": "Ada"})
    ada = svc.tab(token("ada", "Ada"))
    await ada.connect()
    try:
        assert (await ada.call("joinProject", first))["ok"]
        answer = await ada.call("chatMessage", {"projectId": second, "message": "wrong room"})
        assert answer == {"ok": False, "error": "Join the project first"}
        assert await ada.call("leaveProject", first) == {"ok": True}
        answer = await ada.call("chatMessage", {"projectId": first, "message": "gone"})
        assert answer == {"ok": False, "error": "Join the project first"}
    finally:
        await ada.disconnect()


MALFORMED: list[tuple[str, tuple[Any, ...], str]] = [
    ("joinProject", (), "projectId must be a positive integer"),
    ("joinProject", ({"id": 1},), "projectId must be a positive integer"),
    ("joinProject", (-3,), "projectId must be a positive integer"),
    ("joinProject", (True,), "projectId must be a positive integer"),
    ("leaveProject", ("x",), "projectId must be a positive integer"),
    ("chatMessage", ("hello",), "payload must be an object"),
    ("chatMessage", ({"projectId": "P", "message": "x"},), "projectId must be a positive integer"),
    ("chatMessage", ({"projectId": 1, "message": 7},), "message must be a string"),
    ("chatMessage", ({"projectId": 1, "message": "   "},), "message must not be empty"),
    (
        "chatMessage",
        ({"projectId": 1, "message": "x" * 4001},),
        "message is longer than 4000 characters",
    ),
    (
        "chatMessage",
        ({"projectId": 1, "message": "x", "replyTo": "y"},),
        "replyTo must be a positive integer",
    ),
    (
        "chatMessage",
        ({"projectId": 1, "message": "x", "replyTo": 777},),
        "replyTo: no such message in this project",
    ),
    ("typing", ({"projectId": 1, "isTyping": "yes"},), "isTyping must be true or false"),
    ("typing", (None,), "payload must be an object"),
    (
        "cursorMove",
        ({"projectId": 1, "taskId": 1, "position": [1, 2]},),
        "position must be an object of at most 8 numbers",
    ),
    (
        "cursorMove",
        ({"projectId": 1, "taskId": 1, "position": {"x": "1"}},),
        "position must be an object of numbers, e.g. {x: 10, y: 20}",
    ),
    (
        "cursorMove",
        ({"projectId": 1, "taskId": {"a": 1}, "position": {"x": 1}},),
        "taskId must be a positive integer",
    ),
    ("notificationRead", ("abc",), "id must be a positive integer"),
]


async def test_malformed_payloads_get_an_error_and_lose_nothing(svc: Service) -> None:
    project, ada, bob = await two_in_a_project(svc)
    assert project == 1  # the payloads above name project 1
    try:
        for event, args, error in MALFORMED:
            assert await ada.call(event, *args) == {"ok": False, "error": error}, event
        # a message of exactly 4,000 characters is fine, and the connection lived on
        answer = await ada.call("chatMessage", {"projectId": 1, "message": "é" * 4000})
        assert answer["ok"]
        (message,) = await bob.next("newMessage")
        assert message["message"] == "é" * 4000
        assert ada.connected and bob.connected
    finally:
        await ada.disconnect()
        await bob.disconnect()
    async with svc.http(token("ada")) as http:
        history = (await http.get(f"/api/projects/{project}/messages")).json()["messages"]
    assert len(history) == 1


async def test_typing_and_cursors_reach_the_others_only(svc: Service) -> None:
    project, ada, bob = await two_in_a_project(svc)
    try:
        assert await ada.call("typing", {"projectId": project, "isTyping": True}) == {"ok": True}
        await ada.emit(
            "cursorMove", {"projectId": project, "taskId": 5, "position": {"x": 1.5, "y": 2}}
        )
        assert (await bob.next("userTyping")) == [
            {"userId": "ada", "userName": "Ada", "projectId": project, "isTyping": True}
        ]
        assert (await bob.next("cursorUpdate")) == [
            {
                "userId": "ada",
                "userName": "Ada",
                "projectId": project,
                "taskId": 5,
                "position": {"x": 1.5, "y": 2},
            }
        ]
        # the sender gets neither: a message sent after them arrives first at the sender
        await ada.call("chatMessage", {"projectId": project, "message": "marker"})
        await ada.next("newMessage")
        assert ada.got("userTyping") == [] and ada.got("cursorUpdate") == []
    finally:
        await ada.disconnect()
        await bob.disconnect()


async def test_typing_in_a_room_not_joined_is_an_error(svc: Service) -> None:
    project, ada, bob = await two_in_a_project(svc)
    outsider = svc.tab(token("ada", "Ada"))  # same user, a tab that has not joined
    await outsider.connect()
    try:
        answer = await outsider.call("typing", {"projectId": project, "isTyping": True})
        assert answer == {"ok": False, "error": "Join the project first"}
        await ada.call("chatMessage", {"projectId": project, "message": "marker"})
        await bob.next("newMessage")
        assert bob.got("userTyping") == []
    finally:
        for tab in (ada, bob, outsider):
            await tab.disconnect()


async def test_events_without_an_ack_are_fine_too(svc: Service) -> None:
    project, ada, bob = await two_in_a_project(svc)
    try:
        await ada.emit("chatMessage", {"projectId": project, "message": "fire and forget"})
        await ada.emit("chatMessage", "malformed, and nobody asked for an answer")
        (message,) = await bob.next("newMessage")
        assert message["message"] == "fire and forget"
        assert ada.connected
    finally:
        await ada.disconnect()
        await bob.disconnect()
