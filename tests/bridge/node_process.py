"""One bridged hub in a process of its own, for tests that kill or freeze a node.

    python -m tests.bridge.node_process --redis redis://127.0.0.1:P/0

Prints ``listening <port>`` once its bridge is connected and its hub listens.
"""

from __future__ import annotations

import argparse
import sys

import trio

from server.hub.bridge import Bridge
from tests.bridge.nodes import build_hub


async def main(redis_url: str) -> None:
    bridge = Bridge(redis_url)
    hub = build_hub(bridge)
    async with trio.open_nursery() as nursery:
        await nursery.start(bridge.run)
        await bridge.wait_connected()
        listeners = await nursery.start(hub.serve, "127.0.0.1", 0)
        print("listening", listeners[0].socket.getsockname()[1], flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", required=True)
    trio.run(main, parser.parse_args().redis)
    sys.exit(0)
