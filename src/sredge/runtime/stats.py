"""Latency statistics in constant memory, whatever the video length."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Log-spaced buckets from 1 microsecond to ~1.2 hours, 1% apart: percentiles within 1%.
_LO, _RATIO = 1e-6, 1.01
_NBUCKETS = int(math.log(4.3e3 / _LO) / math.log(_RATIO)) + 2


@dataclass(frozen=True)
class LatencySummary:
    """Percentiles of one stage, in milliseconds."""

    count: int
    mean_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float


class LatencyHistogram:
    """Streaming histogram of durations (seconds): O(1) memory, percentiles to within 1%."""

    def __init__(self) -> None:
        self._counts = np.zeros(_NBUCKETS, np.int64)
        self.count = 0
        self.total = 0.0
        self.max = 0.0

    def add(self, seconds: float) -> None:
        s = max(seconds, _LO)
        i = min(int(math.log(s / _LO) / math.log(_RATIO)) + 1, _NBUCKETS - 1)
        self._counts[i] += 1
        self.count += 1
        self.total += seconds
        self.max = max(self.max, seconds)

    def percentile(self, q: float) -> float:
        """The q-th percentile (0-100) in seconds; 0 when empty."""
        if self.count == 0:
            return 0.0
        rank = max(1, math.ceil(q / 100.0 * self.count))
        i = int(np.searchsorted(np.cumsum(self._counts), rank))
        # geometric centre of bucket i, capped by the true maximum
        return min(_LO * _RATIO ** (i - 0.5), self.max) if i > 0 else _LO

    def summary(self) -> LatencySummary:
        ms = 1e3
        return LatencySummary(
            count=self.count,
            mean_ms=(self.total / self.count * ms) if self.count else 0.0,
            p50_ms=self.percentile(50) * ms,
            p95_ms=self.percentile(95) * ms,
            p99_ms=self.percentile(99) * ms,
            max_ms=self.max * ms,
        )
