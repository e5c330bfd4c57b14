"""Connection state recovery, with the stock socket.io-client and with our raw client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import trio

from server.hub import ConnectRefused, Hub, RecoveryDeclined, Socket
from server.hub.recovery import RecoveryStore
from tests.driven import node_client
from tests.hub.conftest import serving
from tests.hub.rawclient import raw_client


def recovering_hub(**options: Any) -> tuple[Hub, list[Socket]]:
    hub = Hub(connection_state_recovery=True, **options)
    sockets: list[Socket] = []

    @hub.on("connect")
    def on_connect(socket: Socket) -> None:
        sockets.append(socket)
        if not socket.recovered:
            socket.join("project:1")
            socket.data["user"] = socket.handshake.auth.get("user")

    return hub, sockets


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.01)


async def left_behind(
    hub: Hub, sockets: list[Socket], url: str, auth: dict[str, Any] | None = None
) -> tuple[str, str]:
    """A first client connects (the hub's first socket), gets one ``tick`` and goes away:
    the pid and offset a resume would send."""
    async with raw_client(url, auth=auth) as first:
        await until(lambda: len(sockets) == 1)
        hub.to("project:1").emit("tick", 0)
        await first.receive_event("tick")
        pid, offset = first.pids["/"], first.offsets["/"]
    await until(lambda: not sockets[0].connected)
    return pid, offset


def plain(args_of_events: list[list[Any]]) -> list[Any]:
    """The stock client hands the offset to listeners as a last argument: drop it."""
    return [args[0] for args in args_of_events]


@pytest.mark.parametrize("transports", ["polling", "websocket", "polling,websocket"])
async def test_the_stock_client_gets_back_its_rooms_data_and_missed_events(
    transports: str,
) -> None:
    hub, sockets = recovering_hub()
    async with serving(hub) as url, node_client(url, transports, {"user": "ann"}) as client:
        first = await client.expect(lambda m: m["type"] == "connect")
        assert first["recovered"] is False
        await until(lambda: len(sockets) == 1)
        before = sockets[0]
        for n in range(5):
            hub.to("project:1").emit("tick", n)
        assert plain(await client.events("tick", 5)) == [0, 1, 2, 3, 4]

        await client.command(cmd="cut")
        await until(lambda: not before.connected)
        # what happens while the client is away: room broadcasts, a direct emit to its id,
        # and packets that are not for it or cannot be kept
        for n in range(5, 10):
            hub.to("project:1").emit("tick", n)
        hub.to(before.id).emit("direct", "to you")
        hub.to("project:2").emit("tick", "not yours")
        hub.volatile.emit("tick", "volatile, not kept")

        again = await client.expect(lambda m: m["type"] == "connect")
        assert again == {"type": "connect", "id": before.id, "recovered": True}
        missed = []
        while len(missed) < 6:
            message = await client.expect(lambda m: m["type"] == "event")
            missed.append((message["name"], message["args"][0]))
        assert missed == [("tick", n) for n in range(5, 10)] + [("direct", "to you")]

        await until(lambda: len(sockets) == 2)
        after = sockets[1]
        assert after.recovered and after.id == before.id and after.pid == before.pid
        assert after.data == {"user": "ann"}
        assert "project:1" in after.rooms
        # and it is in its room again: the next broadcast arrives, nothing twice
        hub.to("project:1").emit("tick", 10)
        assert plain(await client.events("tick", 1)) == [10]
        ticks = [m["args"][0] for m in client.seen if m.get("name") == "tick"]
        assert ticks == list(range(11))


async def test_a_client_closed_as_a_slow_consumer_recovers_every_event_once() -> None:
    """Polling: the queue is what a burst fills. The burst closes the session as a slow
    consumer; the client reconnects and gets every event exactly once, in order."""
    hub, sockets = recovering_hub(max_queue=8)
    async with serving(hub) as url, node_client(url, "polling", {"user": "bob"}) as client:
        await client.expect(lambda m: m["type"] == "connect")
        await until(lambda: len(sockets) == 1)
        for n in range(40):  # no checkpoint: more than max_queue for a polling session
            hub.to("project:1").emit("tick", n)
        assert not sockets[0].client.session.is_open
        assert sockets[0].client.session.close_reason == "slow consumer"
        reconnected = await client.expect(lambda m: m["type"] == "connect")
        assert reconnected["recovered"] is True
        # everything not received before the cut arrives after it
        assert plain(await client.events("tick", 40)) == list(range(40))
        with trio.move_on_after(0.3):  # and nothing more comes
            extra = await client.expect(lambda m: m["type"] != "connect")
            raise AssertionError(f"unexpected after the recovery: {extra}")
        disconnects = [m for m in client.seen if m["type"] == "disconnect"]
        assert len(disconnects) == 1


async def test_a_session_is_restored_once_and_not_after_it_expires() -> None:
    hub, sockets = recovering_hub(max_disconnection_duration=0.5)
    async with serving(hub) as url:
        pid, offset = await left_behind(hub, sockets, url)
        hub.to("project:1").emit("tick", 1)

        async with raw_client(url, auth={"pid": pid, "offset": offset}) as second:
            assert second.sids["/"] == sockets[0].id and second.pids["/"] == pid
            assert await second.receive_event("tick") == [1]
            # the same pid again while the session is back in use: a fresh socket
            async with raw_client(url, auth={"pid": pid, "offset": offset}) as copy:
                assert copy.sids["/"] != sockets[0].id
                await until(lambda: len(sockets) == 3)
                assert not sockets[2].recovered
            last_offset = second.offsets["/"]
        await until(lambda: not any(s.connected for s in sockets))
        await trio.sleep(0.6)  # past max_disconnection_duration
        async with raw_client(url, auth={"pid": pid, "offset": last_offset}) as late:
            assert late.sids["/"] != sockets[0].id
        recovery = hub.main.adapter.recovery
        assert recovery is not None
        assert recovery.restored == 1
        assert recovery.misses["unknown"] == 1 and recovery.misses["expired"] == 1


async def test_an_offset_that_left_the_buffer_gives_a_fresh_session() -> None:
    """Recovery is all or nothing: if some missed packet is gone, the client starts over."""
    hub, sockets = recovering_hub(recovery_buffer=5)
    async with serving(hub) as url:
        pid, offset = await left_behind(hub, sockets, url)
        for n in range(1, 8):  # 7 missed, 5 kept
            hub.to("project:1").emit("tick", n)
        async with raw_client(url, auth={"pid": pid, "offset": offset}) as second:
            assert second.sids["/"] != sockets[0].id
            assert not sockets[1].recovered and "project:1" in sockets[1].rooms
        recovery = hub.main.adapter.recovery
        assert recovery is not None and recovery.misses["offset"] == 1


@pytest.mark.parametrize("skips", [True, False])
async def test_middlewares_are_skipped_on_recovery_unless_asked_for(skips: bool) -> None:
    hub, sockets = recovering_hub(recovery_skips_middlewares=skips)
    calls: list[bool] = []

    @hub.use
    def count(socket: Socket) -> None:
        calls.append(True)
        if socket.handshake.auth.get("refuse"):
            raise ConnectRefused("refused")

    async with serving(hub) as url:
        pid, offset = await left_behind(hub, sockets, url)
        auth = {"pid": pid, "offset": offset, "refuse": True}
        async with raw_client(url, nsp=None) as second:
            answer = await second.connect_namespace("/", auth)
            if skips:
                assert answer.data["sid"] == sockets[0].id and len(calls) == 1
            else:
                assert answer.data == {"message": "refused"} and len(calls) == 2


async def test_without_recovery_no_pid_and_no_offsets() -> None:
    hub = Hub()
    async with serving(hub) as url, raw_client(url) as client:
        assert "/" not in client.pids
        hub.emit("tick", "x")
        assert await client.receive_event("tick") == ["x"]
        assert "/" not in client.offsets


def test_the_buffer_is_bounded_by_count_and_age() -> None:
    from server.hub.adapter import BroadcastOptions
    from server.hub.engine import Wire

    now = [0.0]
    store = RecoveryStore(max_disconnection_duration=10.0, max_packets=3, clock=lambda: now[0])
    opts = BroadcastOptions(rooms=frozenset({"r"}))
    offsets = []
    for n in range(5):
        offsets.append(store.next_offset())
        store.store(opts, Wire.messages([f'2["e",{n}]']))
    assert store.packet_count == 3
    store.save("sid", "pid", {"sid", "r"}, {}, 0)
    restored = store.restore("pid", offsets[1])  # packets 2, 3, 4 are still here
    assert restored is not None and len(store.missed(restored)) == 3
    store.save("sid", "pid", {"sid", "r"}, {}, 0)
    assert store.restore("pid", offsets[0]) is None  # packet 1 is gone
    store.save("sid", "pid", {"sid", "r"}, {}, 0)
    now[0] = 11.0
    assert store.restore("pid", offsets[4]) is None and store.misses["expired"] == 1
    assert store.packet_count == 0  # every packet is older than 10 s now
    store.save("old", "old-pid", {"old"}, {}, 0)
    now[0] = 22.0
    store.save("new", "new-pid", {"new"}, {}, 0)  # saving drops the expired sessions
    assert store.session_count == 1
    assert store.restore("pid", "garbage") is None


def test_the_rooms_of_the_sessions_waiting_are_known_until_they_go() -> None:
    """What a cluster node asks before it skips a room message with no member here."""
    now = [0.0]
    store = RecoveryStore(max_disconnection_duration=10.0, max_packets=10, clock=lambda: now[0])
    assert not store.awaited("") and not store.awaited("r")
    store.save("a", "pa", {"a", "r"}, {}, 0)
    store.save("b", "pb", {"b", "r", "s"}, {}, 0)
    assert store.awaited("") and store.awaited("r") and store.awaited("s")
    assert not store.awaited("t")
    restored = store.restore("pb", None)
    assert restored is not None
    assert store.awaited("r") and not store.awaited("s")
    store.put_back(restored)  # the restore did not complete
    assert store.awaited("s")
    store.save("b", "pb", {"b"}, {}, 0)  # saved again, out of its rooms now
    assert not store.awaited("s") and store.awaited("r")
    now[0] = 11.0  # both sessions expire
    assert not store.awaited("r") and not store.awaited("") and store.session_count == 0


def test_the_buffer_is_bounded_by_bytes_and_keeps_one_encoding() -> None:
    from server.hub.adapter import BroadcastOptions
    from server.hub.engine import Wire

    store = RecoveryStore(10.0, max_packets=10_000, max_bytes=100_000)
    opts = BroadcastOptions(rooms=frozenset({"r"}))
    chat = "😀" * 4000  # the longest chat message, 16 KB of UTF-8
    for n in range(20):
        store.store(opts, Wire.messages([f'2["newMessage",{n},"{chat}"]']))
    kept = store.packet_count
    assert 0 < kept < 20 and store.bytes <= 100_000
    # each packet is its frames alone: the size the bound counts is all it holds
    wire = Wire.messages([f'2["e","{chat}"]'])
    assert not hasattr(wire, "__dict__") and set(Wire.__slots__) == {"count", "frames", "is_close"}
    assert wire.nbytes == len(wire.frames) < len(chat.encode()) + 32


async def test_a_declined_recovery_leaves_the_session_to_its_owner() -> None:
    """A middleware declines a resume (the token names another user than the session's):
    that client gets a socket of its own, and the session stays for its owner, who still
    comes back to it with what it missed."""
    hub, sockets = recovering_hub(recovery_skips_middlewares=False)

    @hub.use
    def same_user(socket: Socket) -> None:
        if socket.recovered and socket.data.get("user") != socket.handshake.auth.get("user"):
            raise RecoveryDeclined

    async with serving(hub) as url:
        pid, offset = await left_behind(hub, sockets, url, {"user": "ada"})
        hub.to("project:1").emit("tick", 1)
        async with raw_client(url, auth={"user": "bob", "pid": pid, "offset": offset}) as other:
            assert other.sids["/"] != sockets[0].id
            await until(lambda: len(sockets) == 2)
            assert not sockets[1].recovered and sockets[1].data["user"] == "bob"
        async with raw_client(url, auth={"user": "ada", "pid": pid, "offset": offset}) as owner:
            assert owner.sids["/"] == sockets[0].id
            assert await owner.receive_event("tick") == [1]
