"""The sandbox's quotas (sliding, per-minute fixed window, token bucket) and its 521 on overlap."""

from __future__ import annotations

import argparse
import asyncio
import email.utils
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bulkrevoke.sandbox import FaultProfile, Sandbox, SandboxSettings, add_sandbox_arguments
from bulkrevoke.sandbox import settings_from_args as settings_of
from bulkrevoke.sandbox.overlap import Customer, CustomerLocks
from bulkrevoke.sandbox.ratelimit import FixedWindowLimit, SlidingWindowLimit, TokenBucketLimit

from .test_sandbox import badge, revoke

BUSY = {
    "code": 521,
    "message": "Multiple actions are running for the same customer. Please try after some time",
    "reference": None,
}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


# --- the limits, on a clock of our own -----------------------------------------------------


def test_sliding_window_counts_any_window() -> None:
    limit = SlidingWindowLimit(2, 10)
    assert [limit.admit(t) for t in (0.0, 1.0)] == [None, None]
    assert limit.admit(9.5) == 1  # the slot of t=0 frees at 10
    assert limit.admit(10.0) is None
    assert limit.admit(10.5) == 1


def test_fixed_window_is_aligned_to_the_clock_minute() -> None:
    # monotonic + offset = wall clock: here t=0 is 00:00:50 past some minute.
    limit = FixedWindowLimit(3, 60, wall_offset=50.0)
    assert [limit.admit(t) for t in (0.0, 1.0, 2.0)] == [None, None, None]
    assert limit.admit(3.0) == 7  # the minute ends at t=10: Retry-After says so
    assert limit.admit(9.99) == 1
    # The next clock minute starts at t=10, not 60 s after the first request.
    assert [limit.admit(t) for t in (10.0, 10.1, 10.2)] == [None, None, None]
    assert limit.admit(69.9) == 1
    assert limit.admit(70.0) is None


def test_fixed_window_takes_no_slot_for_a_refused_request() -> None:
    limit = FixedWindowLimit(1, 1, wall_offset=0.0)
    assert limit.admit(0.5) is None
    assert all(limit.admit(0.5 + i / 100) == 1 for i in range(40))
    assert limit.admit(1.0) is None


def test_token_bucket_allows_its_burst_then_the_rate() -> None:
    bucket = TokenBucketLimit(10, 1)  # 10/s, holding 10
    assert all(bucket.admit(0.0) is None for _ in range(10))
    assert bucket.admit(0.0) == 1
    assert bucket.admit(0.1) is None  # one token refilled
    assert bucket.admit(0.1) == 1
    admitted = sum(bucket.admit(0.1 + i / 1000) is None for i in range(1, 1001))
    assert admitted == 10  # one second at 1,000/s: the refill, no more
    small = TokenBucketLimit(150, 1, burst=5)
    assert sum(small.admit(0.0) is None for _ in range(20)) == 5


def test_customer_locks_release_only_their_own_hold() -> None:
    locks = CustomerLocks()
    alice = Customer("id", "1")
    first = locks.hold(alice)
    assert first is not None and locks.hold(alice) is None
    assert locks.hold(Customer("email", "1")) is not None  # another identifier type
    first.release()
    second = locks.hold(alice)
    assert second is not None
    first.release()  # a late second release of an old hold leaves the new one alone
    assert locks.hold(alice) is None
    open_house = CustomerLocks(enabled=False)
    assert open_house.hold(alice) is not None and open_house.hold(alice) is not None


# --- over HTTP -------------------------------------------------------------------------------


async def test_fixed_window_over_http_with_and_without_retry_after(
    session: aiohttp.ClientSession,
) -> None:
    keys = [badge(n, customer=str(1000 + n)) for n in range(3)]
    for retry_after in (True, False):
        # A day-long window, aligned to the clock's days: three requests a few milliseconds
        # apart don't straddle midnight.
        settings = SandboxSettings(
            state=dict.fromkeys(keys, True),
            rate_limit=2,
            rate_window=86400,
            rate_limit_kind="fixed",
            limit_retry_after=retry_after,
        )
        async with Sandbox(settings) as sandbox:
            replies = [await revoke(session, sandbox, key) for key in keys]
            truth = sandbox.truth()
        assert [reply.status for reply in replies] == [200, 200, 429]
        assert replies[2].codes == [429]
        header = replies[2].headers.get("Retry-After")
        assert (1 <= int(header) <= 86400) if retry_after else header is None
        assert truth.badges[keys[2]].active
        assert truth.throttled == truth.quota_throttled == 1


async def test_quota_retry_after_as_an_http_date(session: aiohttp.ClientSession) -> None:
    keys = [badge(n, customer=str(1000 + n)) for n in range(2)]
    settings = SandboxSettings(
        state=dict.fromkeys(keys, True),
        rate_limit=1,
        rate_window=3600,
        faults=FaultProfile(retry_after_date=True),
    )
    async with Sandbox(settings) as sandbox:
        replies = [await revoke(session, sandbox, key) for key in keys]
    assert [reply.status for reply in replies] == [200, 429]
    when = email.utils.parsedate_to_datetime(replies[1].headers["Retry-After"])
    assert when.tzinfo is not None and when.year >= 2024


async def test_token_bucket_over_http(session: aiohttp.ClientSession) -> None:
    keys = [badge(n, customer=str(1000 + n)) for n in range(4)]
    settings = SandboxSettings(
        state=dict.fromkeys(keys, True),
        rate_limit=1,
        rate_window=60,
        rate_limit_kind="bucket",
        rate_burst=2,
        limit_retry_after=False,
    )
    async with Sandbox(settings) as sandbox:
        statuses = [(await revoke(session, sandbox, key)).status for key in keys]
        truth = sandbox.truth()
    assert statuses == [200, 200, 429, 429]
    assert truth.quota_throttled == 2 and [k for k in keys if truth.badges[k].applied] == keys[:2]


async def test_injected_throttles_are_not_quota_throttles(session: aiohttp.ClientSession) -> None:
    settings = SandboxSettings(state={badge(): True}, faults=FaultProfile(throttle=1))
    async with Sandbox(settings) as sandbox:
        assert (await revoke(session, sandbox, badge())).status == 429
        truth = sandbox.truth()
    assert (truth.throttled, truth.quota_throttled) == (1, 0)


async def test_overlapping_requests_for_one_customer_get_521(
    session: aiohttp.ClientSession,
) -> None:
    mine, also_mine = badge(1), badge(2)
    other = badge(3, customer="566135942")
    state = {mine: True, also_mine: True, other: True}
    async with Sandbox(SandboxSettings(state=state, latency=0.3)) as sandbox:
        first, second, third = await asyncio.gather(
            revoke(session, sandbox, mine),
            revoke(session, sandbox, also_mine),
            revoke(session, sandbox, other),
        )
        later = await revoke(session, sandbox, also_mine)  # the first has finished: free
        truth = sandbox.truth()
    statuses = sorted([first.status, second.status])
    assert statuses == [200, 521] and third.status == 200
    refused = first if first.status == 521 else second
    assert refused.body["errors"] == [BUSY] and refused.body["data"] is None
    assert later.status == 200 and later.codes in ([], [814])
    assert truth.busy_overlap == 1 and truth.busy_injected == 0
    # The refused request changed nothing; the badges end revoked by the others.
    assert truth.badges[mine].applied + truth.badges[also_mine].applied == 2
    assert truth.badges[other].applied == 1


async def test_overlap_rule_can_be_turned_off(session: aiohttp.ClientSession) -> None:
    keys = [badge(1), badge(2)]
    settings = SandboxSettings(state=dict.fromkeys(keys, True), latency=0.2, busy_on_overlap=False)
    async with Sandbox(settings) as sandbox:
        replies = await asyncio.gather(*(revoke(session, sandbox, key) for key in keys))
        truth = sandbox.truth()
    assert [reply.status for reply in replies] == [200, 200]
    assert truth.busy_overlap == 0


async def test_injected_busy_is_counted_apart(session: aiohttp.ClientSession) -> None:
    settings = SandboxSettings(state={badge(): True}, faults=FaultProfile(busy=1))
    async with Sandbox(settings) as sandbox:
        assert (await revoke(session, sandbox, badge())).status == 521
        truth = sandbox.truth()
    assert (truth.busy_injected, truth.busy_overlap) == (1, 0)


async def test_a_hung_answer_does_not_hold_its_customer(session: aiohttp.ClientSession) -> None:
    keys = [badge(1), badge(2)]
    settings = SandboxSettings(state=dict.fromkeys(keys, True), faults=FaultProfile(hang=1, hang_seconds=30))
    sandbox = Sandbox(settings)
    await sandbox.start()
    try:
        hung = asyncio.ensure_future(revoke(session, sandbox, keys[0]))
        await asyncio.sleep(0.1)  # a real request must reach the real server first
        retry = asyncio.ensure_future(revoke(session, sandbox, keys[1]))
        await asyncio.sleep(0.1)
        truth = sandbox.truth()
    finally:
        await sandbox.stop()
    for pending in (hung, retry):
        with pytest.raises(aiohttp.ClientConnectionError):
            await pending
    # Both were applied (the second was not refused with 521 while the first hung).
    assert [truth.badges[key].applied for key in keys] == [1, 1]
    assert truth.busy_overlap == 0


def test_quota_overlap_and_read_flags_become_settings() -> None:
    parser = argparse.ArgumentParser()
    add_sandbox_arguments(parser)
    ns = parser.parse_args(
        [
            "--rate-limit",
            "1200",
            "--rate-window",
            "60",
            "--rate-limit-kind",
            "fixed",
            "--no-limit-retry-after",
            "--no-busy-on-overlap",
            "--read-shape",
            "counts",
        ]
    )
    settings = settings_of(ns, {})
    assert (settings.rate_limit, settings.rate_window, settings.rate_limit_kind) == (1200, 60, "fixed")
    assert not settings.limit_retry_after and not settings.busy_on_overlap
    assert settings.read_shape == "counts"
    defaults = settings_of(parser.parse_args([]), {})
    assert defaults.busy_on_overlap and defaults.limit_retry_after
    assert (defaults.rate_limit_kind, defaults.read_shape) == ("sliding", "standard")
    bucket = settings_of(
        parser.parse_args(["--rate-limit", "150", "--rate-limit-kind", "bucket", "--rate-burst", "20"]), {}
    )
    assert (bucket.rate_limit_kind, bucket.rate_burst) == ("bucket", 20)
    with pytest.raises(SystemExit):
        parser.parse_args(["--rate-limit-kind", "leaky"])
    with pytest.raises(ValueError, match="rate_limit_kind"):
        SandboxSettings(rate_limit_kind="leaky")  # type: ignore[arg-type]
