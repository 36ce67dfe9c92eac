"""One request per customer in flight, and an in-flight cap that follows latency."""

from __future__ import annotations

import asyncio
import random

from bulkrevoke.config import RunConfig
from bulkrevoke.ledger import Ledger, row_batch
from bulkrevoke.model import PendingRow
from bulkrevoke.send.concurrency import MAX_CAP, UNLIMITED_CAP, InFlightCap
from bulkrevoke.send.customers import CustomerWindow, customer_key
from bulkrevoke.send.engine import Engine
from bulkrevoke.send.reply import Reply, ReplyKind
from bulkrevoke.send.throttle import Throttle
from bulkrevoke.values import RateLimit, RetryPolicy

META = "698dae82d30c4f6b3da9dc06"


def _row(number: int, customer: str, kind: str = "id") -> PendingRow:
    return PendingRow(number, META, customer, kind, f"{number:024x}", False)


def test_the_window_hands_out_one_row_per_customer_until_released():
    window = CustomerWindow(limit=100)
    rows = [_row(i, str(1 + (i - 1) // 3)) for i in range(1, 10)]  # customers 1,1,1,2,2,2,3,3,3
    for row in rows:
        window.add(row)
    first = window.take(5)
    assert [r.row for r in first] == [1, 4, 7]  # the oldest row of each customer
    assert window.take(5) == [] and window.waiting == 6
    window.release(first[1])
    assert [r.row for r in window.take(5)] == [5]
    window.release(first[0])
    window.release(first[2])
    assert [r.row for r in window.take(1)] == [2]
    assert window.held == 2 and window.waiting == 4  # customer 3 is free again


def test_a_customer_is_one_whatever_the_case_of_its_email():
    assert customer_key(_row(1, "A@X.com", "email")) == customer_key(_row(2, "a@x.COM", "email"))
    assert customer_key(_row(1, "42")) != customer_key(_row(2, "42", "externalId"))


def test_the_cap_follows_rate_and_latency_within_bounds():
    cap = InFlightCap(None)
    assert cap.resize(100.0) == 9  # ceil(100 · 0.05 · 1.5) + 1: 0.05 s assumed at first
    for _ in range(200):
        cap.observe(0.02)
    assert cap.resize(300.0) == 10  # ceil(300 · 0.02 · 1.5) + 1
    for _ in range(256):
        cap.observe(0.25)
    assert cap.resize(300.0) == 114
    assert cap.resize(5000.0) == MAX_CAP and cap.largest == MAX_CAP
    assert cap.resize(None) == UNLIMITED_CAP
    assert cap.median_milliseconds() == 250
    fixed = InFlightCap(7)
    fixed.observe(3.0)
    assert fixed.resize(1000.0) == 7 and fixed.largest == 7


class Recorder:
    """A fake API: notes which customers have a request in flight, answers after *delay*."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.busy: set[str] = set()
        self.overlaps = 0
        self.most_in_flight = 0
        self.sent: list[int] = []

    async def revoke_earned_badge(self, row: PendingRow) -> Reply:
        self.overlaps += row.customer_id in self.busy
        self.busy.add(row.customer_id)
        self.most_in_flight = max(self.most_in_flight, len(self.busy))
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.busy.discard(row.customer_id)
        self.sent.append(row.row)
        return Reply(ReplyKind.SUCCESS, 200, f"r{row.row}")


def _sorted_by_customer(tmp_path, customers: int, badges: int) -> Ledger:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    records = [
        (i, META, str(500 + (i - 1) // badges), "id", f"{i:024x}", None, None)
        for i in range(1, customers * badges + 1)
    ]
    ledger.ingest([row_batch(records)])
    return ledger


async def test_a_list_sorted_by_customer_never_overlaps_and_keeps_workers_busy(tmp_path):
    ledger = _sorted_by_customer(tmp_path, customers=20, badges=30)
    revoker = Recorder(delay=0.002)
    config = RunConfig(source="x", concurrency=8, retry=RetryPolicy(max_attempts=2))
    engine = Engine(ledger, revoker, Throttle(RateLimit(None)), config, rng=random.Random(0))
    await engine.run()
    assert revoker.overlaps == 0
    assert sorted(revoker.sent) == list(range(1, 601))
    assert revoker.most_in_flight == 8  # eight customers at once, though the list is sorted
    assert ledger.pending_count() == 0


async def test_auto_concurrency_grows_past_sixteen_when_latency_asks_for_it(tmp_path):
    ledger = _sorted_by_customer(tmp_path, customers=400, badges=1)
    revoker = Recorder(delay=0.05)
    config = RunConfig(source="x", concurrency=None, retry=RetryPolicy(max_attempts=2))
    engine = Engine(ledger, revoker, Throttle(RateLimit(1000.0)), config, rng=random.Random(0))
    await engine.run()
    assert ledger.pending_count() == 0 and revoker.overlaps == 0
    assert engine.cap.largest > 16 and revoker.most_in_flight > 16
    assert engine.cap.median_milliseconds() is not None


def test_a_sorted_fraud_export_provokes_no_521_from_the_real_sandbox(tmp_path, sandbox_for):
    from .conftest import CREDENTIALS, Badge, read_report, read_summary, run_cli, write_input

    badges = [Badge(META, str(700 + c), f"{c:04x}{b:020x}") for c in range(10) for b in range(60)]
    sandbox = sandbox_for(badges, latency=0.005)  # overlap is answered 521, as the API does
    out = tmp_path / "run"
    result = run_cli(
        "run",
        str(write_input(tmp_path / "in.csv", badges)),
        "--host",
        sandbox.url,
        "--rate",
        "unlimited",
        "--no-progress",
        "--out",
        str(out),
        env=CREDENTIALS,
    )
    assert result.returncode == 0, result.stderr
    truth = sandbox.truth()
    assert truth.busy_overlap == 0 and truth.requests == 600
    assert {r["status"] for r in read_report(out)} == {"revoked"}
    assert read_summary(out)["largestConcurrency"] >= 10
