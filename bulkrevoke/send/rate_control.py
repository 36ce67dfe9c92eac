"""How the client's rate answers the server: slow down on a throttled answer, then climb back.

Two controllers, both plain objects fed with times (``now`` in seconds on any monotonic clock),
so they can be tested without an event loop; ``throttle.Throttle`` applies their ``rate``.

* ``FixedRateControl`` (``--rate N``): each throttled answer halves the rate (down to a floor);
  it then climbs back linearly to ``--rate``.
* ``AutoRateControl`` (``--rate auto``, ``auto:MAX``): finds the server's limit. It starts from
  a safe rate and doubles it every second (only while the answers keep up: a run that cannot
  use the rate does not raise it), until the first throttled answer. From then on it follows
  CUBIC as AWS SDKs' adaptive retry mode does (C = 0.4, β = 0.7): on a throttled answer the
  rate drops to β times the rate the server was taking, and grows back along a cubic curve that
  flattens as it nears that rate, lingers there and only then probes beyond.

A burst of throttled answers counts once: the answers to requests already in flight when
the rate dropped say nothing about the new rate.
"""

from __future__ import annotations

import math
from collections import deque

#: ``FixedRateControl``: multiplicative decrease, the floor as a share of --rate, and the
#: share of --rate regained per second since the last decrease.
DECREASE = 0.5
FLOOR = 0.05
RECOVERY_PER_SECOND = 0.05
#: Throttled answers within this many seconds of a decrease belong to the same burst.
BURST_SECONDS = 0.1

#: ``AutoRateControl``: the start (100/min, the demo clusters' quota: safe anywhere), the
#: lowest rate it ever drops to, CUBIC's constants (AWS adaptive retry's values), and the
#: burst window (longer than the fixed controller's: the rate moves further per decrease).
AUTO_START = 100 / 60
AUTO_MIN = 0.5
CUBIC_C = 0.4
CUBIC_BETA = 0.7
AUTO_BURST_SECONDS = 0.5
#: The answer rate is measured over buckets of this many seconds, smoothed (AWS: 0.5, 0.8).
MEASURE_SECONDS = 0.5
SMOOTHING = 0.8
#: The rate that held is measured between throttled answers at most this many seconds apart.
HOLD_SECONDS = 30.0


class FixedRateControl:
    """``--rate N``: halve on a throttled answer, climb back linearly to N."""

    __slots__ = ("_at_decrease", "_last_decrease", "max_rate", "rate")

    def __init__(self, max_rate: float | None) -> None:
        self.max_rate = max_rate
        self.rate = max_rate
        self._last_decrease = -math.inf
        self._at_decrease = max_rate or 0.0

    def on_throttled(self, now: float) -> None:
        if self.max_rate is None or now - self._last_decrease < BURST_SECONDS:
            return
        current = self.rate or self.max_rate
        self._at_decrease = max(current * DECREASE, self.max_rate * FLOOR)
        self._last_decrease = now
        self.rate = self._at_decrease

    def on_success(self, now: float) -> None:
        if self.max_rate is None or self.rate is None or self.rate >= self.max_rate:
            return
        climbed = self.max_rate * RECOVERY_PER_SECOND * (now - self._last_decrease)
        self.rate = min(self.max_rate, self._at_decrease + climbed)

    @property
    def discovered_rate(self) -> float | None:
        return None


class _AnswerRate:
    """Answers per second, measured in buckets and smoothed (AWS's RateClocker)."""

    __slots__ = ("_bucket_start", "_count", "rate")

    def __init__(self) -> None:
        self.rate = 0.0
        self._count = 0
        self._bucket_start: float | None = None

    def tick(self, now: float) -> None:
        if self._bucket_start is None:
            self._bucket_start = now
        self._count += 1
        elapsed = now - self._bucket_start
        if elapsed >= MEASURE_SECONDS:
            measured = self._count / elapsed
            self.rate = SMOOTHING * measured + (1 - SMOOTHING) * self.rate
            self._count, self._bucket_start = 0, now


class AutoRateControl:
    """``--rate auto``: slow start to the first throttled answer, then CUBIC (see the module)."""

    __slots__ = (
        "_answers",
        "_held",
        "_k",
        "_last_decrease",
        "_last_growth",
        "_served",
        "_w_max",
        "first_throttle",
        "max_rate",
        "rate",
    )

    def __init__(self, max_rate: float | None, start: float = AUTO_START) -> None:
        self.max_rate = max_rate
        self.rate: float = start if max_rate is None else min(start, max_rate)
        self._answers = _AnswerRate()  # every answer that was not throttled
        self._w_max = 0.0  # CUBIC's W_max: the rate the server took at the last decrease
        self._k = 0.0  # seconds from a decrease until the curve is back at W_max
        self._last_decrease = -math.inf
        self._last_growth: float | None = None
        self.first_throttle: float | None = None
        # (time, answers served so far) at each decrease, for the rate that held.
        self._held: deque[tuple[float, int]] = deque()
        self._served = 0

    def on_throttled(self, now: float) -> None:
        if now - self._last_decrease < AUTO_BURST_SECONDS:
            return
        if self.first_throttle is None:
            self.first_throttle = now
        self._remember(now)
        # What the server was taking: the answer rate, unless the rate was already lower.
        taken = min(self.rate, self._answers.rate) if self._answers.rate > 0 else self.rate
        self._w_max = max(taken, AUTO_MIN)
        self._k = (self._w_max * (1 - CUBIC_BETA) / CUBIC_C) ** (1 / 3)
        self._last_decrease = now
        self.rate = max(AUTO_MIN, self._w_max * CUBIC_BETA)

    def on_success(self, now: float) -> None:
        self._answers.tick(now)
        self._served += 1
        if self._last_growth is None:
            self._last_growth = now
            return
        if self.first_throttle is None:
            # Slow start: double each second.
            target = self.rate * 2.0 ** (now - self._last_growth)
        else:
            t = now - self._last_decrease - self._k
            target = CUBIC_C * t * t * t + self._w_max
        self._last_growth = now
        # Never more than twice what the answers show the run can use.
        ceiling = max(2 * self._answers.rate, self.rate)
        if self.max_rate is not None:
            ceiling = min(ceiling, self.max_rate)
        self.rate = max(AUTO_MIN, min(target, ceiling))

    def _remember(self, now: float) -> None:
        held = self._held
        held.append((now, self._served))
        while len(held) > 2 and now - held[1][0] >= HOLD_SECONDS:
            held.popleft()

    @property
    def discovered_rate(self) -> float | None:
        """The rate the server held to: answers served between the oldest and the newest
        throttled answer of the last HOLD_SECONDS, per second. A throttled answer means the
        server's allowance was used up, so between two of them the server served exactly what
        its quota refilled: neither a bucket's burst nor a slow start inflates the figure.
        Rounded down to three significant digits (149.93 gives 149), a rate to pin as it is.
        None until two throttled answers a second or more apart (the limit was not found)."""
        if len(self._held) < 2:
            return None
        (start, served_then), (end, served_now) = self._held[0], self._held[-1]
        if end - start < 1.0:
            return None
        return _three_digits_down((served_now - served_then) / (end - start))


def _three_digits_down(rate: float) -> float:
    if rate <= 0:
        return 0.0
    scale = 10.0 ** (2 - math.floor(math.log10(rate)))
    return math.floor(rate * scale + 1e-9) / scale
