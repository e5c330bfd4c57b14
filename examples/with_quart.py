"""The hub beside a Quart-Trio app of your own, on one port: the app's routes and
``/socket.io/`` are served by the same listener, in the same process and nursery.

python -m examples.with_quart --port 5000

    curl -X POST localhost:5000/announce -H 'Content-Type: application/json' -d '{"text": "hi"}'

reaches every Socket.IO client connected to http://localhost:5000 as an ``announcement``.
"""

from __future__ import annotations

import argparse

import trio
from quart import jsonify, request
from quart_trio import QuartTrio

from server.http.shared_port import serve_with_app
from server.hub import Hub, Socket
from server.lifecycle import cancel_on_signal

hub = Hub()  # the page and the hub share an origin: no CORS to set
app = QuartTrio(__name__)


@hub.on("connect")
def on_connect(socket: Socket) -> None:
    socket.join("news")


@app.get("/")
async def index() -> str:
    return f"{hub.client_count} client(s) connected\n"


@app.post("/announce")
async def announce() -> tuple[object, int]:
    body = await request.get_json(silent=True)
    text = body.get("text") if isinstance(body, dict) else None
    if not isinstance(text, str):
        return jsonify({"error": "send {'text': '...'}"}), 400
    reached = hub.to("news").emit("announcement", text)
    return jsonify({"sent": True, "reached": reached}), 202


async def main(port: int) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(cancel_on_signal, nursery.cancel_scope)
        await nursery.start(serve_with_app, hub, app, "127.0.0.1", port)
        print(f"listening on http://127.0.0.1:{port} (the app, and /socket.io/)", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=5000)
    trio.run(main, parser.parse_args().port)
