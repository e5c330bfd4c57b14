"""The FIFO deadline queue (``engine/deadlines.py``), in fake time."""

from __future__ import annotations

import gc
import weakref
from collections import Counter

import pytest
import trio
import trio.lowlevel
import trio.testing

from server.hub.engine import deadlines as deadlines_module
from server.hub.engine.deadlines import Deadlines


class Item:
    def __init__(self, name: str) -> None:
        self.name = name


async def test_deadlines_fire_in_time_order_across_timeouts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fired: list[tuple[str, float]] = []
    queue: Deadlines[str] = Deadlines()

    def fire(name: str) -> None:
        fired.append((name, trio.current_time()))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(queue.run)
        start = trio.current_time()
        queue.add(10, fire, "a10")
        queue.add(3, fire, "b3")  # earlier than what is queued: wakes the task
        await trio.sleep(1)
        queue.add(10, fire, "c10")  # same timeout, later: after a10
        queue.add(3, fire, "d3")
        await trio.sleep(20)
        nursery.cancel_scope.cancel()
    assert [(name, when - start) for name, when in fired] == [
        ("b3", 3),
        ("d3", 4),
        ("a10", 10),
        ("c10", 11),
    ]
    assert len(queue) == 0


async def test_a_cancelled_deadline_is_skipped_and_lets_go_of_its_item(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fired: list[str] = []
    queue: Deadlines[Item] = Deadlines()
    item = Item("dropped")
    ref = weakref.ref(item)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(queue.run)
        entry = queue.add(5, lambda i: fired.append(i.name), item)
        queue.add(5, lambda i: fired.append(i.name), Item("kept"))
        assert entry.pending
        entry.cancel()
        entry.cancel()  # idempotent
        assert not entry.pending
        assert len(queue) == 2  # still held, as a skipped entry
        del item
        gc.collect()
        assert ref() is None  # the queue does not keep it alive until its time
        await trio.sleep(6)
        nursery.cancel_scope.cancel()
    assert fired == ["kept"]


async def test_a_failing_callback_is_reported_and_the_rest_still_fire(
    autojump_clock: trio.testing.MockClock,
) -> None:
    failures: list[tuple[str, str]] = []
    fired: list[str] = []

    def fire(name: str) -> None:
        if name == "bad":
            raise RuntimeError("boom")
        fired.append(name)

    queue: Deadlines[str] = Deadlines(failed=lambda name, exc: failures.append((name, str(exc))))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(queue.run)
        for name in ("one", "bad", "two"):
            queue.add(1, fire, name)
        await trio.sleep(2)
        assert queue.running  # the task lives on
        nursery.cancel_scope.cancel()
    assert fired == ["one", "two"]
    assert failures == [("bad", "boom")]


async def test_a_second_run_never_fires_twice_and_takes_over_when_the_first_ends(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fired: list[str] = []
    queue: Deadlines[str] = Deadlines()
    async with trio.open_nursery() as nursery:
        first = trio.CancelScope()

        async def run_first() -> None:
            with first:
                await queue.run()

        nursery.start_soon(run_first)
        nursery.start_soon(queue.run)  # a second server on the same queue
        nursery.start_soon(queue.run)
        queue.add(1, fired.append, "once")
        await trio.sleep(2)
        assert fired == ["once"]
        first.cancel()  # the first runner goes: another one takes over
        await trio.lowlevel.checkpoint()
        queue.add(1, fired.append, "after")
        await trio.sleep(2)
        assert queue.running
        nursery.cancel_scope.cancel()
    assert fired == ["once", "after"]
    assert not queue.running


async def test_a_burst_is_fired_in_slices(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Thousands due at one instant do not hold the loop: another task runs in between."""
    monkeypatch.setattr(deadlines_module, "FIRE_SLICE", 100)
    ticks = 0
    seen: list[int] = []
    queue: Deadlines[int] = Deadlines()

    async def ticker() -> None:
        nonlocal ticks
        while len(seen) < 1000:
            ticks += 1
            await trio.lowlevel.checkpoint()

    for n in range(1000):
        queue.add(0, lambda _: seen.append(ticks), n)  # all due at once
    async with trio.open_nursery() as nursery:
        nursery.start_soon(queue.run)
        nursery.start_soon(ticker)
        with trio.fail_after(5):
            while len(seen) < 1000:
                await trio.lowlevel.checkpoint()
        nursery.cancel_scope.cancel()
    assert len(seen) == 1000
    # a slice of 100, then a checkpoint: the ticker ran at least every other slice (trio
    # may schedule the queue's task last in one batch and first in the next)
    assert max(Counter(seen).values()) <= 200


async def test_deadlines_added_by_a_callback_fire_in_their_turn(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The heartbeat's shape: a ping's callback adds the pong's deadline."""
    times: list[float] = []
    queue: Deadlines[int] = Deadlines()

    def step(n: int) -> None:
        times.append(trio.current_time())
        if n < 3:
            queue.add(2, step, n + 1)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(queue.run)
        start = trio.current_time()
        queue.add(5, step, 0)
        await trio.sleep(20)
        nursery.cancel_scope.cancel()
    assert [t - start for t in times] == [5, 7, 9, 11]
