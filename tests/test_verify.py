"""Read-back verification against the sandbox's read endpoint and its ground truth."""

from __future__ import annotations

import random

import pytest

from bulkrevoke.ledger import Ledger
from bulkrevoke.sandbox import FaultProfile
from bulkrevoke.send.client import BadgeReading, CapillaryClient
from bulkrevoke.send.reply import Reply, ReplyKind
from bulkrevoke.send.throttle import Throttle
from bulkrevoke.send.verify import VerifyPlan, select, settle, verify
from bulkrevoke.values import Credentials, RateLimit, RetryPolicy

from .conftest import (
    PASSWORD,
    USERNAME,
    failed_run,
    read_report,
)

OK = Reply(ReplyKind.SUCCESS, 200)


@pytest.mark.parametrize(
    "reading, verdict",
    [
        (BadgeReading(OK, {"e1": False}, 3), "inactive"),
        (BadgeReading(OK, {"e1": True}, 0), "active"),  # the item wins over the count
        (BadgeReading(OK, {}, 0), "inactive"),  # no ids, nothing active
        (BadgeReading(OK, {}, 2), "unverifiable"),  # no ids, something active
        (BadgeReading(OK, {"other": False}, None), "unverifiable"),
        (BadgeReading(Reply(ReplyKind.REJECTED, 400, None, "816"), {}, None), "unverifiable"),
        (None, "unverifiable"),
    ],
)
def test_a_verdict_claims_only_what_the_answer_says(reading, verdict):
    assert settle(reading, "e1") == verdict


def _failed_run(tmp_path, sandbox_for, shape="standard"):
    faults = FaultProfile(seed=7, server_error=0.2, drop=0.15)
    return failed_run(tmp_path, sandbox_for, count=120, seed=71, read_shape=shape, faults=faults)


async def _verify(out, sandbox, plan):
    with Ledger(out / "ledger.sqlite") as ledger:
        async with CapillaryClient(
            sandbox.url, Credentials(USERNAME, PASSWORD), timeout=5, concurrency=4
        ) as client:
            counts = await verify(
                ledger,
                client,
                Throttle(RateLimit(None)),
                RetryPolicy(max_attempts=4, base_delay=0.0),
                plan=plan,
                workers=4,
                now=lambda: "2026-12-01T00:00:00.000Z",
            )
        stored = {row: verdict for row, verdict, _ in ledger.verifications_between(1, 10**9)}
    return counts, stored


@pytest.mark.parametrize("shape", ["standard", "alternate"])
async def test_failed_rows_are_settled_as_the_server_has_them(tmp_path, sandbox_for, shape):
    badges, sandbox, out = _failed_run(tmp_path, sandbox_for, shape)
    report = read_report(out)
    counts, stored = await _verify(out, sandbox, VerifyPlan(sample=10, seed=3))
    truth = sandbox.truth()
    failed = [int(r["row"]) for r in report if r["status"] == "failed"]
    assert failed and set(failed) <= set(stored)
    for row in failed:
        state = truth.badges[badges[row - 1].key].active
        assert stored[row] == ("active" if state else "inactive"), row
    revoked = [int(r["row"]) for r in report if r["status"] == "revoked"]
    checked_revoked = [row for row in revoked if row in stored]
    assert len(checked_revoked) == 10 and {stored[r] for r in checked_revoked} == {"inactive"}
    assert sum(counts.values()) == len(stored)


async def test_count_only_answers_claim_nothing_against_the_truth(tmp_path, sandbox_for):
    badges, sandbox, out = _failed_run(tmp_path, sandbox_for, "counts")
    _, stored = await _verify(out, sandbox, VerifyPlan(every=True, seed=1))
    truth = sandbox.truth()
    for row, verdict in stored.items():
        active = truth.badges[badges[row - 1].key].active
        assert verdict in ("unverifiable", "active" if active else "inactive"), row
    assert "inactive" in stored.values()  # a customer with nothing active left is told


async def test_a_resumed_verification_checks_only_what_is_left(tmp_path, sandbox_for):
    _, sandbox, out = _failed_run(tmp_path, sandbox_for)
    plan = VerifyPlan(sample=5, seed=9)
    _, first = await _verify(out, sandbox, plan)
    reads = sandbox.truth().reads
    _, second = await _verify(out, sandbox, plan)
    assert first == second
    with Ledger(out / "ledger.sqlite") as ledger:
        assert list(select(ledger, plan)) == []
    assert reads > 0 and sandbox.truth().reads == reads


def test_the_sample_is_seeded(tmp_path):
    from bulkrevoke.ledger import row_batch
    from bulkrevoke.model import Outcome, Status

    def sampled(seed):
        path = tmp_path / f"l{seed}-{random.random()}.sqlite"
        with Ledger(path) as ledger:
            ledger.ingest(
                [row_batch([(i, "a" * 24, str(i), "id", f"{i:024x}", None, None) for i in range(1, 501)])]
            )
            ledger.record([(i, Outcome(Status.REVOKED, 1)) for i in range(1, 501)], {})
            rows = [t.row for chunk in select(ledger, VerifyPlan(sample=7, seed=seed)) for t in chunk]
            return rows, ledger.meta()["verification"]

    rows, meta = sampled(5)
    assert len(rows) == 7 and rows == sampled(5)[0] and rows != sampled(6)[0]
    assert (meta["seed"], meta["sample"], meta["sampled"]) == (5, 7, rows)
