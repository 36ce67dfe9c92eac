"""The server-side quotas: a sliding window, a fixed window aligned to the clock, a token bucket.

Each ``admit(now)`` answers None (admitted, and counted) or the whole seconds a client should
wait (>= 1, what ``Retry-After`` would say). Rejected requests take no slot, so a client
hammering a 429 does not starve itself.

* ``SlidingWindowLimit``: at most N in any W seconds: the promise a test checks directly.
* ``FixedWindowLimit``: at most N per window of W seconds, windows aligned to the wall clock
  (W = 60: the clock's minutes), which is how Capillary counts a per-minute quota. Two bursts
  either side of a boundary both pass: a client must pace, not count.
* ``TokenBucketLimit``: N tokens per W seconds refill a bucket of ``burst`` tokens, as API
  gateways meter a per-second rate: a client above the rate passes until the bucket is empty.

``now`` is ``time.monotonic()``; the fixed window turns it into wall-clock time with an
offset taken once, so a wall-clock step does not reopen a window.
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import Literal, Protocol

LimitKind = Literal["sliding", "fixed", "bucket"]
LIMIT_KINDS: tuple[LimitKind, ...] = ("sliding", "fixed", "bucket")


class Limit(Protocol):
    def admit(self, now: float) -> int | None: ...


class SlidingWindowLimit:
    """Admits at most ``limit`` requests in any ``window`` seconds."""

    __slots__ = ("_admitted", "_limit", "_window")

    def __init__(self, limit: float, window: float) -> None:
        self._limit = max(1, int(limit))
        self._window = window
        self._admitted: deque[float] = deque()

    def admit(self, now: float) -> int | None:
        admitted = self._admitted
        horizon = now - self._window
        while admitted and admitted[0] <= horizon:
            admitted.popleft()
        if len(admitted) < self._limit:
            admitted.append(now)
            return None
        return max(1, math.ceil(admitted[0] - horizon))


class FixedWindowLimit:
    """Admits at most ``limit`` requests per clock-aligned window of ``window`` seconds."""

    __slots__ = ("_count", "_current", "_limit", "_offset", "_window")

    def __init__(self, limit: float, window: float, *, wall_offset: float | None = None) -> None:
        self._limit = max(1, int(limit))
        self._window = window
        # monotonic + offset = wall clock, fixed at start (tests pass their own).
        self._offset = time.time() - time.monotonic() if wall_offset is None else wall_offset
        self._current = -1
        self._count = 0

    def admit(self, now: float) -> int | None:
        wall = now + self._offset
        index = math.floor(wall / self._window)
        if index != self._current:
            self._current, self._count = index, 0
        if self._count < self._limit:
            self._count += 1
            return None
        return max(1, math.ceil((index + 1) * self._window - wall))


class TokenBucketLimit:
    """Admits while a token is left; ``limit`` tokens per ``window`` seconds refill the bucket
    up to ``burst`` (default ``limit``). The bucket starts full."""

    __slots__ = ("_burst", "_per_second", "_stamp", "_tokens")

    def __init__(self, limit: float, window: float, burst: float | None = None) -> None:
        self._per_second = limit / window
        self._burst = max(1.0, float(limit if burst is None else burst))
        self._tokens = self._burst
        self._stamp: float | None = None

    def admit(self, now: float) -> int | None:
        if self._stamp is not None:
            elapsed = max(0.0, now - self._stamp)
            self._tokens = min(self._burst, self._tokens + elapsed * self._per_second)
        self._stamp = now
        if self._tokens >= 1:
            self._tokens -= 1
            return None
        return max(1, math.ceil((1 - self._tokens) / self._per_second))


def build_limit(kind: LimitKind, limit: float, window: float, burst: float | None = None) -> Limit:
    """The quota of ``kind`` for ``limit`` requests per ``window`` seconds."""
    if kind == "fixed":
        return FixedWindowLimit(limit, window)
    if kind == "bucket":
        return TokenBucketLimit(limit, window, burst)
    return SlidingWindowLimit(limit, window)
