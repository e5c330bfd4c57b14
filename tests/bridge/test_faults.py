"""Faults: Redis killed and restarted under traffic, and a node that dies or freezes.

Everything is real: the redis-server is SIGKILLed and started again on its port, the node
that dies is a process of its own, killed with SIGKILL.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import socketio
import trio

from server.hub.remote import RemoteSocket
from tests.bridge.cluster import start_cluster, tokens
from tests.bridge.nodes import bridged_node, wait_for
from tests.bridge.redis_server import RedisServer
from tests.hub.rawclient import RawClient, raw_client
from tests.node_harness import LineReader, stop_process

ROOT = Path(__file__).resolve().parents[2]
FAST = {"backoff": (0.05, 0.5)}


async def collect(client: RawClient, event: str, into: list[int]) -> None:
    while True:
        (value,) = await client.receive_event(event, timeout=60)
        into.append(value)


async def test_redis_killed_and_restarted_under_traffic(redis_server: RedisServer) -> None:
    async with (
        bridged_node(redis_server.url, **FAST) as one,
        bridged_node(redis_server.url, **FAST) as two,
        raw_client(one.url) as a,
        raw_client(two.url) as b,
    ):
        for client in (a, b):
            await client.emit("join", "room", ack=True)
            await client.receive()
        # each node counts the others once a second: a backlog waits for as many as it saw
        await wait_for(lambda: one.bridge.driver.peers == 2 == two.bridge.driver.peers)
        at_a: list[int] = []
        at_b: list[int] = []
        sent = 0
        async with trio.open_nursery() as traffic:

            async def send() -> None:
                nonlocal sent
                while True:
                    one.hub.to("room").emit("tick", sent)
                    sent += 1
                    await trio.sleep(0.01)

            traffic.start_soon(collect, a, "tick", at_a)
            traffic.start_soon(collect, b, "tick", at_b)
            traffic.start_soon(send)
            await wait_for(lambda: len(at_b) > 10)

            redis_server.kill()
            await wait_for(lambda: not one.bridge.healthy and not two.bridge.healthy)
            assert (one.bridge.status, two.bridge.status) == ("degraded", "degraded")
            # local delivery goes on; requests answer with this node's part, at once
            mark = sent
            await wait_for(lambda: bool(at_a) and at_a[-1] > mark + 20)
            with trio.fail_after(1):
                alone = await one.hub.fetch_sockets()
            assert [s.id for s in alone] == [a.sids["/"]]
            # what goes to the other node is kept while Redis is away, not dropped
            assert one.bridge.stats["publish_kept"] > 0
            assert one.bridge.stats["publish_dropped"] == 0
            assert one.bridge.backlog[0] > 0
            assert one.bridge.stats["disconnects"] == 1

            await trio.to_thread.run_sync(redis_server.start)
            await wait_for(lambda: one.bridge.healthy and two.bridge.healthy, timeout=10)
            # cross-node delivery resumes by itself: resubscribed, nothing restarted
            mark = sent
            await wait_for(lambda: bool(at_b) and at_b[-1] > mark + 10, timeout=10)
            traffic.cancel_scope.cancel()
        assert one.bridge.stats["connects"] == 2
        assert at_a == sorted(at_a) and at_b == sorted(at_b)
        # nothing the outage held back was lost: the other node got every tick, in order
        # (a batch being written at the kill is sent again: at most one message twice)
        missing = sorted(set(range(max(at_b) + 1)) - set(at_b))
        assert missing == [], (str(missing), one.bridge.stats)
        assert len(at_b) - len(set(at_b)) <= 1
        both = await one.hub.fetch_sockets()
        assert sorted(s.id for s in both) == sorted([a.sids["/"], b.sids["/"]])


async def test_a_frozen_redis_is_noticed_and_healed(redis_server: RedisServer) -> None:
    """SIGSTOP: connections stay open but nothing answers. The watchdog's PING times out."""
    quick = {"backoff": (0.05, 0.5), "health_interval": 0.2, "health_timeout": 0.5}
    async with (
        bridged_node(redis_server.url, **quick) as one,
        bridged_node(redis_server.url, **quick) as two,
        raw_client(one.url) as a,
        raw_client(two.url) as b,
    ):
        for client in (a, b):
            await client.emit("join", "room", ack=True)
            await client.receive()
        assert redis_server.proc is not None
        redis_server.proc.send_signal(signal.SIGSTOP)
        try:
            await wait_for(lambda: not one.bridge.healthy and not two.bridge.healthy, 10)
            one.hub.to("room").emit("local", 1)
            assert await a.receive_event("local") == [1]
        finally:
            redis_server.proc.send_signal(signal.SIGCONT)
        await wait_for(lambda: one.bridge.healthy and two.bridge.healthy, timeout=10)
        one.hub.to("room").emit("again", 2)
        assert await b.receive_event("again") == [2]
        assert await a.receive_event("again") == [2]


async def test_flush_writes_what_is_queued_and_gives_up_on_a_frozen_redis(
    redis_server: RedisServer,
) -> None:
    """What a process exiting after its drain relies on: ``flush`` returns once the queue
    is written (the key is there the moment it returns), and False at its timeout when
    Redis does not answer, so a SIGTERM never hangs on it."""
    async with bridged_node(redis_server.url, mode="streams", **FAST) as one:
        await wait_for(lambda: one.bridge.healthy, timeout=10)
        one.bridge.driver.store("flush-test", b"saved", expiry=60)
        assert await one.bridge.flush(5.0)
        assert b"saved" in redis_server.command("GET", "flush-test")
        assert redis_server.proc is not None
        redis_server.proc.send_signal(signal.SIGSTOP)
        try:
            one.bridge.driver.store("flush-test", b"not yet", expiry=60)
            started = trio.current_time()
            assert not await one.bridge.flush(0.5)
            assert trio.current_time() - started < 3  # a functional bound, not a benchmark
        finally:
            redis_server.proc.send_signal(signal.SIGCONT)
        assert await one.bridge.flush(10.0)  # the write waited, and goes once Redis is back
        assert b"not yet" in redis_server.command("GET", "flush-test")


async def test_a_node_that_starts_without_redis_joins_when_it_comes(
    redis_server: RedisServer,
) -> None:
    redis_server.kill()
    async with (
        bridged_node(redis_server.url, **FAST) as one,
        raw_client(one.url) as a,
    ):
        assert not one.bridge.healthy
        one.hub.emit("alone", 1)  # local delivery works from the start
        assert await a.receive_event("alone") == [1]
        await trio.to_thread.run_sync(redis_server.start)
        await wait_for(lambda: one.bridge.healthy, timeout=10)
        async with bridged_node(redis_server.url) as two, raw_client(two.url) as b:
            two.hub.emit("together", 2)
            assert await a.receive_event("together") == [2]
            assert await b.receive_event("together") == [2]


def _spawn_node(redis_url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.bridge.node_process", "--redis", redis_url],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )


@asynccontextmanager
async def node_process(redis_url: str) -> AsyncIterator[tuple[subprocess.Popen[str], str]]:
    proc = _spawn_node(redis_url)
    try:
        assert proc.stdout is not None
        line = await trio.to_thread.run_sync(LineReader(proc.stdout).next_line, 20.0)
        assert line is not None and line.startswith("listening "), line
        yield proc, f"http://127.0.0.1:{line.split()[1]}"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
        stop_process(proc)


async def test_a_frozen_node_is_waited_for_then_a_dead_one_is_not(
    redis_server: RedisServer,
) -> None:
    async with (
        bridged_node(redis_server.url, request_timeout=1.0) as one,
        raw_client(one.url, auth={"name": "ann"}),
        node_process(redis_server.url) as (proc, url),
        trio.open_nursery() as nursery,
    ):
        # bob's connection to the other process; it dies with the process
        bob_connected = trio.Event()

        async def bob() -> None:
            try:
                async with raw_client(url, auth={"name": "bob"}) as b:
                    bob_connected.set()
                    await b.closed(timeout=60)
            except Exception:
                pass

        nursery.start_soon(bob)
        await bob_connected.wait()
        names = sorted(s.data["name"] for s in await one.hub.fetch_sockets())
        assert names == ["ann", "bob"]
        assert any(isinstance(s, RemoteSocket) for s in await one.hub.fetch_sockets())

        proc.send_signal(signal.SIGSTOP)  # subscribed, but silent: waited for, in vain
        with trio.fail_after(5):
            names = sorted(s.data["name"] for s in await one.hub.fetch_sockets())
        assert names == ["ann"]
        assert one.bridge.stats["request_timeouts"] == 1

        proc.kill()  # dead: Redis drops its subscriptions, so no one waits for it
        proc.wait()
        await wait_for(lambda: _numsub(redis_server) == 1)
        with trio.fail_after(5):
            names = sorted(s.data["name"] for s in await one.hub.fetch_sockets())
        assert names == ["ann"]
        assert one.bridge.stats["request_timeouts"] == 1  # not waited for this time
        nursery.cancel_scope.cancel()


def _numsub(redis_server: RedisServer) -> int:
    answer = redis_server.command("PUBSUB", "NUMSUB", "socket.io-request#/#")
    return int(answer.rsplit(b":", 1)[1].strip())


def test_healthz_and_metrics_report_the_outage(redis_server: RedisServer, tmp_path: Path) -> None:
    """``python -m server`` with REDIS_URL: /healthz says degraded while Redis is away,
    /metrics counts the loss, and both heal without a restart."""
    servers = start_cluster(tmp_path, redis_server.url, 2)
    try:
        for server in servers:
            _wait(lambda s=server: s.healthz()["status"] == "ok")
            assert server.healthz()["bridge"]["status"] == "ok"
            assert server.healthz()["bridge"]["mode"] == "pubsub"
            assert server.metric("bridge_up") == 1
        for server in servers:
            _wait(lambda s=server: s.healthz()["bridge"]["nodes"] == 2)
            assert server.metric("bridge_nodes") == 2
        redis_server.kill()
        for server in servers:
            _wait(lambda s=server: s.healthz()["status"] == "degraded")
            assert server.metric("bridge_up") == 0
            assert server.metric("bridge_disconnects_total") == 1
        redis_server.start()
        for server in servers:
            _wait(lambda s=server: s.healthz()["status"] == "ok")
            assert server.metric("bridge_connects_total") == 2
    finally:
        for server in servers:
            server.stop()


def _wait(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


@pytest.mark.parametrize("adapter", ["pubsub", "streams"])
def test_nothing_published_in_an_outage_is_lost(
    redis_server: RedisServer, tmp_path: Path, adapter: str
) -> None:
    """Two ``python -m server`` processes, Alice on one and Bob on the other (python-socketio,
    the stock client). Redis is killed; Alice chats and a task changes over REST meanwhile;
    Redis comes back: Bob gets every message and the task event, once, in order. In either
    format (in streams mode the backlog goes to the stream, which node two reads on from
    where it stopped)."""
    one, two = start_cluster(tmp_path, redis_server.url, 2, "--redis-adapter", adapter)
    keys = tokens()
    alice = socketio.Client(reconnection=False)
    bob = socketio.Client(reconnection=False)
    got: list[tuple[str, object]] = []
    bob.on("newMessage", lambda m, *offset: got.append(("newMessage", m["message"])))
    bob.on("taskUpdated", lambda t, *offset: got.append(("taskUpdated", t["changes"])))
    try:
        alice.connect(one.hub_url, auth={"token": keys["alice"]}, transports=["websocket"])
        bob.connect(two.hub_url, auth={"token": keys["bob"]}, transports=["websocket"])
        assert alice.call("joinProject", 1, timeout=5)["ok"]
        assert bob.call("joinProject", 1, timeout=5)["ok"]
        time.sleep(1.5)  # the nodes have counted each other
        assert alice.call("chatMessage", {"projectId": 1, "message": "before"}, timeout=5)["ok"]
        _wait(lambda: got == [("newMessage", "before")])

        redis_server.kill()
        _wait(lambda: one.healthz()["status"] == "degraded")
        for n in range(10):
            answer = alice.call("chatMessage", {"projectId": 1, "message": f"m{n}"}, timeout=5)
            assert answer["ok"], answer
        request = urllib.request.Request(
            f"{one.app_url}/api/tasks/1",
            data=json.dumps({"status": "done"}).encode(),
            method="PUT",
            headers={
                "Authorization": f"Bearer {keys['alice']}",
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200
        backlog = one.healthz()["bridge"]["backlog"]["messages"]
        assert backlog >= 11 and one.metric("bridge_backlog_messages") == backlog
        time.sleep(1.0)  # still away
        assert got == [("newMessage", "before")]

        redis_server.start()
        expected = [("newMessage", "before")] + [("newMessage", f"m{n}") for n in range(10)]
        expected.append(("taskUpdated", {"status": "done"}))
        _wait(lambda: len(got) >= len(expected), timeout=20)
        time.sleep(0.5)  # nothing more comes
        assert got == expected
        assert one.metric("bridge_publish_dropped_total") == 0
    finally:
        for client in (alice, bob):
            client.disconnect()
        for server in (one, two):
            server.stop()


@pytest.mark.parametrize("adapter", ["pubsub", "streams"])
def test_presence_heals_when_a_node_is_killed(
    redis_server: RedisServer, tmp_path: Path, adapter: str
) -> None:
    """Bob's node is killed with -9: Alice, on the other node, is told ``userLeft`` for Bob
    (at once: the node count's period, a second), and ``onlineMembers`` no longer lists
    him. A departure that was announced is never announced again by a heal (they run every
    second here)."""
    one, two = start_cluster(
        tmp_path, redis_server.url, 2, "--presence-heal-interval", "1", "--redis-adapter", adapter
    )
    keys = tokens()
    alice = socketio.Client(reconnection=False)
    bob = socketio.Client(reconnection=False)
    left: list[dict[str, object]] = []
    alice.on("userLeft", lambda user, *offset: left.append(user))
    try:
        alice.connect(one.hub_url, auth={"token": keys["alice"]}, transports=["websocket"])
        bob.connect(two.hub_url, auth={"token": keys["bob"]}, transports=["websocket"])
        assert alice.call("joinProject", 1, timeout=5)["ok"]
        assert bob.call("joinProject", 1, timeout=5)["ok"]
        assert bob.call("leaveProject", 1, timeout=5)["ok"]  # announced by Bob's node
        _wait(lambda: len(left) == 1)
        time.sleep(1.5)  # a heal or two: nothing more
        assert len(left) == 1
        joined = bob.call("joinProject", 1, timeout=5)
        assert [m["userId"] for m in joined["onlineMembers"]] == ["alice", "bob"]
        time.sleep(1.5)  # the nodes have counted each other
        two.proc.kill()  # SIGKILL: no disconnect handler runs there
        two.proc.wait()
        started = time.monotonic()
        _wait(lambda: len(left) == 2, timeout=30)
        assert time.monotonic() - started < 10
        assert left == [{"userId": "bob", "userName": "Bob", "projectId": 1}] * 2
        again = alice.call("joinProject", 1, timeout=5)
        assert [m["userId"] for m in again["onlineMembers"]] == ["alice"]
        time.sleep(1.5)  # and only once
        assert len(left) == 2
    finally:
        for client in (alice, bob):
            client.disconnect()
        for server in (one, two):
            server.stop()
