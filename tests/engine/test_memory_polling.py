"""Long-polling, read deadlines, handshake caps and faults, in memory and in fake time.

Every test runs on ``autojump_clock``: the engine keeps its real defaults (a 10 s header
timeout, a 30 s body timeout, a 60 s idle timeout, a 25 s ping interval), and the times
are asserted exactly.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import replace

import pytest
import trio
import trio.testing
from trio.testing import MockClock

from server.hub.engine import Wire, polling
from server.hub.engine.state import State

from .memory import (
    CONFIG,
    Closed,
    Echo,
    Http,
    Response,
    handshake_of,
    memory_engine,
    read_until_closed,
    target,
)

UNKNOWN_SID = {"code": 1, "message": "Session ID unknown"}
BAD_REQUEST = {"code": 3, "message": "Bad request"}


def status_of(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])


# ---- handshake, GET and POST -----------------------------------------------------------------
async def test_the_polling_handshake_opens_a_polling_session(autojump_clock: MockClock) -> None:
    async with memory_engine() as mem:
        response = await mem.request("GET", target())
        assert response.status == 200
        assert response.headers["content-type"] == "text/plain; charset=UTF-8"
        value = handshake_of(response.text)
        assert value == {
            "sid": value["sid"],
            "upgrades": ["websocket"],
            "pingInterval": 25_000,
            "pingTimeout": 20_000,
            "maxPayload": 1_000_000,
        }
        session = mem.session(value["sid"])
        assert session.state is State.POLLING
        assert session.request.address is None  # a memory stream has no peer address


async def test_a_get_waits_until_a_post_brings_something(autojump_clock: MockClock) -> None:
    async with memory_engine() as mem:
        sid = await mem.open()
        got: list[Response] = []

        async def get() -> None:
            got.append(await mem.get(sid))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(get)
            await trio.testing.wait_all_tasks_blocked()
            assert mem.session(sid).poll_pending and not got
            push = await mem.post(sid, "4hello\x1e4world\x1ebAQID")
            assert (push.status, push.text) == (200, "ok")
        assert got[0].status == 200
        assert got[0].text == "4hello\x1e4world\x1ebAQID"  # echoed, binary as base64
        assert mem.handler(sid).got == ["hello", "world", b"\x01\x02\x03"]


async def test_a_second_get_while_one_waits_closes_the_session(autojump_clock: MockClock) -> None:
    async with memory_engine() as mem:
        sid = await mem.open()
        first: list[Response] = []

        async def get() -> None:
            first.append(await mem.get(sid))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(get)
            await trio.testing.wait_all_tasks_blocked()
            second = await mem.get(sid)
        assert (second.status, second.json()) == (400, BAD_REQUEST)
        assert first[0].text == "1"  # CLOSE
        third = await mem.get(sid)
        assert (third.status, third.json()) == (400, UNKNOWN_SID)


@pytest.mark.parametrize("method", ["PUT", "DELETE", "HEAD"])
async def test_another_method_on_a_session_gets_500_and_the_session_lives_on(
    autojump_clock: MockClock, method: str
) -> None:
    """What Node's polling transport answers: 500, no body."""
    async with memory_engine() as mem:
        sid = await mem.open()
        response = await mem.request(method, target(sid), b"" if method == "HEAD" else b"4x")
        assert response.status == 500
        assert response.body == b""
        assert mem.session(sid).state is State.POLLING
        assert (await mem.post(sid, "4still")).status == 200
        assert (await mem.get(sid)).text == "4still"
        assert mem.server.totals()["connection_errors"] == 0


@pytest.mark.parametrize("method", ["POST", "PUT", "HEAD"])
async def test_a_handshake_with_another_method_gets_400(
    autojump_clock: MockClock, method: str
) -> None:
    async with memory_engine() as mem:
        response = await mem.request(method, target())
        assert response.status == 400
        if method != "HEAD":  # the answer to HEAD has no body
            assert response.json() == {"code": 2, "message": "Bad handshake method"}
        assert not mem.server.sessions
        assert mem.server.totals()["connection_errors"] == 0


async def test_requests_follow_each_other_on_one_connection(autojump_clock: MockClock) -> None:
    async with memory_engine() as mem:
        http = Http(mem.connect())
        opened = await http.request("GET", target())
        sid = handshake_of(opened.text)["sid"]
        assert (await http.request("POST", target(sid), b"4one")).text == "ok"
        assert (await http.request("GET", target(sid))).text == "4one"
        assert (await http.request("GET", "/elsewhere")).status == 404


async def test_a_request_pipelined_behind_a_waiting_get_is_served_after_it(
    autojump_clock: MockClock,
) -> None:
    """Bytes that come while a GET waits are kept for later: here a POST, which cannot be
    read before the GET is answered, by the ping at the end of the interval."""
    async with memory_engine() as mem:
        sid = await mem.open()
        stream = mem.connect()
        started = trio.current_time()
        await stream.send_all(
            f"GET {target(sid)} HTTP/1.1\r\nHost: t\r\n\r\n"
            f"POST {target(sid)} HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n4late".encode()
        )
        data = b""
        while not data.endswith(b"\r\n\r\nok"):
            data += await stream.receive_some(65536)
        get, post = data.split(b"HTTP/1.1 ")[1:]
        assert get.startswith(b"200 ") and get.endswith(b"\r\n\r\n2")  # the ping
        assert trio.current_time() - started == pytest.approx(CONFIG.ping_interval)
        assert post.startswith(b"200 ")
        assert mem.handler(sid).got == ["late"]


async def test_a_client_gone_during_its_get_ends_the_session(autojump_clock: MockClock) -> None:
    async with memory_engine() as mem:
        sid = await mem.open()
        session = mem.session(sid)
        stream = mem.connect()
        await Http(stream).send("GET", target(sid))
        await trio.testing.wait_all_tasks_blocked()
        assert session.poll_pending
        await stream.aclose()
        await session.wait_closed()
        assert session.close_reason == "transport error"
        assert mem.server.totals()["connection_errors"] == 0  # the client left: no fault


async def test_a_client_that_floods_its_waiting_get_is_cut_off(autojump_clock: MockClock) -> None:
    """While its GET waits, a client may send one pipelined request's worth; more ends it."""
    async with memory_engine() as mem:
        sid = await mem.open()
        stream = mem.connect()
        await Http(stream).send("GET", target(sid))
        await trio.testing.wait_all_tasks_blocked()
        budget = CONFIG.max_header_bytes + CONFIG.max_payload
        with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            for _ in range(budget // 65536 + 2):
                await stream.send_all(b"x" * 65536)
                await trio.testing.wait_all_tasks_blocked()
        assert sid not in mem.server.sessions
        assert await read_until_closed(stream) == b""  # cut off, without an answer


async def test_packets_before_a_malformed_record_are_delivered_then_it_closes(
    autojump_clock: MockClock,
) -> None:
    async with memory_engine() as mem:
        sid = await mem.open()
        handler = mem.handler(sid)
        response = await mem.post(sid, "4one\x1e4two\x1e?bad\x1e4never")
        assert (response.status, response.json()) == (400, BAD_REQUEST)
        assert handler.got == ["one", "two"]
        assert sid not in mem.server.sessions


async def test_a_big_post_is_dispatched_in_slices(
    autojump_clock: MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    ticks = 0

    class Counting(Echo):
        async def on_message(self, data: str | bytes) -> None:
            seen.append(ticks)

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await trio.lowlevel.checkpoint()

    async with memory_engine(handler=Counting) as mem:
        sid = await mem.open()
        count = 20 * polling.POST_SLICE
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ticker)
            response = await mem.post(sid, "\x1e".join(["4x"] * count))
            nursery.cancel_scope.cancel()
        assert response.status == 200
        assert len(seen) == count
        # the ticker ran between slices: at least once every other slice (trio may run the
        # POST's task last in one batch and first in the next)
        assert seen[-1] - seen[0] >= count // polling.POST_SLICE // 2 - 1


async def test_pongs_nobody_asked_for_cost_nothing(autojump_clock: MockClock) -> None:
    async with memory_engine() as mem:
        sid = await mem.open()
        assert (await mem.post(sid, "\x1e".join(["3"] * 10_000))).status == 200
        assert len(mem.server.heartbeat.deadlines) <= 2
        assert mem.session(sid).is_open


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        pytest.param([("content-length", "1000001")], b"", 413, id="content-length"),
        pytest.param([("content-type", "application/octet-stream")], b"\x01", 400, id="binary"),
    ],
)
async def test_a_broken_post_ends_the_session(
    autojump_clock: MockClock, headers: list[tuple[str, str]], body: bytes, status: int
) -> None:
    async with memory_engine() as mem:
        sid = await mem.open()
        http = Http(mem.connect())
        await http.send("POST", target(sid), body, headers, finish=False)
        response = await http.response()
        assert response.status == status
        assert response.headers["connection"] == "close"
        assert sid not in mem.server.sessions


async def test_a_post_while_another_is_sending_ends_the_session(autojump_clock: MockClock) -> None:
    async with memory_engine() as mem:
        sid = await mem.open()
        first = Http(mem.connect())
        await first.send("POST", target(sid), b"4he", [("content-length", "100")], finish=False)
        await trio.testing.wait_all_tasks_blocked()
        assert mem.session(sid).post_pending
        second = await mem.post(sid, "4second")
        assert (second.status, second.json()) == (400, BAD_REQUEST)
        assert sid not in mem.server.sessions


# ---- read deadlines --------------------------------------------------------------------------
async def test_a_connection_that_says_nothing_is_closed_after_header_timeout(
    autojump_clock: MockClock,
) -> None:
    async with memory_engine() as mem:
        stream = mem.connect_admitted()
        started = trio.current_time()
        assert await read_until_closed(stream) == b""  # nothing was asked: nothing said
        assert trio.current_time() - started == pytest.approx(CONFIG.header_timeout)
        assert mem.server.handshaking == 0


async def test_headers_dripping_in_get_408_header_timeout_after_the_connection_opened(
    autojump_clock: MockClock,
) -> None:
    async with memory_engine() as mem:
        stream = mem.connect()
        opened = trio.current_time()
        await trio.sleep(4)
        await stream.send_all(f"GET {target()} HTTP/1.1\r\nHost: t\r\n".encode())

        async def drip() -> None:
            with suppress(trio.BrokenResourceError):
                while True:  # a header line now and then does not extend the deadline
                    await trio.sleep(0.7)
                    await stream.send_all(b"X-A: b\r\n")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(drip)
            response = await read_until_closed(stream)
            nursery.cancel_scope.cancel()
        assert status_of(response) == 408
        assert trio.current_time() - opened == pytest.approx(CONFIG.header_timeout)
        assert mem.server.totals()["request_timeouts"] == 1


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_body_that_never_comes_gets_408_after_body_timeout(
    autojump_clock: MockClock, method: str
) -> None:
    async with memory_engine() as mem:
        sid = await mem.open() if method == "POST" else None
        stream = mem.connect()
        started = trio.current_time()
        await stream.send_all(
            f"{method} {target(sid)} HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n".encode()
        )
        assert status_of(await read_until_closed(stream)) == 408
        assert trio.current_time() - started == pytest.approx(CONFIG.body_timeout)
        assert mem.server.totals()["request_timeouts"] == 1
        assert not mem.server.sessions  # the POST's session is closed too; the GET opened none


async def test_an_idle_keep_alive_connection_is_closed_after_idle_timeout(
    autojump_clock: MockClock,
) -> None:
    async with memory_engine(replace(CONFIG, ping_interval=1000, ping_timeout=1000)) as mem:
        stream = mem.connect()
        http = Http(stream)
        assert (await http.request("GET", target())).status == 200
        started = trio.current_time()
        assert await read_until_closed(stream) == b""
        assert trio.current_time() - started == pytest.approx(CONFIG.idle_timeout)


async def test_a_later_request_has_header_timeout_from_its_first_byte(
    autojump_clock: MockClock,
) -> None:
    async with memory_engine(replace(CONFIG, ping_interval=1000, ping_timeout=1000)) as mem:
        stream = mem.connect()
        assert (await Http(stream).request("GET", target())).status == 200
        await trio.sleep(30)  # idle, within idle_timeout
        started = trio.current_time()
        await stream.send_all(b"GET / HTTP/1.1\r\n")
        assert status_of(await read_until_closed(stream)) == 408
        assert trio.current_time() - started == pytest.approx(CONFIG.header_timeout)


# ---- connections still handshaking ------------------------------------------------------------
async def test_past_the_cap_the_oldest_handshaking_connection_gets_503(
    autojump_clock: MockClock,
) -> None:
    config = replace(CONFIG, max_handshaking_per_address=3, max_handshaking=100)
    async with memory_engine(config) as mem:
        held = [mem.connect_admitted() for _ in range(3)]
        await trio.testing.wait_all_tasks_blocked()
        assert mem.server.handshaking == 3
        held.append(mem.connect_admitted())  # the fourth: the oldest makes room
        raw = await read_until_closed(held.pop(0))
        assert status_of(raw) == 503
        assert b"Too many connections handshaking" in raw
        assert mem.server.totals()["refused_handshaking_per_address"] == 1
        # a request that completes frees its place
        assert (await Http(held[-1]).request("GET", target())).status == 200
        assert mem.server.handshaking == 2


async def test_the_overall_cap_refuses_the_oldest_of_all(autojump_clock: MockClock) -> None:
    config = replace(CONFIG, max_handshaking_per_address=0, max_handshaking=2)
    async with memory_engine(config) as mem:
        held = [mem.connect_admitted() for _ in range(2)]
        await trio.testing.wait_all_tasks_blocked()
        held.append(mem.connect_admitted())
        assert status_of(await read_until_closed(held[0])) == 503
        assert mem.server.totals()["refused_handshaking_total"] == 1
        assert mem.server.handshaking == 2


# ---- faults ------------------------------------------------------------------------------------
async def test_a_failing_handler_ends_its_session_and_nothing_else(
    autojump_clock: MockClock,
) -> None:
    class Fragile(Echo):
        async def on_message(self, data: str | bytes) -> None:
            if data == "boom":
                raise RuntimeError("injected handler failure")
            await super().on_message(data)

    async with memory_engine(handler=Fragile) as mem:
        doomed, other = await mem.open(), await mem.open()
        with pytest.raises(Closed):  # no answer: the connection is closed
            await mem.post(doomed, "4boom")
        assert doomed not in mem.server.sessions
        assert mem.server.totals()["connection_errors"] == 1
        assert (await mem.post(other, "4fine")).status == 200
        assert (await mem.get(other)).text == "4fine"


async def test_a_get_carries_at_most_max_payload_and_the_next_the_rest(
    autojump_clock: MockClock,
) -> None:
    """3 MB queued for a polling client: each GET answers with at most ``max_payload``
    bytes of packets (the copy a response makes stays bounded), in order, none lost."""
    async with memory_engine() as mem:
        sid = await mem.open()
        session = mem.session(sid)
        blob = "y" * 100_000
        for n in range(30):
            assert session.send(Wire.messages([f"{n}:{blob}"]))
        got: list[str] = []
        while len(got) < 30:
            response = await mem.get(sid)
            assert response.status == 200
            assert len(response.body) <= CONFIG.max_payload + 100_010
            got += [record[1:].split(":")[0] for record in response.text.split("\x1e")]
        assert got == [str(n) for n in range(30)]


# ---- slow consumers ----------------------------------------------------------------------------
async def test_a_polling_client_is_slow_only_when_it_stops_asking(
    autojump_clock: MockClock,
) -> None:
    """Past its queue's bounds a polling session is kept while its client keeps polling (a
    GET waiting, or one taken within ``slow_consumer_timeout``); a client that stops asking
    is closed as a slow consumer at the next packet, and volatile packets are dropped."""
    config = replace(CONFIG, max_queue=4, slow_consumer_timeout=5.0, ping_interval=600)
    async with memory_engine(config) as mem:
        sid = handshake_of((await mem.request("GET", target())).text)["sid"]
        session = mem.session(sid)
        for n in range(10):  # past the bound, but the client has just been answered
            assert session.send(Wire.messages([f"m{n}"]))
        assert session.kept_past_bounds == 6 and session.is_open
        assert not session.send(Wire.messages(["v"]), volatile=True)
        assert session.dropped_volatile == 1
        response = await mem.request("GET", target(sid))
        assert response.text == "\x1e".join(f"4m{n}" for n in range(10))

        for n in range(4):
            session.send(Wire.messages([f"late{n}"]))
        await trio.sleep(5.0)  # no GET for 5 s: the client has stopped taking what it is sent
        assert not session.send(Wire.messages(["one more"]))
        assert session.state is State.CLOSING and session.close_reason == "slow consumer"
