"""A node killed with ``-9`` in streams mode: the stock socket.io-client, whose connection
went through a TCP proxy to that node, comes back through the proxy on another node,
recovered: same id, its project room, and every chat message it missed, in order (once,
but for node two's last few that node one delivered after its last entry that reached the
stream, when Alice's last packet is one of node one's that never did).

Node's streams adapter cannot do this (its session is written when the old node sees the
socket go, which a killed node never does); ours writes it while the socket is connected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

from server.hub.protocol import socketio as sio
from tests.bridge.cluster import start_cluster, tokens
from tests.bridge.redis_server import RedisServer
from tests.bridge.tcp_proxy import tcp_proxy
from tests.driven import DrivenClient, node_client
from tests.hub.rawclient import RawClient, raw_client


async def call(client: RawClient, event: str, *args: Any) -> Any:
    """Emit with an ack and return the answer, whatever else arrives meanwhile."""
    ack_id = await client.emit(event, *args, ack=True)
    with trio.fail_after(10):
        while True:
            packet = await client.receive(10)
            if packet.type is sio.PacketType.ACK and packet.id == ack_id:
                return packet.data[0] if packet.data else None


def chat_texts_in(seen: list[dict[str, Any]]) -> list[str]:
    return [
        m["args"][0]["message"] for m in seen if m["type"] == "event" and m["name"] == "newMessage"
    ]


def chat_texts(alice: DrivenClient) -> list[str]:
    return chat_texts_in(alice.seen)


async def test_a_client_whose_node_is_killed_comes_back_recovered_on_another(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    one, two = await trio.to_thread.run_sync(
        start_cluster,
        tmp_path,
        redis_server.url,
        2,
        "--redis-adapter",
        "streams",
        "--rate-limit",
        "chatMessage=100/s:100",
    )
    keys = tokens()
    try:
        async with (
            tcp_proxy(one.hub_port) as proxy,
            node_client(proxy.url, "websocket", {"token": keys["alice"]}) as alice,
            raw_client(one.hub_url, auth={"token": keys["bob"]}) as bob_on_one,
            raw_client(two.hub_url, auth={"token": keys["bob"]}) as bob_on_two,
        ):
            first = await alice.expect(lambda m: m["type"] == "connect")
            await alice.command(cmd="call", event="joinProject", args=[1])
            joined = await alice.expect(lambda m: m["type"] == "ack")
            assert joined["value"]["ok"], joined
            for bob in (bob_on_one, bob_on_two):
                assert (await call(bob, "joinProject", 1))["ok"]
            # messages from both nodes while all is well
            for n in range(4):
                bob = bob_on_one if n % 2 else bob_on_two
                assert (await call(bob, "chatMessage", {"projectId": 1, "message": f"before {n}"}))[
                    "ok"
                ]
            with trio.fail_after(10):
                while len(chat_texts(alice)) < 4:
                    await alice.expect(lambda m: m["type"] == "event")
            sent: list[str] = []
            sent_on_one: list[str] = []

            async def keep_sending() -> None:
                for n in range(40):
                    text = f"from two {n}"
                    answer = await call(
                        bob_on_two, "chatMessage", {"projectId": 1, "message": text}
                    )
                    assert answer["ok"], answer
                    sent.append(text)
                    await trio.sleep(0.03)

            async def send_on_one_until_it_dies() -> None:
                # node one's own broadcasts reach Alice at once, between node two's (which
                # node one reads from the stream): the restore must not give them again
                try:
                    for n in range(1000):
                        text = f"from one {n}"
                        await bob_on_one.emit("chatMessage", {"projectId": 1, "message": text})
                        sent_on_one.append(text)
                        await trio.sleep(0.02)
                except Exception:
                    return  # its node is gone

            async with trio.open_nursery() as nursery:
                nursery.start_soon(keep_sending)
                nursery.start_soon(send_on_one_until_it_dies)
                with trio.fail_after(10):
                    while len(chat_texts(alice)) < 16:
                        await alice.expect(lambda m: m["type"] == "event")
                # node one dies: no disconnect handler runs, no session is written there
                one.proc.kill()
                await trio.to_thread.run_sync(one.proc.wait)
                proxy.switch(two.hub_port)
                await proxy.cut()  # whatever the proxy still holds to the dead node
                again = await alice.expect(lambda m: m["type"] == "connect", timeout=15)
                assert again == {"type": "connect", "id": first["id"], "recovered": True}
            # every message from node two, in order; node one's it had, once
            with trio.fail_after(10):
                while len({t for t in chat_texts(alice) if t.startswith("from two")}) < len(sent):
                    await alice.expect(lambda m: m["type"] == "event")
            await trio.sleep(0.5)  # nothing more comes
            reconnect = [i for i, m in enumerate(alice.seen) if m["type"] == "connect"][1]
            before, after = (
                chat_texts_in(alice.seen[:reconnect]),
                chat_texts_in(alice.seen[reconnect:]),
            )
            assert len(before) == len(set(before)) and len(after) == len(set(after))
            # When the last message Alice got from node one never reached the stream (still
            # queued when it was killed), node two's that node one delivered after its last
            # written entry may come again: the last few before the cut, and only those.
            again = [t for t in after if t in before]
            from_two_before = [t for t in before if t.startswith("from two")]
            assert again == from_two_before[len(from_two_before) - len(again) :], again
            texts = before + [t for t in after if t not in before]
            assert sorted(texts[:4]) == [f"before {n}" for n in range(4)]
            assert [t for t in texts if t.startswith("from two")] == sent
            from_one = [t for t in texts if t.startswith("from one")]
            assert from_one == sent_on_one[: len(from_one)] and len(from_one) >= 3
            # still in its project room on node two
            await call(bob_on_two, "chatMessage", {"projectId": 1, "message": "after"})
            await alice.expect(lambda m: m["type"] == "event" and m["name"] == "newMessage")
            assert chat_texts(alice)[-1] == "after"
    finally:
        for server in (one, two):
            server.stop()


@pytest.mark.parametrize("transports", ["websocket", "polling"])
async def test_after_a_graceful_shutdown_the_client_is_recovered_on_another_node(
    redis_server: RedisServer, tmp_path: Path, transports: str
) -> None:
    """Node one is stopped (SIGTERM: it ends its connections as Node's ``io.close()``
    does, and writes each session); the stock client comes back through the proxy on node
    two, recovered, with what was said meanwhile."""
    one, two = await trio.to_thread.run_sync(
        start_cluster, tmp_path, redis_server.url, 2, "--redis-adapter", "streams"
    )
    keys = tokens()
    try:
        async with (
            tcp_proxy(one.hub_port) as proxy,
            node_client(proxy.url, transports, {"token": keys["alice"]}) as alice,
            raw_client(two.hub_url, auth={"token": keys["bob"]}) as bob,
        ):
            first = await alice.expect(lambda m: m["type"] == "connect")
            await alice.command(cmd="call", event="joinProject", args=[1])
            assert (await alice.expect(lambda m: m["type"] == "ack"))["value"]["ok"]
            assert (await call(bob, "joinProject", 1))["ok"]
            assert (await call(bob, "chatMessage", {"projectId": 1, "message": "one"}))["ok"]
            await alice.expect(lambda m: m["type"] == "event" and m["name"] == "newMessage")
            proxy.switch(two.hub_port)
            await trio.to_thread.run_sync(one.stop)  # SIGTERM, and waits for the exit
            assert (await call(bob, "chatMessage", {"projectId": 1, "message": "two"}))["ok"]
            again = await alice.expect(lambda m: m["type"] == "connect", timeout=15)
            assert again == {"type": "connect", "id": first["id"], "recovered": True}
            await alice.expect(lambda m: m["type"] == "event" and m["name"] == "newMessage")
            assert chat_texts(alice) == ["one", "two"]
    finally:
        for server in (one, two):
            server.stop()
