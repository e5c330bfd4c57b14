"""Rate limits on incoming events: a token bucket per key (a socket, a user) and event.

A :class:`RateLimiter` is an incoming-event middleware (see
:meth:`~server.hub.namespace.Namespace.use_incoming`)::

    limiter = RateLimiter(
        {"chat": Rate(per_second=5, burst=20)},
        default=Rate(per_second=20, burst=50),
        key=lambda socket: socket.data.get("userId", socket.id),
    )
    hub.use_incoming(limiter)

Over its limit an event is refused: its handlers do not run, and if it asked for an ack it
is answered with ``answer``. A key that keeps being refused (more than ``disconnect_after``
refusals in a burst, sustained above ``disconnect_after / 10`` a second) is a flood, and the
socket that hits it is disconnected.

Why buckets and a clock instead of a task: a bucket is two floats, refilled lazily when its
key next sends, so an idle user costs nothing but a dictionary entry, and entries that have
refilled are dropped now and then.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

from server.hub.errors import EventRefused

if TYPE_CHECKING:
    from server.hub.socket import Socket

RATE_LIMITED = "Rate limit exceeded"
#: What a refused event's ack gets by default.
DEFAULT_ANSWER: dict[str, Any] = {"ok": False, "error": RATE_LIMITED}
#: The group of every event without a limit of its own (with ``default`` set).
ANY_EVENT = "*"
#: How often (seconds) buckets that have refilled are dropped.
_PRUNE_EVERY = 10.0

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*s\s*(?::\s*(\d+)\s*)?$")


@dataclass(frozen=True, slots=True)
class Rate:
    """``burst`` events at once, then ``per_second`` on average."""

    per_second: float
    burst: int

    def __post_init__(self) -> None:
        if self.per_second <= 0 or self.burst < 1:
            raise ValueError("a rate needs per_second > 0 and burst >= 1")

    @classmethod
    def parse(cls, text: str) -> Rate:
        """``"5/s:20"``: 5 a second, bursts of 20 (the burst defaults to one second's worth)."""
        match = _RATE.match(text)
        if match is None:
            raise ValueError(f"not a rate: {text!r} (expected e.g. 5/s:20)")
        per_second = float(match.group(1))
        burst = int(match.group(2)) if match.group(2) else max(1, round(per_second))
        return cls(per_second, burst)

    def __str__(self) -> str:
        return f"{self.per_second:g}/s:{self.burst}"


class _Bucket:
    __slots__ = ("at", "tokens")

    def __init__(self, tokens: float, at: float) -> None:
        self.tokens = tokens
        self.at = at


def _take(rate: Rate, bucket: _Bucket, now: float) -> bool:
    tokens = min(rate.burst, bucket.tokens + (now - bucket.at) * rate.per_second)
    bucket.at = now
    if tokens >= 1:
        bucket.tokens = tokens - 1
        return True
    bucket.tokens = tokens
    return False


def _full(rate: Rate, bucket: _Bucket, now: float) -> bool:
    return bucket.tokens + (now - bucket.at) * rate.per_second >= rate.burst


class RateLimiter:
    """Token buckets per (key, event); see the module's documentation."""

    def __init__(
        self,
        limits: Mapping[str, Rate],
        *,
        default: Rate | None = None,
        key: Callable[[Socket], Any] | None = None,
        answer: Any = DEFAULT_ANSWER,
        disconnect_after: int = 100,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        self.limits = dict(limits)
        self.default = default
        self.key = key or (lambda socket: socket.id)
        self.answer = answer
        #: Refusals a key may have in a burst before its socket is disconnected (0: never).
        self.disconnect_after = disconnect_after
        self._strikes = (
            Rate(disconnect_after / 10, disconnect_after) if disconnect_after > 0 else None
        )
        self._clock = clock
        self._buckets: dict[tuple[Any, str], _Bucket] = {}
        self._flooding: dict[Any, _Bucket] = {}
        self._pruned_at = -float("inf")
        #: ``refused:<event>`` per limited event (``*`` for the rest), and ``disconnects``.
        self.stats: Counter[str] = Counter()

    def rate_of(self, event: str) -> tuple[str, Rate] | None:
        """The group an event is counted in (itself, or ``*``) and its rate; None if free."""
        rate = self.limits.get(event)
        if rate is not None:
            return event, rate
        if self.default is not None:
            return ANY_EVENT, self.default
        return None

    def __call__(self, socket: Socket, event: str, args: tuple[Any, ...]) -> None:
        """The middleware: returns if ``event`` may go on, raises :class:`EventRefused`."""
        self.check(self.key(socket), event)

    def check(self, key: Any, event: str) -> None:
        """The same for any ``key`` (a user of a REST API, say): returns if ``event`` may
        go on, raises :class:`EventRefused` otherwise."""
        limited = self.rate_of(event)
        if limited is None:
            return
        group, rate = limited
        now = self._clock()
        if now - self._pruned_at >= _PRUNE_EVERY:
            self._prune(now)
        bucket = self._buckets.get((key, group))
        if bucket is None:
            bucket = self._buckets[(key, group)] = _Bucket(rate.burst, now)
        if _take(rate, bucket, now):
            return
        self.stats[f"refused:{group}"] += 1
        disconnect = self._strike(key, now)
        if disconnect:
            self.stats["disconnects"] += 1
        raise EventRefused(RATE_LIMITED, self.answer, disconnect=disconnect)

    def _strike(self, key: Any, now: float) -> bool:
        """One refusal more for ``key``: True when that makes it a flood."""
        strikes = self._strikes
        if strikes is None:
            return False
        bucket = self._flooding.get(key)
        if bucket is None:
            bucket = self._flooding[key] = _Bucket(strikes.burst, now)
        if _take(strikes, bucket, now):
            return False
        del self._flooding[key]  # a fresh start for the next connection
        return True

    def _prune(self, now: float) -> None:
        """Drop the buckets that have refilled: they hold nothing a new one would not."""
        self._pruned_at = now
        for (key, group), bucket in list(self._buckets.items()):
            rate = self.default if group == ANY_EVENT else self.limits.get(group)
            if rate is None or _full(rate, bucket, now):
                del self._buckets[(key, group)]
        strikes = self._strikes
        if strikes is not None:
            for key, bucket in list(self._flooding.items()):
                if _full(strikes, bucket, now):
                    del self._flooding[key]

    @property
    def tracked(self) -> int:
        """Buckets held now (for tests and monitoring)."""
        return len(self._buckets) + len(self._flooding)
