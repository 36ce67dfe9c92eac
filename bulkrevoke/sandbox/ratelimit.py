"""The server-side rate limit: at most N admitted requests in any sliding window.

A sliding log rather than a token bucket, because that is the promise a test checks
("never more than N in any W seconds") and the one a per-minute API quota makes.
Rejected requests take no slot, so a client hammering a 429 does not starve itself.
"""

from __future__ import annotations

import math
from collections import deque


class SlidingWindowLimit:
    """Admits at most ``limit`` requests in any ``window`` seconds."""

    __slots__ = ("_admitted", "_limit", "_window")

    def __init__(self, limit: float, window: float) -> None:
        self._limit = max(1, int(limit))
        self._window = window
        self._admitted: deque[float] = deque()

    def admit(self, now: float) -> int | None:
        """None if admitted (and counted), else whole seconds until a slot frees (>= 1)."""
        admitted = self._admitted
        horizon = now - self._window
        while admitted and admitted[0] <= horizon:
            admitted.popleft()
        if len(admitted) < self._limit:
            admitted.append(now)
            return None
        return max(1, math.ceil(admitted[0] - horizon))
