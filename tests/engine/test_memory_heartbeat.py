"""The heartbeat on both transports, in memory and in fake time: pings at the real 25 s
interval, the 20 s ping timeout, the pong guard, and a session whose ping fails."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from trio.testing import MockClock

from server.hub.engine.session import Session

from .memory import CONFIG, Response, handshake_of, memory_engine

INTERVAL, TIMEOUT = CONFIG.ping_interval, CONFIG.ping_timeout


def since(start: float) -> float:
    return trio.current_time() - start


async def test_polling_pings_every_interval_and_times_out_without_a_pong(
    autojump_clock: MockClock,
) -> None:
    async with memory_engine() as mem:
        start = trio.current_time()
        sid = await mem.open()
        handler = mem.handler(sid)
        assert (await mem.get(sid)).text == "2"
        assert since(start) == pytest.approx(INTERVAL)
        await trio.sleep(3)  # the client takes its time to answer
        assert (await mem.post(sid, "3")).text == "ok"
        assert (await mem.get(sid)).text == "2"  # one interval after the pong
        assert since(start) == pytest.approx(2 * INTERVAL + 3)
        last = await mem.get(sid)  # no pong this time: the GET gets the CLOSE
        assert last.text == "1"
        assert since(start) == pytest.approx(2 * INTERVAL + 3 + TIMEOUT)
        await trio.testing.wait_all_tasks_blocked()
        assert handler.closed == "ping timeout"
        assert (await mem.get(sid)).json() == {"code": 1, "message": "Session ID unknown"}


async def test_websocket_pings_every_interval_and_times_out_without_a_pong(
    autojump_clock: MockClock,
) -> None:
    async with memory_engine() as mem:
        start = trio.current_time()
        ws = await mem.ws()
        sid = handshake_of(await ws.recv())["sid"]
        handler = mem.handler(sid)
        for n in (1, 2):
            assert await ws.recv() == "2"
            assert since(start) == pytest.approx(n * INTERVAL)
            await ws.send("3")
        assert await ws.recv() == "2"
        # no pong: the close frame alone, as Node's server does (no CLOSE packet)
        assert await ws.expect_closed() == []
        assert ws.close_code == 1000
        assert since(start) == pytest.approx(3 * INTERVAL + TIMEOUT)
        await trio.testing.wait_all_tasks_blocked()
        assert handler.closed == "ping timeout"


async def test_a_pong_nobody_asked_for_does_not_move_the_ping(autojump_clock: MockClock) -> None:
    async with memory_engine() as mem:
        start = trio.current_time()
        ws = await mem.ws()
        await ws.recv()
        await trio.sleep(10)
        await ws.send("3")  # unasked: ignored, the ping still comes at the interval
        assert await ws.recv() == "2"
        assert since(start) == pytest.approx(INTERVAL)
        assert len(mem.server.heartbeat.deadlines) <= 2


async def test_a_session_whose_ping_fails_ends_alone(
    autojump_clock: MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with memory_engine() as mem:
        doomed, other = await mem.open(), await mem.open()
        session = mem.session(doomed)

        send_ping = Session.send_ping

        def broken(self: Session) -> None:
            if self is session:
                raise RuntimeError("injected ping failure")
            send_ping(self)

        monkeypatch.setattr(Session, "send_ping", broken)
        got: list[Response] = []

        async def get() -> None:
            got.append(await mem.get(other))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(get)
            await trio.sleep(INTERVAL + 1)
        assert got[0].text == "2"  # the other session is pinged as ever
        assert doomed not in mem.server.sessions
        assert session.fault is not None
        assert mem.server.totals()["connection_errors"] == 1
        assert mem.server.heartbeat.deadlines.running


async def test_a_closed_session_leaves_nothing_in_the_heartbeat(autojump_clock: MockClock) -> None:
    async with memory_engine() as mem:
        sids = [await mem.open() for _ in range(10)]
        sessions: list[Session] = [mem.session(sid) for sid in sids]
        for session in sessions:
            session.close("done")
        assert all(s.heartbeat_token is None for s in sessions)
        await trio.sleep(INTERVAL + 1)  # the cancelled entries are skipped and dropped
        assert len(mem.server.heartbeat.deadlines) == 0
