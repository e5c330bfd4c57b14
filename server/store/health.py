"""Whether the database works: what ``/healthz`` and ``/metrics`` report.

Two signals, because each misses what the other sees:

- every store call that fails with a database error (the file cannot be read or written,
  a table is gone, the disk is full, the lock is held too long) marks the store *failing*
  for ``window`` seconds; a call that succeeds later does not hide it within that time,
  since one table may fail while another works;
- ``/healthz`` also asks the store to read its schema (:meth:`Store.ping`), which catches a
  database that fails while no client is using it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class Health:
    #: Seconds a failure keeps the store reported as failing.
    window: float = 10.0
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    #: Calls that failed with a database error, since start.
    errors: int = 0
    last_error: str = ""
    _failed_at: float = field(default=-float("inf"), repr=False)

    def failed(self, error: BaseException) -> None:
        self.errors += 1
        self.last_error = f"{type(error).__name__}: {error}"
        self._failed_at = self.clock()

    @property
    def failing(self) -> bool:
        """A call failed within the last ``window`` seconds."""
        return self.clock() - self._failed_at < self.window
