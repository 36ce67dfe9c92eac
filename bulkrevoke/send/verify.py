"""Read-back verification: is each checked row's earned badge really inactive on the server?

Which rows: by default every ``failed``, ``revoked_unconfirmed`` and ``not_attempted`` row
(their state is unknown or in doubt) plus a random sample of ``revoked`` rows (``sample``,
seeded, and the seed recorded); with ``every`` each row that was or may have been sent.
One read per customer and badge meta id, shared by that pair's rows, goes through the
run's rate limit, retries and proxy, and never two at once for one customer. Each checked
row is settled:

- ``inactive`` / ``active``: an ``earns[]`` item names the row's earned badge id with its
  state (see ``client.earned_states`` for the item shapes understood);
- ``inactive``: no item names it, but ``activeEarnedCount`` is 0;
- ``unverifiable``: anything else (no ids and active earns left, an unknown customer, no
  answer after the retries). Nothing is guessed.

Verdicts are stored in the ledger as they come, so an interrupted verification resumes
where it stopped. Selected rows are taken a chunk at a time, so memory stays flat; a pair
whose rows fall in two chunks is read twice, which costs a request and changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from bulkrevoke.config import RunConfig
from bulkrevoke.errors import SafetyStop
from bulkrevoke.ledger import Ledger
from bulkrevoke.model import PendingRow, Status
from bulkrevoke.send.client import BadgeReading
from bulkrevoke.send.concurrency import UNLIMITED_CAP
from bulkrevoke.send.customers import CustomerWindow
from bulkrevoke.send.reply import ReplyKind
from bulkrevoke.send.retry import backoff
from bulkrevoke.send.throttle import Throttle
from bulkrevoke.values import RetryPolicy

log = logging.getLogger("bulkrevoke")

INACTIVE, ACTIVE, UNVERIFIABLE = "inactive", "active", "unverifiable"
VERDICTS = (INACTIVE, ACTIVE, UNVERIFIABLE)
#: Statuses checked by default: their badge's state is unknown or in doubt.
IN_QUESTION = frozenset({Status.FAILED.value, Status.REVOKED_UNCONFIRMED.value, Status.NOT_ATTEMPTED.value})
#: Statuses of rows that were, or may have been, sent (``every``).
SENT = IN_QUESTION | {Status.REVOKED.value, Status.ALREADY_INACTIVE.value}
DEFAULT_SAMPLE = 100
#: Rows settled per chunk (and per ledger commit).
CHUNK_ROWS = 20_000
_STOPPING_KINDS = (ReplyKind.UNAUTHORIZED, ReplyKind.TLS_ERROR, ReplyKind.PROXY_REFUSED)
_FINAL_KINDS = (
    ReplyKind.REJECTED,
    ReplyKind.HTTP_ERROR,
    ReplyKind.REDIRECT,
    ReplyKind.NOT_ACTIVE,
    ReplyKind.UNEXPECTED,
)


class Reader(Protocol):
    """The seam in front of the network (the client, or a test's fake)."""

    async def read_earned_badges(
        self, customer_id: str, identifier_type: str, badge_meta_id: str
    ) -> BadgeReading: ...


@dataclass(frozen=True, slots=True)
class VerifyPlan:
    """Which rows to check: the sample of revoked rows, or every sent row."""

    sample: int = DEFAULT_SAMPLE
    every: bool = False
    seed: int | None = None  # None: drawn at random, and recorded


class Target(NamedTuple):
    row: int
    badge_meta_id: str
    customer_id: str
    identifier_type: str
    earned_badge_id: str


def settle(reading: BadgeReading | None, earned_badge_id: str) -> str:
    """A row's verdict from the read of its customer and badge meta id."""
    if reading is None or reading.reply.kind is not ReplyKind.SUCCESS:
        return UNVERIFIABLE
    state = reading.states.get(earned_badge_id)
    if state is not None:
        return ACTIVE if state else INACTIVE
    return INACTIVE if reading.active_count == 0 else UNVERIFIABLE


def select(ledger: Ledger, plan: VerifyPlan) -> Iterator[list[Target]]:
    """The rows to check that have no verdict yet, in row order, a chunk at a time. The
    sample is drawn once (its seed and size are recorded in the ledger's meta)."""
    sampled = _sample(ledger, plan)
    done = ledger.verified_rows()
    chunk: list[Target] = []
    for row, meta, customer, id_type, earned, status in ledger.row_statuses():
        wanted = status in (SENT if plan.every else IN_QUESTION) or row in sampled
        if wanted and row not in done:
            chunk.append(Target(row, meta, customer, id_type, earned))
            if len(chunk) >= CHUNK_ROWS:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def _sample(ledger: Ledger, plan: VerifyPlan) -> set[int]:
    recorded = ledger.meta().get("verification")
    if isinstance(recorded, dict) and "sampled" in recorded:
        return set(recorded["sampled"])  # a resumed verification keeps its sample
    seed = plan.seed if plan.seed is not None else random.SystemRandom().randrange(2**32)
    revoked = ledger.rows_with_status(Status.REVOKED.value)
    size = 0 if plan.every else min(plan.sample, len(revoked))
    sampled = sorted(random.Random(seed).sample(revoked, size))
    ledger.set_meta(verification={"seed": seed, "sample": size, "every": plan.every, "sampled": sampled})
    return set(sampled)


async def verify(
    ledger: Ledger,
    reader: Reader,
    throttle: Throttle,
    policy: RetryPolicy,
    *,
    plan: VerifyPlan,
    workers: int,
    now: Any,
) -> dict[str, int]:
    """Check the rows the plan selects; store each verdict; return the counts of this pass.
    Raises ``SafetyStop`` when the server refuses the credentials or the certificate."""
    counts = dict.fromkeys(VERDICTS, 0)
    for chunk in select(ledger, plan):
        pairs: dict[tuple[str, str, str], list[Target]] = {}
        for target in chunk:
            key = (target.identifier_type, target.customer_id, target.badge_meta_id)
            pairs.setdefault(key, []).append(target)
        readings = await _read_pairs(reader, throttle, policy, list(pairs.values()), workers)
        verdicts = [
            (target.row, settle(readings.get(targets[0].row), target.earned_badge_id), now())
            for targets in pairs.values()
            for target in targets
        ]
        ledger.record_verifications(verdicts)
        for _, verdict, _ in verdicts:
            counts[verdict] += 1
        log.info("verified %d rows: %s", len(verdicts), counts)
    return counts


async def _read_pairs(
    reader: Reader, throttle: Throttle, policy: RetryPolicy, pairs: Sequence[list[Target]], workers: int
) -> dict[int, BadgeReading]:
    """One read per pair (keyed by its first row), never two at once for one customer."""
    window = CustomerWindow(limit=len(pairs))
    for targets in pairs:
        first = targets[0]
        window.add(
            PendingRow(
                first.row,
                first.badge_meta_id,
                first.customer_id,
                first.identifier_type,
                first.earned_badge_id,
                False,
            )
        )
    readings: dict[int, BadgeReading] = {}
    changed = asyncio.Event()
    rng = random.Random()

    async def work() -> None:
        while window.waiting:
            taken = window.take(1)
            if not taken:
                changed.clear()
                await changed.wait()
                continue
            try:
                readings[taken[0].row] = await _read(reader, throttle, policy, taken[0], rng)
            finally:
                window.release(taken[0])
                changed.set()

    tasks = [asyncio.create_task(work()) for _ in range(max(1, min(workers, len(pairs))))]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
    return readings


async def _read(
    reader: Reader, throttle: Throttle, policy: RetryPolicy, row: PendingRow, rng: random.Random
) -> BadgeReading:
    """A read with retries: reads change nothing, so any failure may be tried again."""
    reading: BadgeReading | None = None
    for attempt in range(1, policy.max_attempts + 1):
        if throttle.must_wait():
            await throttle.acquire()
        reading = await reader.read_earned_badges(row.customer_id, row.identifier_type, row.badge_meta_id)
        reply = reading.reply
        if reply.kind is ReplyKind.SUCCESS:
            throttle.on_success()
            return reading
        if reply.kind in _STOPPING_KINDS:
            raise SafetyStop(f"verification stopped: {reply.error_message or reply.error_code}")
        if reply.kind in _FINAL_KINDS:
            return reading
        if reply.kind is ReplyKind.THROTTLED:
            throttle.on_throttled(reply.retry_after, policy.retry_after_cap)
            if reply.retry_after is not None:
                continue
        if attempt < policy.max_attempts:
            await asyncio.sleep(backoff(attempt, policy, rng))
    assert reading is not None
    return reading


async def read_back(
    config: RunConfig, ledger: Ledger, reader: Reader, throttle: Throttle, *, now: Callable[[], str]
) -> None:
    """Verification (``run --verify``, ``bulkrevoke verify``): through the run's client and
    throttle. A refusal (credentials, certificate) ends it with a log line; what was checked
    stays checked."""
    plan = VerifyPlan(sample=config.sample, every=config.verify_all)
    log.info(
        "verifying against %s: the rows in question and %s",
        config.host or "the sandbox",
        "every sent row" if plan.every else f"a sample of {plan.sample} revoked rows",
    )
    try:
        counts = await verify(
            ledger,
            reader,
            throttle,
            config.retry,
            plan=plan,
            workers=config.concurrency or UNLIMITED_CAP,
            now=now,
        )
    except SafetyStop as exc:
        log.error("%s", exc)
        return
    ledger.set_meta(verified_at=now())
    log.info("verification: %s", counts)
