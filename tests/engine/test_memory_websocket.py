"""WebSocket sessions and the upgrade from polling, with its races, in memory and in fake
time (``autojump_clock``: the upgrade timeout is the real 10 s, and takes no time)."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from trio.testing import MockClock

from server.hub.engine import Wire
from server.hub.engine.state import State
from server.hub.engine.ticks import ticker_stats
from server.hub.engine.websocket import WebSocketTransport

from .memory import (
    CONFIG,
    Echo,
    Http,
    Memory,
    Response,
    Ws,
    handshake_of,
    memory_engine,
    target,
)

UNKNOWN_SID = {"code": 1, "message": "Session ID unknown"}
BAD_REQUEST = {"code": 3, "message": "Bad request"}


def transport_of(mem: Memory, sid: str) -> WebSocketTransport:
    transport = mem.session(sid).transport
    assert isinstance(transport, WebSocketTransport)
    return transport


# ---- a session on a WebSocket -----------------------------------------------------------------
async def test_the_websocket_handshake_opens_a_websocket_session(
    autojump_clock: MockClock,
) -> None:
    async with memory_engine() as mem:
        ws = await mem.ws()
        value = handshake_of(await ws.recv())
        assert value["upgrades"] == []
        assert (value["pingInterval"], value["pingTimeout"]) == (25_000, 20_000)
        sid = value["sid"]
        assert mem.session(sid).state is State.WEBSOCKET
        await ws.send("4hello")
        assert await ws.recv() == "4hello"
        await ws.send(b"\x01\x02")
        assert await ws.recv() == b"\x01\x02"
        transport = transport_of(mem, sid)
        # not a socket: no direct writes, everything went through the writer task
        assert transport._fd is None and not ticker_stats()["direct"]
        assert transport.writer_writes == 2
        assert not transport._writer_running  # and it ended once there was nothing left


@pytest.mark.parametrize(
    ("query", "headers", "error"),
    [
        pytest.param(target(None, "websocket"), {"upgrade": None}, BAD_REQUEST, id="no-upgrade"),
        pytest.param(target("nope", "websocket"), {}, UNKNOWN_SID, id="unknown-sid"),
        pytest.param(
            target(None, "websocket"), {"sec-websocket-version": "8"}, BAD_REQUEST, id="version"
        ),
        pytest.param(
            target(None, "websocket"), {"sec-websocket-key": None}, BAD_REQUEST, id="no-key"
        ),
    ],
)
async def test_websocket_refusals(
    autojump_clock: MockClock,
    query: str,
    headers: dict[str, str | None],
    error: dict[str, object],
) -> None:
    async with memory_engine() as mem:
        lines: dict[str, str | None] = {
            "upgrade": "websocket",
            "connection": "Upgrade",
            "sec-websocket-version": "13",
            "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        }
        lines.update(headers)
        http = Http(mem.connect())
        response = await http.request(
            "GET", query, headers=[(k, v) for k, v in lines.items() if v is not None]
        )
        assert (response.status, response.json()) == (400, error)
        assert not mem.server.sessions


async def test_a_malformed_packet_closes_with_1002(autojump_clock: MockClock) -> None:
    async with memory_engine() as mem:
        ws = await mem.ws()
        sid = handshake_of(await ws.recv())["sid"]
        handler = mem.handler(sid)
        await ws.send("abc")
        assert await ws.expect_closed() == []
        assert ws.close_code == 1002
        await trio.testing.wait_all_tasks_blocked()
        assert handler.closed == "parse error"


async def test_the_client_closing_ends_the_session(autojump_clock: MockClock) -> None:
    async with memory_engine() as mem:
        ws = await mem.ws()
        sid = handshake_of(await ws.recv())["sid"]
        handler = mem.handler(sid)
        await ws.send("1")  # CLOSE
        assert await ws.expect_closed() == []
        await trio.testing.wait_all_tasks_blocked()
        assert handler.closed == "transport close"
        assert sid not in mem.server.sessions


# ---- the upgrade --------------------------------------------------------------------------------
async def start_upgrade(mem: Memory) -> tuple[str, Ws]:
    """A polling session, and a WebSocket with its sid (accepted: upgrading)."""
    sid = await mem.open()
    ws = await mem.ws(sid)
    assert mem.session(sid).state is State.UPGRADING
    return sid, ws


async def probe(mem: Memory, sid: str, ws: Ws) -> None:
    await ws.send("2probe")
    assert await ws.recv() == "3probe"
    assert mem.session(sid).state is State.PROBED


async def test_the_upgrade_step_by_step(autojump_clock: MockClock) -> None:
    async with memory_engine() as mem:
        sid, ws = await start_upgrade(mem)
        session = mem.session(sid)
        await probe(mem, sid, ws)
        assert (await mem.get(sid)).text == "6"  # NOOP: the polling cycle ends cleanly
        session.send(Wire.messages(["queued while probing"]))  # goes out after the switch
        await ws.send("5")
        assert await ws.recv() == "4queued while probing"
        assert session.state is State.WEBSOCKET
        assert isinstance(session.transport, WebSocketTransport)
        await ws.send("4hello")
        assert await ws.recv() == "4hello"
        # polling is over for this sid
        get, post = await mem.get(sid), await mem.post(sid, "4x")
        assert (get.status, get.json()) == (400, BAD_REQUEST)
        assert (post.status, post.json()) == (400, BAD_REQUEST)
        await ws.send("4still")
        assert await ws.recv() == "4still"


async def test_a_get_pending_when_the_probe_arrives_ends_with_noop(
    autojump_clock: MockClock,
) -> None:
    async with memory_engine() as mem:
        sid, ws = await start_upgrade(mem)
        pending: list[Response] = []

        async def get() -> None:
            pending.append(await mem.get(sid))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(get)
            await trio.testing.wait_all_tasks_blocked()
            assert mem.session(sid).poll_pending and not pending  # upgrading: still waits
            await probe(mem, sid, ws)
        assert pending[0].text == "6"
        await ws.send("5")
        await ws.send("4up")
        assert await ws.recv() == "4up"


async def test_the_client_dropping_the_websocket_mid_upgrade_keeps_polling(
    autojump_clock: MockClock,
) -> None:
    async with memory_engine() as mem:
        sid, ws = await start_upgrade(mem)
        await probe(mem, sid, ws)
        await ws.stream.aclose()
        await trio.testing.wait_all_tasks_blocked()
        session = mem.session(sid)
        assert session.state is State.POLLING
        assert (await mem.post(sid, "4on polling")).status == 200
        assert (await mem.get(sid)).text == "4on polling"
        # and the upgrade can be tried again
        again = await mem.ws(sid)
        await probe(mem, sid, again)
        await again.send("5")
        await again.send("4upgraded")
        assert await again.recv() == "4upgraded"
        assert mem.session(sid).state is State.WEBSOCKET


async def test_the_client_closing_over_polling_mid_upgrade(autojump_clock: MockClock) -> None:
    """A CLOSE packet by POST while the WebSocket is upgrading: the pending GET ends with
    NOOP, the session closes, and so does the WebSocket."""
    async with memory_engine() as mem:
        sid, ws = await start_upgrade(mem)
        pending: list[Response] = []

        async def get() -> None:
            pending.append(await mem.get(sid))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(get)
            await trio.testing.wait_all_tasks_blocked()
            assert (await mem.post(sid, "1")).status == 200
        assert pending[0].text == "6"
        assert await ws.expect_closed() == []
        assert ws.close_code == 1000
        assert sid not in mem.server.sessions


async def test_the_server_closing_mid_upgrade(autojump_clock: MockClock) -> None:
    """The session closes while a WebSocket upgrades it: the CLOSE packet goes to the GET
    that waits, and the WebSocket, which never carried the session, is closed."""
    async with memory_engine() as mem:
        sid, ws = await start_upgrade(mem)
        session = mem.session(sid)
        pending: list[Response] = []

        async def get() -> None:
            pending.append(await mem.get(sid))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(get)
            await trio.testing.wait_all_tasks_blocked()
            session.close("going away")
        assert pending[0].text == "1"
        assert session.state is State.CLOSED  # its CLOSE went out: flushed
        assert await ws.expect_closed() == []


@pytest.mark.parametrize("probed", [False, True])
async def test_an_upgrade_not_completed_in_time_is_dropped(
    autojump_clock: MockClock, probed: bool
) -> None:
    async with memory_engine() as mem:
        started = trio.current_time()
        sid, ws = await start_upgrade(mem)
        if probed:
            await probe(mem, sid, ws)
        assert await ws.expect_closed() == []
        assert trio.current_time() - started == pytest.approx(CONFIG.upgrade_timeout)
        assert mem.session(sid).state is State.POLLING
        # a GET waits again, as on any polling session (no NOOP for a probe that is gone)
        with trio.move_on_after(1) as waited:
            await mem.get(sid)
        assert waited.cancelled_caught


@pytest.mark.parametrize("first", ["5", "4hello", "2", "6"])
async def test_anything_but_the_probe_first_fails_the_upgrade(
    autojump_clock: MockClock, first: str
) -> None:
    async with memory_engine() as mem:
        sid, ws = await start_upgrade(mem)
        await ws.send(first)
        assert await ws.expect_closed() == []
        assert mem.session(sid).state is State.POLLING
        assert (await mem.post(sid, "4polling")).status == 200


async def test_a_malformed_packet_mid_upgrade_closes_only_the_websocket(
    autojump_clock: MockClock,
) -> None:
    async with memory_engine() as mem:
        sid, ws = await start_upgrade(mem)
        await ws.send("abc")
        assert await ws.expect_closed() == []
        assert ws.close_code == 1002
        assert mem.session(sid).state is State.POLLING


# ---- a WebSocket for a sid that cannot be upgraded: accepted, then closed -----------------------
async def expect_accepted_then_closed(mem: Memory, sid: str) -> None:
    ws = await Ws.handshake(mem.connect(), target(sid, "websocket"))
    assert isinstance(ws, Ws), ws  # 101: the handshake succeeds ...
    assert await ws.expect_closed() == []  # ... and the server closes at once
    assert ws.close_code == 1005  # a close frame without a status code, as Node sends


async def test_a_second_websocket_after_the_upgrade(autojump_clock: MockClock) -> None:
    async with memory_engine() as mem:
        sid, ws = await start_upgrade(mem)
        await probe(mem, sid, ws)
        await ws.send("5")
        await trio.testing.wait_all_tasks_blocked()
        await expect_accepted_then_closed(mem, sid)
        await ws.send("4first")
        assert await ws.recv() == "4first"


async def test_a_second_websocket_while_one_is_upgrading(autojump_clock: MockClock) -> None:
    async with memory_engine() as mem:
        sid, ws = await start_upgrade(mem)
        await expect_accepted_then_closed(mem, sid)
        assert mem.session(sid).state is State.UPGRADING  # the first goes on
        await probe(mem, sid, ws)
        await ws.send("5")
        await ws.send("4first")
        assert await ws.recv() == "4first"


async def test_a_websocket_for_a_websocket_session(autojump_clock: MockClock) -> None:
    async with memory_engine() as mem:
        ws = await mem.ws()
        sid = handshake_of(await ws.recv())["sid"]
        await expect_accepted_then_closed(mem, sid)
        await ws.send("4first")
        assert await ws.recv() == "4first"


# ---- faults and shutdown ------------------------------------------------------------------------
async def test_a_failing_handler_ends_only_its_websocket(autojump_clock: MockClock) -> None:
    class Fragile(Echo):
        async def on_message(self, data: str | bytes) -> None:
            if data == "boom":
                raise RuntimeError("injected reader failure")
            await super().on_message(data)

    async with memory_engine(handler=Fragile) as mem:
        doomed, other = await mem.ws(), await mem.ws()
        await doomed.recv(), await other.recv()
        await doomed.send("4boom")
        await doomed.expect_closed()
        assert mem.server.totals()["connection_errors"] == 1
        await other.send("4fine")
        assert await other.recv() == "4fine"


async def test_close_all_tells_every_client(autojump_clock: MockClock) -> None:
    async with memory_engine() as mem:
        sid = await mem.open()
        ws = await mem.ws()
        await ws.recv()
        pending: list[Response] = []

        async def get() -> None:
            pending.append(await mem.get(sid))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(get)
            await trio.testing.wait_all_tasks_blocked()
            mem.server.close_all()
        # a server going away: no CLOSE packet (a final disconnect to python-socketio), so
        # the GET ends with a NOOP and the WebSocket with its close frame, and clients
        # reconnect (to another node)
        assert pending[0].text == "6"
        assert await ws.expect_closed() == []
        with trio.fail_after(CONFIG.cleanup_timeout):
            await mem.server.wait_all_closed()
        # no new sessions, by either transport
        refused = await mem.request("GET", target())
        assert (refused.status, refused.json()) == (400, BAD_REQUEST)
        refusal = await Ws.handshake(mem.connect(), target(None, "websocket"))
        assert isinstance(refusal, Response) and refusal.status == 400


class _Recorder(trio.abc.Stream):
    """The server's side of a stream, recording how much each write carried."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner
        self.writes: list[int] = []

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(len(data))
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_backlog_is_written_in_bounded_batches(autojump_clock: MockClock) -> None:
    """A client that does not read has 5 MB queued: the writer copies at most
    ``WRITE_BATCH`` of it into one write at a time; the rest stays in the queue, counted
    against its bound, and everything arrives in order once the client reads."""
    from server.hub.engine import EngineServer
    from server.hub.engine.websocket import WRITE_BATCH

    server = EngineServer(CONFIG, Echo)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run_sessions)
        client, served = trio.testing.lockstep_stream_pair()  # a write waits for the reader
        recorder = _Recorder(served)
        nursery.start_soon(server.handle_stream, recorder, None)
        ws = await Ws.handshake(client, target(transport="websocket"))
        assert isinstance(ws, Ws)
        sid = handshake_of(await ws.recv())["sid"]
        session = server.sessions[sid]
        blob = "x" * 50_000
        for n in range(100):
            assert session.send(Wire.messages([f"{n}:{blob}"]))
        await trio.sleep(1)  # the writer is blocked on its first batch
        assert session.queued_bytes >= 100 * 50_000 - WRITE_BATCH - 50_100
        got = [await ws.recv() for _ in range(100)]
        assert [str(m)[1:].split(":")[0] for m in got] == [str(n) for n in range(100)]
        assert max(recorder.writes) <= WRITE_BATCH + 50_100
        nursery.cancel_scope.cancel()
