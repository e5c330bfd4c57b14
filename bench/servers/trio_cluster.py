"""Ours as one node of a cluster: the bench hub (``trio_hub``) with the Redis bridge.

python -m bench.servers.trio_cluster --port N --redis redis://127.0.0.1:P/0
                                     [--adapter pubsub|streams] [--recovery]

In streams mode connection state recovery is on (``--recovery`` turns it on in pubsub
mode too, where it is per process), as the Node peer has it on its streams adapter.
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


async def main(
    host: str, port: int, redis_url: str, max_queue: int, adapter: str, recovery: bool
) -> None:
    bridge = Bridge(redis_url, mode=adapter)
    hub = build_hub(
        max_queue,
        adapter_factory=bridge.adapter,
        connection_state_recovery=recovery or adapter == "streams",
    )
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
                f"coredis={version('coredis')} bridge={bridge.uid} mode={bridge.mode}",
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
    parser.add_argument("--adapter", choices=("pubsub", "streams"), default="pubsub")
    parser.add_argument("--recovery", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    raise_fd_limit()
    trio.run(main, args.host, args.port, args.redis, args.max_queue, args.adapter, args.recovery)
