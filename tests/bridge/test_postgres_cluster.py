"""Two ``python -m server`` processes on one PostgreSQL database and one Redis: what several
hosts would run. Notifications made on one process while the user's tabs connect to both
reach every tab exactly once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import trio

from tests.bridge.cluster import start_cluster, tokens
from tests.bridge.redis_server import RedisServer
from tests.postgres import postgres_database
from tests.realtime.harness import Tab

NOTIFICATIONS = 40
TABS = 12


async def test_notifications_reach_each_tab_once_while_tabs_connect_to_both_processes(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    with postgres_database() as url:
        servers = await trio.to_thread.run_sync(
            lambda: start_cluster(
                tmp_path, redis_server.url, 2, "--database-url", url, "--rate-limit", "off"
            )
        )
        tabs: list[Tab] = []
        try:
            one, two = servers
            assert one.healthz()["store"] == {"status": "ok"}
            bearer = tokens()
            made: list[int] = []

            async def assign_tasks() -> None:
                # alice (on process one) assigns bob tasks: a notification for bob each
                headers = {"Authorization": f"Bearer {bearer['alice']}"}
                async with httpx.AsyncClient(base_url=one.app_url, headers=headers) as http:
                    for n in range(NOTIFICATIONS):
                        answer = await http.post(
                            "/api/projects/1/tasks", json={"title": f"t{n}", "assigneeId": "bob"}
                        )
                        assert answer.status_code == 201, answer.text
                        made.append(n)
                        await trio.sleep(0.01)

            async def open_tabs() -> None:
                # bob's tabs open one after another while the notifications are being made,
                # half of them on the process that makes them, half on the other
                for n in range(TABS):
                    tab = Tab((one, two)[n % 2].hub_url, bearer["bob"], ("websocket",))
                    tabs.append(tab)
                    await tab.connect()
                    await trio.sleep(0.03)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(assign_tasks)
                nursery.start_soon(open_tabs)
            assert len(made) == NOTIFICATIONS

            def ids(tab: Tab) -> list[Any]:
                return [n["id"] for n in tab.got("notification")]

            for tab in tabs:
                await tab.until(lambda tab=tab: len(ids(tab)) >= NOTIFICATIONS, timeout=15)
            await trio.sleep(0.5)  # anything sent twice has had time to arrive twice
            expected = sorted(ids(tabs[0]))
            assert len(set(expected)) == NOTIFICATIONS
            for tab in tabs:
                got = ids(tab)
                assert len(got) == NOTIFICATIONS, (tab.url, sorted(got))
                assert sorted(got) == expected
        finally:
            for tab in tabs:
                await tab.disconnect()
            for server in servers:
                server.stop()
