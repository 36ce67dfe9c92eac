"""The shared rate limit, on the real event loop clock (intervals of a few ms)."""

import asyncio

from bulkrevoke.config import RateLimit
from bulkrevoke.throttle import Throttle


async def _acquire_times(throttle, count):
    loop = asyncio.get_running_loop()
    times = []

    async def worker():
        while len(times) < count:
            await throttle.acquire()
            times.append(loop.time())

    await asyncio.gather(*(worker() for _ in range(8)))
    return times[:count]


def _most_in_window(times, window):
    return max(sum(1 for u in times[i:] if u < t + window) for i, t in enumerate(times))


async def test_no_burst_at_start_and_the_rate_is_held():
    rate = 400.0
    times = await _acquire_times(Throttle(RateLimit(rate)), 120)
    # In any window of T seconds at most 1.5 + rate·T requests, and the first request
    # fills the bucket: one per interval from the very start, never the pool at once.
    assert times[1] - times[0] >= 0.99 / rate
    assert _most_in_window(times, 0.1) <= 1.5 + rate * 0.1
    achieved = (len(times) - 1) / (times[-1] - times[0])
    assert rate * 0.9 <= achieved <= rate * 1.01


async def test_the_schedule_runs_half_a_percent_under_the_rate():
    # Requests leave on schedule but reach the server bunched by the network: the schedule
    # keeps 0.5 % in hand (398/s for 400/s), so no second of arrivals holds more than the
    # rate. A window of T seconds holds at most 1.5 + 398·T requests as they leave.
    rate = 400.0
    times = await _acquire_times(Throttle(RateLimit(rate)), 420)
    assert _most_in_window(times, 1.0) <= 1.5 + 0.995 * rate
    achieved = (len(times) - 1) / (times[-1] - times[0])
    assert rate * 0.97 <= achieved <= 0.5 / (times[-1] - times[0]) + 0.995 * rate


async def test_unlimited_never_waits():
    throttle = Throttle(RateLimit(None))
    times = await _acquire_times(throttle, 1000)
    assert times[-1] - times[0] < 0.5


async def test_retry_after_pauses_every_worker():
    throttle = Throttle(RateLimit(None))
    loop = asyncio.get_running_loop()
    start = loop.time()
    throttle.on_throttled(0.15, cap=60)
    times = await _acquire_times(throttle, 8)
    assert min(times) - start >= 0.14
    assert throttle.throttled == 1


async def test_retry_after_is_capped():
    throttle = Throttle(RateLimit(None))
    loop = asyncio.get_running_loop()
    start = loop.time()
    throttle.on_throttled(3600, cap=0.05)
    await throttle.acquire()
    assert loop.time() - start < 1


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


async def test_rate_never_drops_below_the_floor(monkeypatch):
    throttle = Throttle(RateLimit(100.0))
    loop = asyncio.get_running_loop()
    clock = [loop.time()]
    monkeypatch.setattr(loop, "time", lambda: clock[0])
    for _ in range(20):
        clock[0] += 1.0
        throttle.on_throttled(None, cap=60)
    assert throttle.current_rate == 5.0
