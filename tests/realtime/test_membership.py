"""Memberships are remembered for a burst of joins, and forgotten on every node when one is
taken away."""

from __future__ import annotations

from pathlib import Path

import trio

from tests.bridge.redis_server import RedisServer
from tests.realtime.harness import (
    Service,
    Tab,
    behind_the_back,
    make_project,
    metric,
    serving,
    token,
)


async def joined_then_taken_away(svc: Service, ada: Tab, project: int) -> None:
    """Ada joins, then loses her membership behind the service's back: she may still join,
    because the node she is on remembers it."""
    assert (await ada.call("joinProject", project))["ok"]
    behind_the_back(svc, "DELETE FROM members WHERE project_id = ? AND user_id = ?", project, "ada")
    assert (await ada.call("joinProject", project))["ok"]


async def test_a_burst_of_joins_asks_the_store_once_per_member(svc: Service) -> None:
    project = await make_project(svc, "Remembered", {"ada": "Ada"})
    access = svc.running.realtime.access
    tabs = [svc.tab(token("ada", "Ada")) for _ in range(3)]
    for tab in tabs:
        await tab.connect()
    try:
        queries, hits = access.queries, access.hits
        for tab in tabs:
            assert (await tab.call("joinProject", project))["ok"]
        assert (access.queries - queries, access.hits - hits) == (1, 2)
        # a non-member is asked about every time: absence is never remembered
        eve = svc.tab(token("eve", "Eve"))
        await eve.connect()
        for _ in range(2):
            assert not (await eve.call("joinProject", project))["ok"]
        assert access.queries - queries == 3
        await eve.disconnect()
        async with svc.http() as http:
            metrics = (await http.get("/metrics")).text
        assert metric(metrics, 'realtime_membership_checks_total{how="remembered"}') == access.hits
    finally:
        for tab in tabs:
            await tab.disconnect()


async def test_a_membership_taken_away_is_forgotten(svc: Service) -> None:
    project = await make_project(svc, "Taken", {"ada": "Ada"})
    realtime = svc.running.realtime
    ada = svc.tab(token("ada", "Ada"))
    await ada.connect()
    try:
        await joined_then_taken_away(svc, ada, project)
        realtime.membership_changed(project, "ada")
        assert not (await ada.call("joinProject", project))["ok"]
    finally:
        await ada.disconnect()


async def test_every_node_forgets_a_membership_taken_away_on_another(tmp_path: Path) -> None:
    """Two processes' worth of service on one Redis and one database: a removal announced
    on one node makes the other ask the store again."""
    redis = RedisServer(tmp_path)
    redis.start()
    try:
        await two_nodes_forget(tmp_path, redis.url)
    finally:
        redis.kill()


async def two_nodes_forget(tmp_path: Path, redis_url: str) -> None:
    shared = {"redis_url": redis_url, "database_url": f"sqlite:///{tmp_path}/app.db"}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    async with (
        serving(tmp_path / "a", **shared) as a,
        serving(tmp_path / "b", **shared) as b,
    ):
        project = await make_project(a, "Two nodes", {"ada": "Ada"})
        ada = b.tab(token("ada", "Ada"))
        await ada.connect()
        try:
            await joined_then_taken_away(b, ada, project)
            a.running.realtime.membership_changed(project, "ada")
            with trio.fail_after(10):
                while (await ada.call("joinProject", project))["ok"]:
                    await trio.sleep(0.05)
        finally:
            await ada.disconnect()


async def test_a_member_removed_on_one_node_leaves_the_room_on_another(tmp_path: Path) -> None:
    """The REST call that removes Bob reaches one node; his socket is on the other, which
    takes it out of the room, so the project's messages no longer reach him."""
    redis = RedisServer(tmp_path)
    redis.start()
    try:
        shared = {"redis_url": redis.url, "database_url": f"sqlite:///{tmp_path}/app.db"}
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        async with (
            serving(tmp_path / "a", **shared) as a,
            serving(tmp_path / "b", **shared) as b,
        ):
            project = await make_project(a, "Two nodes", {"ada": "Ada", "bob": "Bob"})
            ada, bob = a.tab(token("ada", "Ada")), b.tab(token("bob", "Bob"))
            for tab in (ada, bob):
                await tab.connect()
            try:
                for tab in (ada, bob):
                    assert (await tab.call("joinProject", project))["ok"]
                async with a.http(token("root", role="admin")) as http:
                    removed = await http.delete(f"/api/projects/{project}/members/bob")
                    assert removed.status_code == 204
                assert await bob.next("projectRemoved") == [{"projectId": project}]
                left = await ada.next("userLeft")
                assert left == [{"userId": "bob", "userName": "Bob", "projectId": project}]
                with trio.fail_after(10):  # node b heard of it through Redis
                    while project in b.running.realtime.rooms:
                        await trio.sleep(0.05)
                await ada.call("chatMessage", {"projectId": project, "message": "after"})
                await ada.next("newMessage")
                await bob.call("leaveProject", project)  # a round trip to Bob's socket
                assert bob.got("newMessage") == []
                assert not (await bob.call("joinProject", project))["ok"]
            finally:
                for tab in (ada, bob):
                    await tab.disconnect()
    finally:
        redis.kill()
