"""How many requests may be in flight at once: ``--concurrency N``, or ``auto``.

A fixed number of workers carries at most N / latency requests a second: 16 workers at
250 ms to a remote cluster is 64/s, whatever ``--rate`` says. ``auto`` sizes the cap by
Little's law from the rate the throttle currently allows and a high percentile of recent
answers' latency, with headroom for jitter, within ``MIN_CAP``…``MAX_CAP``; the engine
resizes it as latency changes. Without a client-side rate there is nothing to size from,
and the cap stays at ``UNLIMITED_CAP``.
"""

from __future__ import annotations

import math
from collections import Counter, deque

from bulkrevoke.values import MAX_CONCURRENCY as MAX_CAP

MIN_CAP = 1
UNLIMITED_CAP = 16
#: Latency assumed before the first answer (seconds).
ASSUMED_LATENCY = 0.05
#: Requests in flight, as a multiple of rate times latency.
HEADROOM = 1.5
PERCENTILE = 0.9
#: Recent latencies the percentile is taken over.
SAMPLES = 256


class InFlightCap:
    """The in-flight cap, its largest value and the run's latencies."""

    def __init__(self, fixed: int | None) -> None:
        self.fixed = fixed
        self.value = fixed or MIN_CAP
        self.largest = self.value
        self._recent: deque[float] = deque(maxlen=SAMPLES)
        self._milliseconds: Counter[int] = Counter()  # every answer's latency, for the median

    @property
    def most(self) -> int:
        """The most workers this cap may ever ask for."""
        return self.fixed or MAX_CAP

    def observe(self, seconds: float) -> None:
        self._recent.append(seconds)
        self._milliseconds[int(seconds * 1000)] += 1

    def resize(self, rate: float | None) -> int:
        """The cap for *rate* requests a second (None: no client-side limit)."""
        if self.fixed is not None:
            return self.value
        wanted = UNLIMITED_CAP if rate is None else math.ceil(rate * self.latency() * HEADROOM) + 1
        self.value = max(MIN_CAP, min(MAX_CAP, wanted))
        self.largest = max(self.largest, self.value)
        return self.value

    def latency(self) -> float:
        """A high percentile of recent answers' latency, in seconds."""
        if not self._recent:
            return ASSUMED_LATENCY
        ordered = sorted(self._recent)
        return ordered[min(len(ordered) - 1, int(len(ordered) * PERCENTILE))]

    def median_milliseconds(self) -> int | None:
        """The median latency of every answer observed, in whole milliseconds."""
        total = sum(self._milliseconds.values())
        if not total:
            return None
        seen = 0
        for milliseconds in sorted(self._milliseconds):
            seen += self._milliseconds[milliseconds]
            if 2 * seen >= total:
                return milliseconds
        return None  # pragma: no cover - the loop always returns
