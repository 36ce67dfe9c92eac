"""The client-side rate limit, shared by every worker.

* A schedule (``Pacer``): a bucket of credit filling at the rate less a 0.5 % margin, holding
  ``capacity(rate)`` (1.5 requests, or 1 % of a second's worth at high rates) and starting
  with one request's worth, so there is no start-up burst and a window of T seconds holds at
  most ``capacity + 0.995·rate·T`` requests as they leave (``rate/1000`` more when a timer
  fires early, see ``EARLY``): at most rate + 1 in any second at low rates, rate + 0.6 % at
  high ones, which leaves room for the network to bunch them on the way without the server
  seeing more.
* A shared pause: a 429 (or 503) with ``Retry-After`` stops *every* worker until then, and
  the schedule resumes from there without a burst.
* A rate that answers the server (``rate_control``): with ``--rate N`` each throttled answer
  halves the rate, which then climbs back to N; with ``--rate auto`` it finds the server's
  limit (CUBIC, as AWS SDKs' adaptive retry mode) and ``discovered_rate`` says what held.

Why not aiolimiter, the proven leaky bucket this module used to wrap: it releases each waiter
the moment its own slot comes, through a timer of its own. At 1,000/s that timer is due every
millisecond, the event loop's timer resolution, so every request pays a loop turn and its
system calls alone (twice the CPU per row of an unlimited run) and late wake-ups lose slots
(763/s measured at --rate 1000/s). The pacer wakes at most once per ``TICK`` and releases
every waiter whose credit has come, so its cost per request does not grow with the rate.

How the engine uses it (the whole interface)::

    throttle = Throttle(config.rate)          # RateLimit: N/s, unlimited, auto or auto:MAX
    if throttle.must_wait():                  # False: no limit and no pause, go at once
        await throttle.acquire()              # before every attempt, retries included
    # then, by the answer:
    throttle.on_throttled(retry_after, cap)   # a 429 (retry_after: seconds or None)
    throttle.on_pause_hint(retry_after, cap)  # a 503 (or other) with Retry-After
    throttle.on_success()                     # every answer the server took (200, 814)
    throttle.current_rate                     # requests/s now (None: unlimited): size the pool
    throttle.discovered_rate                  # auto: the rate that held, for the summary

``--rate auto`` needs nothing more from the engine: the controller measures the answers
itself. ``discovered_rate`` is None until the server has throttled twice, a second or more
apart (the limit was not found: the summary should say so, and the cap or the run's own
pace, not the server, was the bound).
"""

from __future__ import annotations

import asyncio
from collections import deque

from bulkrevoke.send.rate_control import AutoRateControl, FixedRateControl
from bulkrevoke.values import RateLimit

#: The schedule runs this share below --rate. Requests leave on schedule, but arrive a few
#: milliseconds apart or together as the network and the server's own scheduling have it:
#: without the margin, a server counting arrivals saw rate + 2 in one second.
MARGIN = 0.005
#: The pacer wakes at most this often (seconds); below an interval of TICK it releases
#: several requests per wake-up. Timers are only good to about a millisecond.
TICK = 0.004
#: The bucket holds 1.5 requests' worth at low rates (a waiter woken late by up to half an
#: interval keeps its slot, and a second never holds more than rate + 1), and 1 % of a
#: second's worth at high rates: a wake-up late by up to 6 ms after a TICK loses nothing.
MIN_CAPACITY = 1.5
CAPACITY_SECONDS = 0.01
#: A timer may fire this early (seconds): uvloop rounds to whole milliseconds from a loop
#: time cached at the turn's start. A slot due that soon is released now, borrowing the
#: credit, instead of waking again a moment later: at most rate/1000 more in a second.
EARLY = 0.001
#: A new rate is applied to the schedule when it differs by this share (or reaches the max).
RATE_STEP = 0.02


def capacity(rate: float) -> float:
    """Requests' worth of credit the schedule can hold at ``rate`` per second."""
    return max(MIN_CAPACITY, CAPACITY_SECONDS * rate)


class Pacer:
    """Releases waiters at ``rate`` per second, first come first served, in ticks.

    Credit accrues at the rate up to ``capacity(rate)``; a waiter takes one request's worth.
    A pause moves the schedule's clock into the future: no credit accrues until then, and
    it resumes with at most one request's worth.
    """

    __slots__ = (
        "_capacity",
        "_credit",
        "_handle",
        "_next_tick",
        "_stamp",
        "_waiters",
        "loop",
        "rate",
    )

    def __init__(self, rate: float, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._handle: asyncio.TimerHandle | None = None
        self._credit = 1.0  # the first request goes at once, the next one interval later
        self._stamp = loop.time()  # credit is accrued up to here
        self._next_tick = self._stamp  # no wake-up before this: one TICK after the last one
        self.rate = rate
        self._capacity = capacity(rate)

    def try_take(self) -> bool:
        """Take a slot now if one is free and nobody is queued before us."""
        if self._waiters:
            return False
        now = self.loop.time()
        if now < self._stamp:  # paused
            return False
        self._accrue(now)
        if self._credit >= 1.0:
            self._credit -= 1.0
            return True
        return False

    def wait(self) -> asyncio.Future[None]:
        """A future that is done when this waiter's slot comes (cancel it to give it up)."""
        waiter = self.loop.create_future()
        self._waiters.append(waiter)
        if self._handle is None:
            now = self.loop.time()
            self._accrue(now)
            self._wake_at(self._due(now))
        return waiter

    def set_rate(self, rate: float) -> None:
        now = self.loop.time()
        self._accrue(now)  # what accrued so far, at the old rate
        self.rate = rate
        self._capacity = capacity(rate)
        self._credit = min(self._credit, self._capacity)
        handle = self._handle
        if handle is not None:  # a faster rate may bring the next slot forward
            due = self._due(now)
            if due < handle.when() - 0.001:
                handle.cancel()
                self._wake_at(due)

    def pause(self, until: float) -> None:
        """Release nobody before ``until``; resume then with at most one request's worth."""
        now = self.loop.time()
        self._accrue(now)
        if until > self._stamp:
            # As if the schedule had run on until then, but with one request's worth at most.
            self._credit = min(1.0, self._credit + (until - self._stamp) * self.rate)
            self._stamp = until
            if self._handle is not None and self._handle.when() < until:
                self._handle.cancel()
                self._wake_at(until)

    def _accrue(self, now: float) -> None:
        if now > self._stamp:
            credit = self._credit + (now - self._stamp) * self.rate
            self._credit = credit if credit < self._capacity else self._capacity
            self._stamp = now

    def _due(self, now: float) -> float:
        """When the next slot comes: a whole request's credit, no pause, one TICK apart."""
        due = max(now, self._stamp) + max(0.0, 1.0 - self._credit) / self.rate
        return max(due, self._next_tick)

    def _wake_at(self, when: float) -> None:
        self._handle = self.loop.call_at(when, self._release)

    def _release(self) -> None:
        self._handle = None
        now = self.loop.time()
        if now < self._stamp:  # paused meanwhile
            self._wake_at(self._stamp)
            return
        self._accrue(now)
        waiters = self._waiters
        due = 1.0 - EARLY * self.rate
        while waiters and self._credit >= due:
            waiter = waiters.popleft()
            if not waiter.done():  # a cancelled waiter takes no slot
                waiter.set_result(None)
                self._credit -= 1.0
        self._next_tick = now + TICK
        if waiters:
            self._wake_at(self._due(now))


class Throttle:
    """The schedule, the shared pause and the rate controller, for one run on one loop."""

    def __init__(self, rate: RateLimit) -> None:
        #: The most requests per second this run may send (None: no cap); with auto, the cap.
        self.max_rate = rate.per_second
        self.auto = rate.auto
        self._control = AutoRateControl(rate.per_second) if rate.auto else FixedRateControl(rate.per_second)
        self._pacer: Pacer | None = None  # made on the first acquire, on the running loop
        self._pause_until = 0.0
        self.throttled = 0

    @property
    def current_rate(self) -> float | None:
        """Requests per second the schedule is held to now; None when there is no limit."""
        return self._control.rate

    @property
    def discovered_rate(self) -> float | None:
        """``--rate auto``: requests per second the server took between its throttled answers
        (see ``rate_control``); None otherwise, or while the limit is not found."""
        return self._control.discovered_rate

    def must_wait(self) -> bool:
        """False when a request may go at once (no limit, no pause): the hot path of an
        unlimited run skips the wait entirely."""
        return self._control.rate is not None or self._pause_until > 0.0

    async def acquire(self) -> None:
        """Wait for this request's slot in the schedule (and for the shared pause)."""
        loop = asyncio.get_running_loop()
        rate = self._control.rate
        if rate is None:
            while (wait := self._pause_until - loop.time()) > 0:
                await asyncio.sleep(wait)  # the pause may have been extended meanwhile
            self._pause_until = 0.0
            return
        pacer = self._pacer
        if pacer is None or pacer.loop is not loop:
            pacer = self._pacer = Pacer(rate * (1 - MARGIN), loop)
            if self._pause_until > loop.time():
                pacer.pause(self._pause_until)
        if not pacer.try_take():
            await pacer.wait()

    def on_throttled(self, retry_after: float | None, cap: float) -> None:
        """A 429: pause everyone for ``Retry-After`` (capped), and slow down."""
        self.throttled += 1
        now = asyncio.get_running_loop().time()
        if retry_after is not None:
            self._pause(now + min(retry_after, cap))
        self._control.on_throttled(now)
        self._apply()

    def on_pause_hint(self, retry_after: float, cap: float) -> None:
        """A 503 with Retry-After: honour the pause without counting a throttle."""
        now = asyncio.get_running_loop().time()
        self._pause(now + min(retry_after, cap))

    def on_success(self) -> None:
        """An answer the server took: the rate may climb."""
        self._control.on_success(asyncio.get_running_loop().time())
        self._apply()

    def _pause(self, until: float) -> None:
        if until > self._pause_until:
            self._pause_until = until
            if self._pacer is not None:
                self._pacer.pause(until)

    def _apply(self) -> None:
        pacer, rate = self._pacer, self._control.rate
        if pacer is None or rate is None:
            return
        paced = rate * (1 - MARGIN)
        if abs(paced - pacer.rate) >= RATE_STEP * pacer.rate or (
            rate == self.max_rate and paced != pacer.rate
        ):
            pacer.set_rate(paced)
