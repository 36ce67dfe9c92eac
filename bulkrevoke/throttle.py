"""The client-side rate limit, shared by every worker.

* A smooth schedule from aiolimiter: a bucket holding 1.5 requests' worth, leaking at
  the rate less a 0.5 % margin, and taken full by the first request, so there is no
  start-up burst and a window of T seconds holds at most 1.5 + 0.995·rate·T requests as
  they leave: at 200/s, 200 in any second, which leaves room for the network to bunch
  them on the way without the server seeing more than ``rate + 1``.
* A shared pause: a 429 (or 503) with ``Retry-After`` stops *every* worker until then.
* Adaptive rate, in the spirit of AWS SDKs' adaptive retry mode: each throttled answer
  halves the rate (down to a floor); the rate then climbs back linearly to ``--rate``.
"""

from __future__ import annotations

import asyncio

from aiolimiter import AsyncLimiter

from .config import RateLimit

#: Bucket capacity in requests. Above one, so that a waiter the event loop wakes late (by
#: up to half an interval: a millisecond is common on a busy machine) does not lose its
#: slot and the achieved rate stays at --rate; below two, so that a one-second window
#: never holds more than rate + 1.
CAPACITY = 1.5
#: The schedule runs this share below --rate. Requests leave on schedule, but arrive a few
#: milliseconds apart or together as the network and the server's own scheduling have it:
#: without the margin, a server counting arrivals saw rate + 2 in one second.
MARGIN = 0.005
#: Multiplicative decrease on a throttled answer, and the floor as a share of --rate.
DECREASE = 0.5
FLOOR = 0.05
#: Additive recovery: share of --rate regained per second since the last throttle.
RECOVERY_PER_SECOND = 0.05


class Throttle:
    def __init__(self, rate: RateLimit) -> None:
        self.max_rate = rate.per_second
        self._rate = rate.per_second
        self._limiter = self._new_limiter(self._rate)
        self._fresh = True  # the next acquisition fills the bucket: no burst at start
        self._pause_until = 0.0
        self._last_decrease_at = 0.0
        self._rate_at_decrease: float = self._rate or 0.0
        self.throttled = 0

    @property
    def current_rate(self) -> float | None:
        return self._rate

    @staticmethod
    def _new_limiter(rate: float | None) -> AsyncLimiter | None:
        if rate is None:
            return None
        return AsyncLimiter(CAPACITY, CAPACITY / (rate * (1 - MARGIN)))

    def must_wait(self) -> bool:
        """False when a request may go at once (no limit, no pause): the hot path of an
        unlimited run skips the wait entirely."""
        return self._limiter is not None or self._pause_until > 0.0

    async def acquire(self) -> None:
        """Wait for the shared pause, then for this request's slot in the schedule."""
        loop_time = asyncio.get_running_loop().time
        while True:
            wait = self._pause_until - loop_time()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            limiter = self._limiter
            if limiter is None:
                return
            amount, self._fresh = (CAPACITY if self._fresh else 1.0), False
            await limiter.acquire(amount)
            # A pause or a rate change that began while we queued takes precedence.
            if limiter is self._limiter and loop_time() >= self._pause_until:
                return

    def on_throttled(self, retry_after: float | None, cap: float) -> None:
        """A 429 (or 503 with Retry-After): pause everyone, and slow down."""
        self.throttled += 1
        now = asyncio.get_running_loop().time()
        if retry_after is not None:
            until = now + min(retry_after, cap)
            self._pause_until = max(self._pause_until, until)
        if self.max_rate is None or now - self._last_decrease_at < 0.1:
            return  # one answer of a burst of 429s counts once
        self._rate_at_decrease = max((self._rate or self.max_rate) * DECREASE, self.max_rate * FLOOR)
        self._last_decrease_at = now
        self._set_rate(self._rate_at_decrease)

    def on_pause_hint(self, retry_after: float, cap: float) -> None:
        """A 503 with Retry-After: honour the pause without counting a throttle."""
        now = asyncio.get_running_loop().time()
        self._pause_until = max(self._pause_until, now + min(retry_after, cap))

    def on_success(self) -> None:
        """Climb back towards --rate, linearly in time since the last decrease."""
        if self.max_rate is None or self._rate is None or self._rate >= self.max_rate:
            return
        elapsed = asyncio.get_running_loop().time() - self._last_decrease_at
        target = min(self.max_rate,
                     self._rate_at_decrease + self.max_rate * RECOVERY_PER_SECOND * elapsed)
        if target >= self._rate * 1.05 or target >= self.max_rate:
            self._set_rate(target)

    def _set_rate(self, rate: float) -> None:
        self._rate = rate
        self._limiter = self._new_limiter(rate)
        self._fresh = True
