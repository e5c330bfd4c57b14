"""Rate limits on incoming events: the token buckets (in fake time), and the limiter as a
hub middleware with python-socketio's stock client."""

from __future__ import annotations

import time
from typing import Any

import pytest
import socketio
import trio

from server.hub import EventRefused, Hub, Rate, RateLimiter, Socket
from server.hub.ratelimit import DEFAULT_ANSWER
from tests.hub.conftest import serving


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Fake:
    """What the limiter reads of a socket: its id and ``data``."""

    def __init__(self, sid: str, user: str | None = None) -> None:
        self.id = sid
        self.data = {"userId": user} if user else {}


def allowed(limiter: RateLimiter, socket: Any, event: str, times: int) -> int:
    ok = 0
    for _ in range(times):
        try:
            limiter(socket, event, ())
            ok += 1
        except EventRefused:
            pass
    return ok


def test_rates_parse_as_the_command_line_writes_them() -> None:
    assert Rate.parse("5/s:20") == Rate(5, 20)
    assert Rate.parse(" 0.5 / s ") == Rate(0.5, 1)
    assert Rate.parse("60/s") == Rate(60, 60)
    assert str(Rate(5, 20)) == "5/s:20"
    for bad in ("5", "5/m:2", "-1/s", "0/s:3", "5/s:0", "x/s"):
        with pytest.raises(ValueError):
            Rate.parse(bad)


def test_a_burst_then_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter({"chat": Rate(5, 20)}, clock=clock, disconnect_after=0)
    ada = Fake("s1")
    assert allowed(limiter, ada, "chat", 25) == 20
    clock.now += 1.0  # five more tokens
    assert allowed(limiter, ada, "chat", 10) == 5
    clock.now += 100  # refilled, but never past the burst
    assert allowed(limiter, ada, "chat", 30) == 20
    assert limiter.stats["refused:chat"] == 5 + 5 + 10
    assert allowed(limiter, ada, "other", 1000) == 1000  # no limit, no default: free


def test_keys_and_events_have_their_own_buckets_and_the_rest_share_default() -> None:
    clock = Clock()
    limiter = RateLimiter(
        {"chat": Rate(1, 2)},
        default=Rate(1, 3),
        key=lambda s: s.data.get("userId", s.id),
        clock=clock,
        disconnect_after=0,
    )
    tab1, tab2, bob = Fake("s1", "ada"), Fake("s2", "ada"), Fake("s3", "bob")
    assert allowed(limiter, tab1, "chat", 1) + allowed(limiter, tab2, "chat", 5) == 2  # one user
    assert allowed(limiter, bob, "chat", 5) == 2
    # every other event counts against one shared default bucket per user
    assert allowed(limiter, tab1, "a", 2) + allowed(limiter, tab1, "b", 5) == 3
    assert limiter.stats["refused:*"] == 4


def test_a_key_that_keeps_flooding_is_told_to_disconnect() -> None:
    clock = Clock()
    limiter = RateLimiter({"chat": Rate(1, 1)}, clock=clock, disconnect_after=10)
    ada = Fake("s1")
    limiter(ada, "chat", ())
    refusals = []
    for _ in range(11):
        with pytest.raises(EventRefused) as refused:
            limiter(ada, "chat", ())
        refusals.append(refused.value)
    assert [r.disconnect for r in refusals] == [False] * 10 + [True]
    assert refusals[0].answer == DEFAULT_ANSWER
    assert limiter.stats["disconnects"] == 1
    # refusals spread out (below a tenth of the burst a second) are no flood
    clock.now += 100
    limiter(ada, "chat", ())
    for _ in range(30):
        clock.now += 0.5  # half a token: every other event is refused
        try:
            limiter(ada, "chat", ())
        except EventRefused as refusal:
            assert not refusal.disconnect


def test_buckets_that_have_refilled_are_dropped() -> None:
    clock = Clock()
    limiter = RateLimiter({"chat": Rate(10, 10)}, clock=clock)
    for n in range(1000):
        limiter(Fake(f"s{n}"), "chat", ())
    assert limiter.tracked == 1000
    clock.now += 60
    limiter(Fake("late"), "chat", ())  # the first call after 10 s prunes
    assert limiter.tracked == 1


def limited_hub(limiter: RateLimiter) -> tuple[Hub, list[int]]:
    hub = Hub()
    hub.use_incoming(limiter)
    ran: list[int] = []

    @hub.on("chat")
    async def chat(socket: Socket, n: int) -> dict[str, Any]:
        ran.append(n)
        return {"ok": True, "n": n}

    return hub, ran


async def test_the_limiter_refuses_over_the_wire_with_the_stock_client() -> None:
    limiter = RateLimiter({"chat": Rate(1, 5)}, disconnect_after=0)
    hub, ran = limited_hub(limiter)
    async with serving(hub) as url:

        def scenario() -> list[Any]:
            client = socketio.Client(reconnection=False)
            client.connect(url, transports=["websocket"], wait_timeout=5)
            try:
                answers = [client.call("chat", n, timeout=5) for n in range(8)]
                for n in range(100, 110):  # no ack: refused ones are dropped unanswered
                    client.emit("chat", n)
                time.sleep(0.2)
                return answers
            finally:
                client.disconnect()

        answers = await trio.to_thread.run_sync(scenario)
    assert answers[:5] == [{"ok": True, "n": n} for n in range(5)]
    assert answers[5:] == [DEFAULT_ANSWER] * 3
    assert ran[:5] == [0, 1, 2, 3, 4]
    assert len(ran) <= 6  # at most one token came back meanwhile
    assert hub.stats["events_refused"] == 8 + 10 - len(ran)


async def test_a_flooding_socket_is_disconnected_and_does_not_come_back_by_itself() -> None:
    limiter = RateLimiter({"chat": Rate(1, 2)}, disconnect_after=20)
    hub, ran = limited_hub(limiter)
    async with serving(hub) as url:

        def scenario() -> list[str]:
            reasons: list[str] = []
            client = socketio.Client(reconnection=True)
            client.on("disconnect", lambda *reason: reasons.append(str(reason)))
            client.connect(url, transports=["websocket"], wait_timeout=5)
            for n in range(200):
                if not client.connected:
                    break
                client.emit("chat", n)
            until = time.monotonic() + 5
            while client.connected and time.monotonic() < until:
                time.sleep(0.02)
            time.sleep(0.3)  # would it reconnect by itself? it must not
            connected = client.connected
            client.disconnect()
            return [*reasons, f"connected={connected}"]

        outcome = await trio.to_thread.run_sync(scenario)
    *reasons, connected = outcome
    assert reasons and connected == "connected=False"  # disconnected, and it stayed so
    assert limiter.stats["disconnects"] == 1
    assert 2 <= len(ran) <= 3  # the burst, and at most a token refilled meanwhile
