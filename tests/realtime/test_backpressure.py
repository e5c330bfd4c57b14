"""A client that stops reading: volatile events for it are dropped, then a non-volatile
one, once it has read nothing for ``slow_consumer_timeout``, closes it as a slow consumer;
/metrics counts both, and the room goes on."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trio

from tests.realtime.harness import Service, make_project, metric, serving, token


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[Service]:
    """The service without rate limits: these tests flood on purpose, to fill queues."""
    async with serving(tmp_path, rate_limits=(), slow_consumer_timeout=1.0) as service:
        yield service


async def stalled_member(svc: Service, project: int) -> tuple[httpx.AsyncClient, str]:
    """A long-polling client that joins ``project`` and then never polls again."""
    http = httpx.AsyncClient(base_url=svc.hub_url + "/socket.io/", timeout=10)
    opened = (await http.get("", params={"EIO": "4", "transport": "polling"})).text
    sid = json.loads(opened[1:])["sid"]
    params = {"EIO": "4", "transport": "polling", "sid": sid}
    await http.post("", params=params, content="40" + json.dumps({"token": token("eve", "Eve")}))
    assert (await http.get("", params=params)).text.startswith("40")
    await http.post("", params=params, content=f'421["joinProject",{project}]')
    with trio.fail_after(5):
        while '431[{"ok":true' not in (await http.get("", params=params)).text:
            pass
    return http, sid


async def test_a_client_that_stops_reading_is_dropped_then_closed(svc: Service) -> None:
    project = await make_project(svc, "Flood", {"ada": "Ada", "bob": "Bob", "eve": "Eve"})
    stalled, _ = await stalled_member(svc, project)
    ada, bob = svc.tab(token("ada", "Ada")), svc.tab(token("bob", "Bob"))
    await ada.connect()
    await bob.connect()
    try:
        await ada.call("joinProject", project)
        await bob.call("joinProject", project)
        typing = {"projectId": project, "isTyping": True}

        def flood() -> None:
            for _ in range(1100):  # more than the 1,024 packets a queue holds
                ada.client.emit("typing", typing)

        await trio.to_thread.run_sync(flood)
        await bob.next("userTyping", 1100, timeout=15)  # a reader gets them all
        async with svc.http() as http:
            with trio.fail_after(5):
                while metric((await http.get("/metrics")).text, "hub_volatile_dropped_total") < 1:
                    await trio.sleep(0.05)
            assert svc.running.hub.client_count == 3  # dropping volatile ones closes nothing
            await trio.sleep(1.0)  # the stalled client has now read nothing for that long

            answer = await ada.call("chatMessage", {"projectId": project, "message": "hi"})
            assert answer["ok"]
            (message,) = await bob.next("newMessage")
            assert message["message"] == "hi"
            metrics = (await http.get("/metrics")).text
            assert metric(metrics, "hub_slow_consumer_closes_total") == 1
            assert metric(metrics, "hub_connected_clients") == 2
        # the stalled user left the room; Ada and Bob chat on
        left = await bob.next("userLeft")
        assert left[-1]["userId"] == "eve"
    finally:
        await ada.disconnect()
        await bob.disconnect()
        await stalled.aclose()
