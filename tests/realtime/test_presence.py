"""Presence is per user: a second tab is no arrival, and a user leaves with their last tab
(by leaveProject or by disconnecting)."""

from __future__ import annotations

from tests.realtime.harness import Service, make_project, metric, token


async def test_second_tab_is_not_a_new_arrival_and_last_tab_leaves(svc: Service) -> None:
    project = await make_project(svc, "Presence", {"ada": "Ada", "bob": "Bob"})
    bob = svc.tab(token("bob", "Bob"))
    ada1, ada2 = svc.tab(token("ada", "Ada")), svc.tab(token("ada", "Ada"))
    for tab in (bob, ada1, ada2):
        await tab.connect()
    try:
        assert (await bob.call("joinProject", project))["ok"]
        assert (await ada1.call("joinProject", project))["ok"]
        joined = await bob.next("userJoined")
        assert joined == [{"userId": "ada", "userName": "Ada", "projectId": project}]

        assert (await ada2.call("joinProject", project))["ok"]  # a second tab
        await ada1.call("chatMessage", {"projectId": project, "message": "marker 1"})
        await bob.next("newMessage", 1)
        assert len(bob.got("userJoined")) == 1, "a second tab was announced as an arrival"
        assert ada1.got("userJoined") == []  # the first tab is the same user

        await ada1.disconnect()  # one tab goes: Ada is still here
        await ada2.call("chatMessage", {"projectId": project, "message": "marker 2"})
        await bob.next("newMessage", 2)
        assert bob.got("userLeft") == []

        assert await ada2.call("leaveProject", project) == {"ok": True}  # the last one
        left = await bob.next("userLeft")
        assert left == [{"userId": "ada", "userName": "Ada", "projectId": project}]
        answer = await bob.call("joinProject", project)
        assert answer["onlineMembers"] == [{"userId": "bob", "userName": "Bob"}]
    finally:
        for tab in (bob, ada1, ada2):
            if tab.connected:
                await tab.disconnect()


async def test_disconnecting_counts_as_leaving(svc: Service) -> None:
    project = await make_project(svc, "Bye", {"ada": "Ada", "bob": "Bob"})
    ada, bob = svc.tab(token("ada", "Ada")), svc.tab(token("bob", "Bob"))
    await ada.connect()
    await bob.connect()
    try:
        await bob.call("joinProject", project)
        await ada.call("joinProject", project)
        await bob.next("userJoined")
        async with svc.http() as http:
            metrics = (await http.get("/metrics")).text
        assert metric(metrics, f'realtime_project_room_users{{project="{project}"}}') == 2
        await ada.disconnect()
        left = await bob.next("userLeft")
        assert left == [{"userId": "ada", "userName": "Ada", "projectId": project}]
        assert svc.running.realtime.room_users() == {project: 1}
    finally:
        await bob.disconnect()
    await bob.until(lambda: svc.running.realtime.room_users() == {})


async def test_members_list_shows_who_is_online(svc: Service) -> None:
    project = await make_project(svc, "Who", {"ada": "Ada", "bob": "Bob"})
    ada = svc.tab(token("ada", "Ada"))
    await ada.connect()
    try:
        await ada.call("joinProject", project)
        async with svc.http(token("bob")) as http:
            members = (await http.get(f"/api/projects/{project}/members")).json()["members"]
        online = {m["userId"]: m["online"] for m in members}
        assert online == {"admin": False, "ada": True, "bob": False}
    finally:
        await ada.disconnect()
