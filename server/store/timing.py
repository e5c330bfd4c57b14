"""Latency of store operations, kept as Prometheus-style cumulative histograms."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

#: Upper bounds in seconds; the last bucket (+Inf) is implied.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass(slots=True)
class Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    total: float = 0.0
    count: int = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds
        self.count += 1

    def cumulative(self) -> list[tuple[str, int]]:
        """``(le, count)`` pairs, ending with ``+Inf``."""
        out, running = [], 0
        for bound, n in zip((*map(str, BUCKETS), "+Inf"), self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out


@dataclass(slots=True)
class Latency:
    """One histogram per operation name."""

    ops: dict[str, Histogram] = field(default_factory=dict)

    def observe(self, op: str, seconds: float) -> None:
        hist = self.ops.get(op)
        if hist is None:
            hist = self.ops[op] = Histogram()
        hist.observe(seconds)
