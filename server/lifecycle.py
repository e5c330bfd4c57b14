"""Running until SIGINT or SIGTERM, then stopping cleanly (exit 0, no traceback)."""

from __future__ import annotations

import signal

import trio


async def cancel_on_signal(
    scope: trio.CancelScope,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> signal.Signals:
    """Wait for SIGINT or SIGTERM, then cancel ``scope``; returns the signal received."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for signum in signals:
            scope.cancel()
            return signal.Signals(signum)
    raise AssertionError("unreachable")  # pragma: no cover
