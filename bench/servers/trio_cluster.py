"""Ours as one node of a cluster: the bench hub (``trio_hub``) with the Redis bridge.

python -m bench.servers.trio_cluster --port N --redis redis://127.0.0.1:P/0
"""

from __future__ import annotations

import argparse
import logging
import sys
from importlib.metadata import version

import trio

from bench.servers.trio_hub import build_hub, raise_fd_limit
from server.hub.bridge import Bridge
from server.lifecycle import cancel_on_signal


async def main(host: str, port: int, redis_url: str, max_queue: int) -> None:
    hub = build_hub(max_queue)
    bridge = Bridge(redis_url)
    bridge.install(hub)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(cancel_on_signal, nursery.cancel_scope)
            await nursery.start(bridge.run)
            with trio.fail_after(10):
                await bridge.wait_connected()
            listeners = await nursery.start(hub.serve, host, port)
            bound = listeners[0].socket.getsockname()
            print(
                f"listening {bound[0]}:{bound[1]} trio={version('trio')} "
                f"coredis={version('coredis')} bridge={bridge.uid}",
                flush=True,
            )
    finally:
        print(f"stats {dict(hub.stats)} bridge {dict(bridge.stats)}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--max-queue", type=int, default=4096)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    raise_fd_limit()
    trio.run(main, args.host, args.port, args.redis, args.max_queue)
