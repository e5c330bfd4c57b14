"""Running until SIGINT or SIGTERM, then stopping cleanly (exit 0, no traceback)."""

from __future__ import annotations

import logging
import signal
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
