"""The worker pool with a fake Revoker (a function) and a real ledger on disk."""

import asyncio
import random
import sqlite3
from collections import defaultdict

import pytest

from bulkrevoke.config import RunConfig
from bulkrevoke.ledger import Ledger, row_batch
from bulkrevoke.model import StopReason
from bulkrevoke.send.engine import Engine
from bulkrevoke.send.reply import Reply, ReplyKind
from bulkrevoke.send.throttle import Throttle
from bulkrevoke.values import RateLimit, RetryPolicy

META = "698dae82d30c4f6b3da9dc06"
FAST = RetryPolicy(max_attempts=4, base_delay=0.0, max_delay=0.0)


class FakeRevoker:
    """Answers from a script per row: a list of ReplyKinds, the last one repeated."""

    def __init__(self, script=None, default=ReplyKind.SUCCESS, delay=0.0):
        self.script = script or {}
        self.default = default
        self.delay = delay
        self.calls = defaultdict(int)
        self.in_flight = 0
        self.most_in_flight = 0

    async def revoke_earned_badge(self, row):
        self.calls[row.row] += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            kinds = self.script.get(row.row, [self.default])
            kind = kinds[min(self.calls[row.row], len(kinds)) - 1]
            return Reply(
                kind,
                200 if kind is ReplyKind.SUCCESS else 500,
                f"r{row.row}",
                None if kind is ReplyKind.SUCCESS else kind.value,
                "m",
            )
        finally:
            self.in_flight -= 1


def _ledger(tmp_path, rows, in_doubt=()):
    ledger = Ledger(tmp_path / "ledger.sqlite")
    ledger.ingest([row_batch([(i, META, str(i), "id", f"{i:024x}", None, None) for i in range(1, rows + 1)])])
    ledger.set_meta(rows=rows)
    if in_doubt:
        ledger.mark_intent(list(in_doubt))
    return ledger


def _engine(ledger, revoker, concurrency=4, **config):
    config.setdefault("retry", FAST)
    run_config = RunConfig(source="x", concurrency=concurrency, **config)
    return Engine(ledger, revoker, Throttle(RateLimit(None)), run_config, rng=random.Random(0))


def _statuses(ledger):
    """Every row's status in the ledger file (None: no final outcome)."""
    with sqlite3.connect(ledger.path) as db:
        outcomes = dict(db.execute("SELECT row, status FROM outcomes"))
    return {row: outcomes.get(row) for row in range(1, ledger.meta()["rows"] + 1)}


async def test_every_row_gets_one_outcome_and_concurrency_is_bounded(tmp_path):
    ledger = _ledger(tmp_path, 300)
    revoker = FakeRevoker(delay=0.001)
    stats = await _engine(ledger, revoker, concurrency=8).run()
    assert set(_statuses(ledger).values()) == {"revoked"}
    assert all(n == 1 for n in revoker.calls.values()) and len(revoker.calls) == 300
    assert revoker.most_in_flight == 8
    assert stats.requests == 300 and ledger.in_doubt_count() == 0


async def test_retries_then_success_and_814_after_lost_answer_is_unconfirmed(tmp_path):
    ledger = _ledger(tmp_path, 4)
    revoker = FakeRevoker(
        {
            1: [ReplyKind.SERVER_ERROR, ReplyKind.THROTTLED, ReplyKind.SUCCESS],
            2: [ReplyKind.LOST, ReplyKind.NOT_ACTIVE],
            3: [ReplyKind.SERVER_ERROR, ReplyKind.NOT_ACTIVE],
            4: [ReplyKind.GATEWAY_ERROR, ReplyKind.NOT_ACTIVE],
        }
    )
    stats = await _engine(ledger, revoker).run()
    assert _statuses(ledger) == {
        1: "revoked",
        2: "revoked_unconfirmed",
        3: "already_inactive",
        4: "revoked_unconfirmed",
    }
    assert stats.retries == 5 and stats.throttled == 1


async def test_a_row_in_doubt_from_a_crash_is_unconfirmed_on_814(tmp_path):
    ledger = _ledger(tmp_path, 2, in_doubt=[1])
    await _engine(ledger, FakeRevoker(default=ReplyKind.NOT_ACTIVE)).run()
    assert _statuses(ledger) == {1: "revoked_unconfirmed", 2: "already_inactive"}


async def test_attempts_run_out_as_failed(tmp_path):
    ledger = _ledger(tmp_path, 1)
    revoker = FakeRevoker(default=ReplyKind.SERVER_ERROR)
    await _engine(ledger, revoker).run()
    assert _statuses(ledger) == {1: "failed"} and revoker.calls[1] == FAST.max_attempts


async def test_credentials_refused_stop_the_run_and_leave_rows_pending(tmp_path):
    ledger = _ledger(tmp_path, 500)
    revoker = FakeRevoker(default=ReplyKind.UNAUTHORIZED, delay=0.001)
    engine = _engine(ledger, revoker, concurrency=4)
    await engine.run()
    assert engine.stop_reason == StopReason.AUTH
    assert sum(revoker.calls.values()) <= 4
    assert set(_statuses(ledger).values()) == {None}
    assert ledger.in_doubt_count() == 0  # a 401 applies nothing: every row resumes fresh


async def test_error_rate_breaker(tmp_path):
    ledger = _ledger(tmp_path, 400)
    revoker = FakeRevoker(default=ReplyKind.REDIRECT)
    engine = _engine(ledger, revoker, concurrency=2, max_error_rate=0.5)
    await engine.run()
    statuses = list(_statuses(ledger).values())
    assert engine.stop_reason == StopReason.ERROR_RATE
    assert 51 <= statuses.count("failed") <= 53 and statuses.count(None) >= 340


async def test_graceful_stop_finishes_in_flight_rows_and_withdraws_queued_intents(tmp_path):
    ledger = _ledger(tmp_path, 200)
    revoker = FakeRevoker(delay=0.02)
    engine = _engine(ledger, revoker, concurrency=4)
    task = asyncio.create_task(engine.run())
    await asyncio.sleep(0.07)
    engine.request_stop(StopReason.SIGNAL, "test stop")
    await task
    statuses = _statuses(ledger)
    done = [r for r, s in statuses.items() if s == "revoked"]
    assert 4 <= len(done) < 200
    assert sorted(done) == sorted(revoker.calls)  # every request sent got its outcome
    assert ledger.in_doubt_count() == 0


async def test_abort_leaves_in_flight_rows_in_doubt(tmp_path):
    ledger = _ledger(tmp_path, 50)
    revoker = FakeRevoker(delay=5.0)
    engine = _engine(ledger, revoker, concurrency=3)
    task = asyncio.create_task(engine.run())
    await asyncio.sleep(0.05)
    engine.abort()
    await task
    assert ledger.in_doubt_count() == 3
    assert set(_statuses(ledger).values()) == {None}


async def test_an_internal_error_stops_the_run_instead_of_hanging(tmp_path):
    # Even when every request raises: the feeder must not wait forever on a full queue.
    class Broken(FakeRevoker):
        async def revoke_earned_badge(self, row):
            await super().revoke_earned_badge(row)
            raise RuntimeError("bug")

    ledger = _ledger(tmp_path, 200)
    engine = _engine(ledger, Broken(), concurrency=2)
    await asyncio.wait_for(engine.run(), timeout=10)
    assert engine.stop_reason == StopReason.INTERNAL
    assert "internal error (RuntimeError)" in engine.stop_message
    assert 1 <= ledger.in_doubt_count() <= 2  # what was in flight: it may have landed
    assert set(_statuses(ledger).values()) == {None}
    assert ledger.pending_count() == 200


@pytest.mark.parametrize(
    ("kind", "status"), [(ReplyKind.SUCCESS, "revoked"), (ReplyKind.NOT_ACTIVE, "already_inactive")]
)
async def test_outcomes_are_flushed_with_counters(tmp_path, kind, status):
    ledger = _ledger(tmp_path, 10)
    await _engine(ledger, FakeRevoker(default=kind)).run()
    assert set(_statuses(ledger).values()) == {status} and ledger.in_doubt_count() == 0
    assert ledger.counters() == {"requests": 10}  # no retries, nothing throttled
    # Outcomes and counters are written in the same transactions: the timeline, which each
    # flush adds both to, holds all ten rows finished and all ten requests.
    finished, requests = (sum(bucket[i] for bucket in ledger.timeline()) for i in (1, 3))
    assert (finished, requests) == (10, 10)
