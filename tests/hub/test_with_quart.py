"""examples/with_quart.py: the hub beside a Quart-Trio app on one port, with python-socketio's
client and plain HTTP on that same port."""

from __future__ import annotations

import time
from typing import Any

import httpx
import socketio
import trio

from examples.with_quart import app, hub
from server.http.shared_port import serve_with_app


async def test_the_app_and_the_hub_share_a_port() -> None:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(serve_with_app, hub, app, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}"

        def scenario() -> dict[str, Any]:
            got: list[Any] = []
            client = socketio.Client(reconnection=False)
            client.on("announcement", got.append)
            client.connect(url, transports=["websocket"], wait_timeout=5)
            try:
                with httpx.Client(base_url=url, timeout=5) as http:
                    index = http.get("/").text
                    refused = http.post("/announce", json={"nothing": 1}).status_code
                    sent = http.post("/announce", json={"text": "on one port"}).json()
                deadline = time.monotonic() + 5
                while not got and time.monotonic() < deadline:
                    time.sleep(0.02)
            finally:
                client.disconnect()
            return {"index": index, "refused": refused, "sent": sent, "got": got}

        result = await trio.to_thread.run_sync(scenario)
        nursery.cancel_scope.cancel()
    assert result["index"] == "1 client(s) connected\n"
    assert result["refused"] == 400
    assert result["sent"] == {"sent": True, "reached": 1}
    assert result["got"] == ["on one port"]
