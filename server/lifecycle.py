"""Running until SIGINT or SIGTERM, then stopping cleanly (exit 0, no traceback)."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Awaitable, Callable

import trio

log = logging.getLogger("server")


async def cancel_on_signal(
    scope: trio.CancelScope,
    before_cancel: Callable[[], Awaitable[None]] | None = None,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Wait for SIGINT or SIGTERM, run ``before_cancel`` (a drain), then cancel ``scope``.

    A second signal during the drain cancels at once.
    """
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for signum in signals:
            log.info("%s received: shutting down", signal.Signals(signum).name)
            break
        if before_cancel is not None:
            async with trio.open_nursery() as nursery:

                async def second_signal() -> None:
                    async for _ in signals:
                        nursery.cancel_scope.cancel()
                        return

                nursery.start_soon(second_signal)
                await before_cancel()
                nursery.cancel_scope.cancel()
    scope.cancel()


def print_dev_banner(
    app_url: str,
    hub_url: str,
    project_id: int,
    tokens: list[tuple[str, str, str]],
    public_url: str = "",
) -> None:
    """``--dev``: say how to try the server, with a token for each demo user (on stderr).
    ``public_url`` (a proxy's origin, in a cluster) is where people should go."""
    lines = [
        "",
        "--dev: development mode (demo tokens below; never use --dev in production)",
        f"  open {public_url or app_url}/ in a browser for the board (sign in as a demo user)",
        f"  app (REST): {app_url}    hub (Socket.IO): {hub_url}"
        + (f"    one origin for all: {public_url}" if public_url else ""),
        f"  demo project id: {project_id}",
    ]
    for user_id, role, token in tokens:
        lines.append(f"  token for {user_id} ({role}): {token}")
    lines.append(
        f"  more: curl -X POST {app_url}/api/dev/token -H 'Content-Type: application/json' "
        """-d '{"userId": "carol"}'"""
    )
    print("\n".join(lines) + "\n", file=sys.stderr, flush=True)
