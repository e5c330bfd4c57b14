"""The README's example works as the README says, with python-socketio's client."""

from __future__ import annotations

import time
from typing import Any

import pytest
import socketio
import trio

from examples.quickstart import hub
from tests.hub.conftest import serving


async def test_quickstart_chat() -> None:
    async with serving(hub) as url:

        def scenario() -> dict[str, Any]:
            got: dict[str, list[Any]] = {"welcome": [], "said": [], "joined": [], "typing": []}
            ada, bob = socketio.Client(reconnection=False), socketio.Client(reconnection=False)
            for event in got:
                bob.on(event, lambda *args, event=event: got[event].append(args))
            ada.on("question", lambda question: 4)
            ada.connect(url, auth={"name": "ada"}, wait_timeout=5)
            bob.connect(url, auth={"name": "bob"}, wait_timeout=5)
            try:
                assert bob.call("join", "general", timeout=5) == ["general"]
                assert ada.call("join", "general", timeout=5) == ["general"]
                ada.emit("typing", "general")
                ada.emit("say", ("general", "hi all"))
                quiz = ada.call("quiz", timeout=5)
                deadline = time.monotonic() + 5
                while not got["said"] and time.monotonic() < deadline:
                    time.sleep(0.02)
                with pytest.raises(socketio.exceptions.ConnectionError):
                    socketio.Client(reconnection=False).connect(url, wait_timeout=3)
            finally:
                ada.disconnect()
                bob.disconnect()
            return {"quiz": quiz, **got}

        got = await trio.to_thread.run_sync(scenario)
    assert got["quiz"] == "right"
    assert got["welcome"] == [("hello bob",)]
    assert got["joined"] == [("ada",)]
    assert got["typing"] == [("ada",)]
    assert got["said"] == [({"from": "ada", "text": "hi all"},)]
