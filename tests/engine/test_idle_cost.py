"""What an idle connection keeps, pinned where it can be without measuring time or bytes of
the process: its tasks, and what its reader holds while it waits.

A task (with its coroutine frames and a nursery) is a good part of what an idle connection
costs: a WebSocket-born session is served in its connection's task, an upgraded one keeps
only its connection's task and its session's, and neither has a writer while nothing is
being written.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from types import CoroutineType
from typing import Any

import trio
import trio.lowlevel
import trio.testing
from trio.testing import MockClock

from .memory import Memory, handshake_of, memory_engine

SERVER = Path(__file__).resolve().parents[2] / "server"


def all_tasks() -> list[trio.lowlevel.Task]:
    tasks, pending = [], [trio.lowlevel.current_root_task()]
    while pending:
        task = pending.pop()
        tasks.append(task)
        for nursery in task.child_nurseries:
            pending.extend(nursery.child_tasks)
    return tasks


def server_tasks(under: Path = SERVER / "hub" / "engine") -> Counter[str]:
    """The tasks running our code now (the engine's, by default), by the function each
    runs: the clients of the tests run in tasks of their own code."""
    found: Counter[str] = Counter()
    for task in all_tasks():
        code = task.coro.cr_code
        if code.co_filename.startswith(str(under)):
            found[code.co_qualname] += 1
    return found


async def idle_websocket(mem: Memory) -> Any:
    ws = await mem.ws()
    handshake_of(await ws.recv())
    await ws.send("4hello")
    assert await ws.recv() == "4hello"
    return ws


async def test_an_idle_websocket_session_is_one_task(autojump_clock: MockClock) -> None:
    async with memory_engine() as mem:
        clients = [await idle_websocket(mem)]  # the first also starts the engine's own tasks
        await trio.testing.wait_all_tasks_blocked()
        before = server_tasks()
        clients += [await idle_websocket(mem) for _ in range(3)]
        await trio.testing.wait_all_tasks_blocked()
        # the connection's task alone: no session task, no writer, no task per handler
        assert server_tasks() - before == Counter({"EngineServer.handle_stream": 3})
        assert before["EngineServer._run_session"] == 0  # no session has a task of its own


async def test_an_idle_upgraded_session_is_two_tasks(autojump_clock: MockClock) -> None:
    async with memory_engine() as mem:
        await idle_websocket(mem)
        await trio.testing.wait_all_tasks_blocked()
        before = server_tasks()
        sid = await mem.open()
        ws = await mem.ws(sid)
        await ws.send("2probe")
        assert await ws.recv() == "3probe"
        await ws.send("5")
        await ws.send("4hello")
        assert await ws.recv() == "4hello"
        await trio.testing.wait_all_tasks_blocked()
        # the WebSocket's task and the session's (it began on polling): nothing that
        # watched the upgrade is left
        assert server_tasks() - before == Counter(
            {"EngineServer.handle_stream": 1, "EngineServer._run_session": 1}
        )


def frames_of(coro: CoroutineType[Any, Any, Any]) -> list[Any]:
    """The frames of a suspended coroutine and of those it awaits."""
    frames = []
    current: Any = coro
    while current is not None and getattr(current, "cr_frame", None) is not None:
        frames.append(current.cr_frame)
        current = current.cr_await
    return frames


async def test_an_idle_reader_holds_nothing_of_its_last_message(autojump_clock: MockClock) -> None:
    """A client that sent one large message and then went idle does not keep it in memory
    through the reader's variables."""
    async with memory_engine() as mem:
        ws = await idle_websocket(mem)
        await ws.send("4" + "x" * 600_000)
        assert len(await ws.recv()) == 600_001
        await trio.testing.wait_all_tasks_blocked()
        readers = [
            frame
            for task in all_tasks()
            for frame in frames_of(task.coro)
            if frame.f_code.co_qualname == "WebSocketTransport.read_loop"
        ]
        assert len(readers) == 1
        held = sum(sys.getsizeof(value) for value in readers[0].f_locals.values())
        assert held < 64 * 1024, {k: sys.getsizeof(v) for k, v in readers[0].f_locals.items()}
