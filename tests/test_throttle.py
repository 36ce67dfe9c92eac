"""The shared rate limit: its schedule on a virtual clock (any rate, late timers), on the real
event loop, and the rate controllers against a simulated server quota."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
from collections.abc import Callable

import pytest

from bulkrevoke.errors import ConfigError
from bulkrevoke.sandbox.ratelimit import TokenBucketLimit
from bulkrevoke.send import throttle as throttle_module
from bulkrevoke.send.throttle import EARLY, MARGIN, TICK, Pacer, Throttle, capacity
from bulkrevoke.values import RateLimit, parse_rate

# --- the schedule on a virtual clock -----------------------------------------------------------


class Handle:
    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self._when, self.callback, self.cancelled = when, callback, False

    def when(self) -> float:
        return self._when

    def cancel(self) -> None:
        self.cancelled = True


class Waiter:
    """A future that tells its worker when its slot came."""

    def __init__(self, on_result: Callable[[], None]) -> None:
        self._done, self._on_result = False, on_result

    def done(self) -> bool:
        return self._done

    def set_result(self, _: None) -> None:
        self._done = True
        self._on_result()

    def cancel(self) -> None:
        self._done = True


class VirtualLoop:
    """The three things a Pacer asks of its loop, on a clock that only moves when told.
    Timers fire late by ``lateness()`` seconds, as a busy real loop's do; ``wakeups`` counts
    the pacer's own."""

    def __init__(self, lateness: Callable[[], float] = lambda: 0.0) -> None:
        self.now = 0.0
        self.wakeups = 0
        self._timers: list[tuple[float, int, Handle]] = []
        self._order = itertools.count()
        self._lateness = lateness
        self.on_result: Callable[[], None] = lambda: None

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], None]) -> Handle:
        handle = Handle(when, callback)
        heapq.heappush(self._timers, (when, next(self._order), handle))
        return handle

    def create_future(self) -> Waiter:
        return Waiter(self.on_result)

    def run_until(self, end: float) -> None:
        while self._timers and self._timers[0][0] <= end:
            when, _, handle = heapq.heappop(self._timers)
            if handle.cancelled:
                continue
            self.now = max(self.now, when + self._lateness())  # early too, if told
            self.wakeups += getattr(handle.callback, "__self__", None) is not None
            handle.callback()


def run_workers(
    pacer: Pacer, loop: VirtualLoop, workers: int, seconds: float, latency: float = 0.0
) -> list[float]:
    """Workers that each acquire, send (at loop.now) and come back after ``latency``."""
    sent: list[float] = []

    def acquire() -> None:
        if pacer.try_take():
            sent.append(loop.now)
            loop.call_at(loop.now + latency, acquire)
        else:
            pacer.wait()

    def released() -> None:  # the worker resumes on a later turn of the loop, as a task does
        sent.append(loop.now)
        loop.call_at(loop.now + latency, acquire)

    loop.on_result = released
    for _ in range(workers):
        acquire()
    loop.run_until(seconds)
    return sent


def most_in_window(times: list[float], window: float) -> int:
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


@pytest.mark.parametrize("rate", [0.5, 100 / 60, 20, 150, 400, 1000, 2000, 5000])
@pytest.mark.parametrize("timers", ["late", "early"])
def test_schedule_holds_any_rate_and_wakes_at_most_once_a_tick(rate, timers):
    rng = random.Random(rate)
    # asyncio's timers fire up to ~2 ms late; uvloop's up to 1 ms early, then on time or late.
    low, high = (0.0, 0.002) if timers == "late" else (-0.001, 0.001)
    loop = VirtualLoop(lateness=lambda: rng.uniform(low, high))
    seconds = max(20.0, 40 / rate)
    sent = run_workers(Pacer(rate * (1 - MARGIN), loop), loop, workers=16, seconds=seconds)
    # No start-up burst: the second request one interval after the first (less a timer's
    # earliness, when it fires early).
    assert sent[0] == 0.0 and sent[1] >= 0.99 / rate - (EARLY if timers == "early" else 0)
    achieved = (len(sent) - 1) / (sent[-1] - sent[0])
    assert achieved >= 0.99 * rate
    # No second holds more than rate + 1 (low rates) or rate + 1 % (high ones).
    assert most_in_window(sent, 1.0) <= rate + max(1.0, 0.01 * rate)
    # The cost does not grow with the rate: at most one wake-up per TICK or per request.
    assert loop.wakeups <= 1.01 * min(seconds / TICK, len(sent)) + 2


def test_schedule_at_5000_per_second_wakes_a_tick_at_a_time():
    loop = VirtualLoop()
    sent = run_workers(Pacer(5000, loop), loop, workers=64, seconds=2.0)
    assert len(sent) >= 0.99 * 5000 * 2
    assert loop.wakeups <= 2.0 / TICK + 2  # 20 releases per wake-up, not one


def test_a_pause_holds_everyone_then_resumes_without_a_burst():
    loop = VirtualLoop()
    pacer = Pacer(1000, loop)
    sent = run_workers(pacer, loop, workers=16, seconds=1.0)
    before = len(sent)
    pacer.pause(3.0)
    loop.run_until(3.0 - 1e-9)
    assert len(sent) == before  # nobody during the pause, however much credit had built up
    loop.run_until(3.1)
    resumed = [t for t in sent if t >= 3.0]
    assert resumed and resumed[0] == pytest.approx(3.0, abs=0.001)
    assert len(resumed) <= 1 + 1000 * 0.1 + 1


def test_a_faster_rate_brings_the_next_slot_forward_and_a_slower_one_spaces_them():
    loop = VirtualLoop()
    pacer = Pacer(0.1, loop)  # one per 10 s
    sent = run_workers(pacer, loop, workers=2, seconds=0.5)
    assert len(sent) == 1  # the first at once, the next due at 10 s
    pacer.set_rate(100)
    loop.run_until(1.0)
    assert sent[1] <= 0.5 + 0.011 and len(sent) > 40
    pacer.set_rate(2)
    count = len(sent)
    loop.run_until(3.0)
    assert len(sent) - count <= 2 * 2 + 2


def test_a_cancelled_waiter_takes_no_slot():
    loop = VirtualLoop()
    pacer = Pacer(10, loop)
    assert pacer.try_take()
    first, second = pacer.wait(), pacer.wait()
    first.cancel()
    loop.run_until(0.1 + 1e-6)
    assert second.done() and not pacer.try_take()


# --- the real event loop -----------------------------------------------------------------------


async def _acquire_times(throttle, count):
    loop = asyncio.get_running_loop()
    times = []

    async def worker():
        while len(times) < count:
            await throttle.acquire()
            times.append(loop.time())

    await asyncio.gather(*(worker() for _ in range(8)))
    return times[:count]


async def test_on_the_real_loop_no_burst_at_start_and_never_over_the_rate():
    # What a busy machine can't break: requests leave no faster than the schedule allows.
    # (That the rate is also reached, with late timers, is shown on the virtual clock.)
    rate = 400.0
    times = await _acquire_times(Throttle(RateLimit(rate)), 420)
    assert times[1] - times[0] >= 0.99 / rate
    assert most_in_window(times, 0.1) <= capacity(rate) + rate * 0.1
    assert most_in_window(times, 1.0) <= rate + 1
    assert (len(times) - 1) / (times[-1] - times[0]) <= rate * 1.005


def _returns_at_once(waiting) -> bool:
    """Did this coroutine finish without suspending (no timer, no future to wait for)?"""
    try:
        waiting.send(None)
    except StopIteration:
        return True
    waiting.close()
    return False


async def test_unlimited_never_waits():
    throttle = Throttle(RateLimit(None))
    assert not throttle.must_wait()
    assert all(_returns_at_once(throttle.acquire()) for _ in range(1000))
    limited = Throttle(RateLimit(10.0))
    assert _returns_at_once(limited.acquire()) and not _returns_at_once(limited.acquire())


async def test_retry_after_pauses_every_worker():
    for rate in (None, 1000.0):
        throttle = Throttle(RateLimit(rate))
        await throttle.acquire()  # the schedule exists, with credit to spare
        loop = asyncio.get_running_loop()
        start = loop.time()
        throttle.on_throttled(0.15, cap=60)
        assert throttle.must_wait()
        times = await _acquire_times(throttle, 8)
        assert min(times) - start >= 0.14
        assert throttle.throttled == 1


async def test_retry_after_is_capped(monkeypatch):
    # On a patched clock: each wait the throttle asks for passes at once, and is noted.
    loop = asyncio.get_running_loop()
    clock, waits = [loop.time()], []
    start = clock[0]

    class Asyncio:  # asyncio as the throttle sees it, with sleep on the patched clock
        def __getattr__(self, name):
            return getattr(asyncio, name)

        async def sleep(self, seconds):
            waits.append(seconds)
            clock[0] += seconds

    monkeypatch.setattr(loop, "time", lambda: clock[0])
    monkeypatch.setattr(throttle_module, "asyncio", Asyncio())
    throttle = Throttle(RateLimit(None))
    throttle.on_throttled(3600, cap=0.05)
    await throttle.acquire()
    assert waits == [pytest.approx(0.05)] and clock[0] == pytest.approx(start + 0.05)
    assert not throttle.must_wait()  # the pause is over: back to the fast path


async def test_throttling_halves_the_rate_then_it_recovers_linearly(monkeypatch):
    throttle = Throttle(RateLimit(100.0))
    throttle.on_throttled(None, cap=60)
    assert throttle.current_rate == 50.0
    throttle.on_throttled(None, cap=60)  # the same burst of 429s counts once
    assert throttle.current_rate == 50.0
    loop = asyncio.get_running_loop()
    now = loop.time()
    monkeypatch.setattr(loop, "time", lambda: now + 4.0)
    throttle.on_success()  # 4 s later: +5% of --rate per second
    assert abs(throttle.current_rate - 70.0) < 0.1
    monkeypatch.setattr(loop, "time", lambda: now + 60.0)
    throttle.on_success()
    assert throttle.current_rate == 100.0
    assert throttle.discovered_rate is None  # only --rate auto discovers


async def test_rate_never_drops_below_the_floor(monkeypatch):
    throttle = Throttle(RateLimit(100.0))
    loop = asyncio.get_running_loop()
    clock = [loop.time()]
    monkeypatch.setattr(loop, "time", lambda: clock[0])
    for _ in range(20):
        clock[0] += 1.0
        throttle.on_throttled(None, cap=60)
    assert throttle.current_rate == 5.0


async def test_a_new_rate_reaches_the_schedule():
    throttle = Throttle(RateLimit(1000.0))
    await throttle.acquire()
    throttle.on_throttled(None, cap=60)
    assert throttle._pacer is not None
    assert throttle._pacer.rate == pytest.approx(500 * 0.995)


# --- --rate auto against a simulated server ----------------------------------------------------


def simulate_auto(
    monkeypatch,
    throttle: Throttle,
    server: TokenBucketLimit,
    *,
    seconds: float,
    latency: float = 0.03,
    retry_after: bool = False,
    client_cap: float = 1e9,
) -> list[tuple[float, bool]]:
    """Requests sent at ``throttle.current_rate`` (at most ``client_cap``/s: what the run can
    use), answered by ``server`` after ``latency``; the throttle hears every answer on a
    patched loop clock. Returns (sent at, admitted) per request."""
    loop = asyncio.get_running_loop()
    clock = [0.0]
    monkeypatch.setattr(loop, "time", lambda: clock[0])
    answers: list[tuple[float, int, bool, int | None]] = []
    order = itertools.count()
    sent: list[tuple[float, bool]] = []
    next_send = 0.0
    while next_send < seconds:
        if answers and answers[0][0] <= next_send:
            clock[0], _, admitted, wait = heapq.heappop(answers)
            if admitted:
                throttle.on_success()
            else:
                throttle.on_throttled(wait if retry_after else None, cap=60)
            continue
        clock[0] = max(next_send, throttle._pause_until)
        wait = server.admit(clock[0])
        sent.append((clock[0], wait is None))
        heapq.heappush(answers, (clock[0] + latency, next(order), wait is None, wait))
        next_send = clock[0] + 1 / min(throttle.current_rate, client_cap)
    return sent


def share(sent, start, end, admitted=True):
    window = [ok for t, ok in sent if start <= t < end]
    return sum(ok == admitted for ok in window), len(window)


@pytest.mark.parametrize("latency", [0.0, 0.03, 0.25])
async def test_auto_finds_a_150_per_second_bucket_within_30_seconds(monkeypatch, latency):
    throttle = Throttle(parse_rate("auto"))
    sent = simulate_auto(monkeypatch, throttle, TokenBucketLimit(150, 1), seconds=60, latency=latency)
    assert sent[1][0] - sent[0][0] >= 0.5  # a safe start (100/min), not a burst
    for start in range(30, 55, 5):  # every 5 s from 30 s on: at least 90 % of the limit
        served, _ = share(sent, start, start + 5)
        assert served >= 0.9 * 150 * 5
    throttled, total = share(sent, 0, 60, admitted=False)
    assert throttled <= 0.02 * total
    assert 0.9 * 150 <= throttle.discovered_rate <= 150
    assert throttle.discovered_rate == int(throttle.discovered_rate)  # 149, not 149.9384…


async def test_auto_honours_retry_after(monkeypatch):
    throttle = Throttle(parse_rate("auto"))
    server = TokenBucketLimit(150, 1, burst=20)
    sent = simulate_auto(monkeypatch, throttle, server, seconds=60, retry_after=True)
    # Each 429 says "Retry-After: 1" and everyone waits a second: that costs more than the
    # throttled answers themselves, and is what the server asked for.
    served, _ = share(sent, 40, 60)
    throttled, total = share(sent, 0, 60, admitted=False)
    assert served >= 0.75 * 150 * 20 and throttled <= 0.02 * total
    assert throttle.discovered_rate is not None and throttle.discovered_rate <= 150 * 1.01


async def test_auto_max_caps_the_rate_and_finds_nothing_below_the_cap(monkeypatch):
    throttle = Throttle(parse_rate("auto:100/s"))
    sent = simulate_auto(monkeypatch, throttle, TokenBucketLimit(150, 1), seconds=30)
    assert throttle.current_rate == 100
    assert most_in_window([t for t, _ in sent], 1.0) <= 101
    assert throttle.discovered_rate is None and throttle.throttled == 0


async def test_auto_does_not_climb_past_what_the_run_can_use(monkeypatch):
    throttle = Throttle(parse_rate("auto"))
    simulate_auto(monkeypatch, throttle, TokenBucketLimit(1000, 1), seconds=30, client_cap=20)
    assert throttle.current_rate <= 2 * 20 + 1  # not doubling forever while sending 20/s


# --- the setting -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected", "shown"),
    [
        ("auto", RateLimit(None, auto=True), "auto"),
        ("AUTO:300/s", RateLimit(300.0, auto=True), "auto:300/s"),
        ("auto:100/min", RateLimit(100 / 60, auto=True), "auto:100/min"),
        ("auto: 50", RateLimit(50.0, auto=True), "auto:50/s"),
        ("1200/min", RateLimit(20.0), "20/s"),
        ("unlimited", RateLimit(None), "unlimited"),
    ],
)
def test_auto_rates_parse_and_round_trip(text, expected, shown):
    rate = parse_rate(text)
    assert rate == expected and str(rate) == shown
    assert parse_rate(str(rate)) == rate


@pytest.mark.parametrize("bad", ["auto:", "auto:unlimited", "auto:auto", "auto:fast", "autox"])
def test_bad_auto_rates_are_refused(bad):
    with pytest.raises(ConfigError, match="--rate"):
        parse_rate(bad)
