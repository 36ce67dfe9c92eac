"""The send phase: pending rows from the ledger, through a pool of workers, to outcomes.

    ledger.pending() ─▶ customer window ─▶ feeder ─▶ queue ─▶ workers ─▶ journal ─▶ ledger.record()
                        (look-ahead,        │ writes intent     │ throttle.acquire() before
                         one customer       ▼ before queueing   ▼ every attempt; client call
                         at a time)                               → retry.decide()

The feeder never hands out a row whose customer has a request queued or in flight
(``customers``); the number of workers follows the rate and the latency (``concurrency``).
The queue holds at most one cap of rows (INTENT_BATCH at the least), so memory does not
grow with the input and only the rows queued or in flight are "in doubt" if the process
dies. A failed row is an
``Outcome``; only stopping the run (credentials refused, error-rate breaker, a signal)
changes the flow.

A failed write stops sending at once; the journal stays in memory and is written when
room is made (the ledger's reserve is given back), so a full disk leaves at most the
rows in flight in doubt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from bulkrevoke.config import RunConfig
from bulkrevoke.errors import SafetyStop, StorageError
from bulkrevoke.ledger import Ledger
from bulkrevoke.logs import FILE_ONLY
from bulkrevoke.model import Outcome, PendingRow, Status, StopReason
from bulkrevoke.send.breakers import ErrorRateBreaker, NotTheApi, describe, stop_message
from bulkrevoke.send.client import Revoker
from bulkrevoke.send.concurrency import InFlightCap
from bulkrevoke.send.customers import CustomerWindow
from bulkrevoke.send.reply import Reply, ReplyKind
from bulkrevoke.send.retry import DOUBT_FROM_EARLIER_RUN, Retry, StopRun, decide, doubt_after, utc_now
from bulkrevoke.send.throttle import Throttle

log = logging.getLogger("bulkrevoke")

#: Outcomes are committed when this many are buffered, or every FLUSH_SECONDS.
FLUSH_ROWS = 512
FLUSH_SECONDS = 0.25
#: Rows looked ahead for other customers' requests (memory stays flat).
WINDOW_ROWS = 4096
#: Rows whose intent is written in one transaction, at the least, when the queue is refilled.
INTENT_BATCH = 32
#: The in-flight cap is resized at most this often (seconds).
RESIZE_SECONDS = 0.5


@dataclass
class SendStats:
    """Counters of one send phase (added to the ledger's running totals as they flush)."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0


class Engine:
    def __init__(
        self,
        ledger: Ledger,
        revoker: Revoker,
        throttle: Throttle,
        config: RunConfig,
        *,
        on_outcome: Callable[[Outcome], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._ledger = ledger
        self._revoker = revoker
        self._throttle = throttle
        self._config = config
        self._policy = config.retry
        self._on_outcome = on_outcome
        self._rng = rng or random.Random()
        self.cap = InFlightCap(config.concurrency)
        self._window = CustomerWindow(WINDOW_ROWS)
        # Rows handed out (intent written), not yet taken by a worker: at most one cap's worth.
        self._queue: asyncio.Queue[PendingRow | None] = asyncio.Queue()
        self._changed = asyncio.Event()  # a row was taken or finished, or the run stops
        self._workers = 0
        self._resized_at = -math.inf
        self._journal: list[tuple[int, Outcome]] = []
        self._flushed = SendStats()
        self.stats = SendStats()
        self.stop_reason: str | None = None
        self.stop_message = ""
        self.storage_error: StorageError | None = None
        self._unsent: list[PendingRow] = []
        self._waiting: set[asyncio.Task[None]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._error_rate = ErrorRateBreaker(config.max_error_rate)
        self._not_the_api = NotTheApi()
        self._aborted = False

    # --- control --------------------------------------------------------------------------
    def request_stop(self, reason: str, message: str) -> None:
        """Stop taking rows; requests in flight finish, rows waiting are left pending."""
        if self.stop_reason is None:
            self.stop_reason, self.stop_message = reason, message
            log.warning("stopping: %s", message)
        self._changed.set()
        for task in list(self._waiting):
            task.cancel()

    def storage_fault(self, error: StorageError) -> None:
        """A write to the run directory failed: no new request leaves. Requests in flight
        finish; their outcomes join the journal in memory, written once the reserve given
        back here makes room (or left in doubt if nothing can be written)."""
        if self.storage_error is not None:
            return
        self.storage_error = error
        self._ledger.release_reserve()
        # Whatever stopped the run before, this is what the operator has to fix. The line
        # goes to run.log only: the command line says it once, when the run has ended.
        self.stop_reason, self.stop_message = StopReason.STORAGE, str(error)
        log.error("stopping: %s", error, extra=FILE_ONLY)
        self.request_stop(StopReason.STORAGE, str(error))

    def abort(
        self, reason: str = StopReason.SIGNAL, message: str = "interrupted twice: stopping at once"
    ) -> None:
        """Stop at once: cancel requests in flight (their rows stay in doubt)."""
        self._aborted = True
        self.request_stop(reason, message)
        for task in self._tasks:
            task.cancel()

    # --- the phase ------------------------------------------------------------------------
    async def run(self) -> SendStats:
        flusher = asyncio.create_task(self._flush_periodically())
        self._tasks = [asyncio.create_task(self._feed())]
        try:
            # Workers are added as the cap grows: wait until every task, old or new, is done.
            while running := [task for task in self._tasks if not task.done()]:
                await asyncio.wait(running)
            for task in self._tasks:  # an error was logged where it happened
                if not task.cancelled():
                    task.exception()
        finally:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
            self._release_unsent()
            if not self._flush() and self._journal:
                log.error(
                    "%d outcomes could not be written: their rows stay in doubt, and --resume settles them",
                    len(self._journal),
                    extra=FILE_ONLY,
                )
        return self.stats

    async def _feed(self) -> None:
        """Fill the look-ahead window from the ledger, and hand rows of customers with
        nothing in flight to the workers, writing their intent first (a batch at a time:
        when the queue is down to half a cap, it is filled to a whole one)."""
        try:
            await self._stage_rows()
        except StorageError as exc:  # the intents could not be written: those rows stay unsent
            self.storage_fault(exc)
        except Exception as exc:  # a bug, or a ledger that can't be read: the workers must not wait
            log.exception("reading pending rows: internal error")
            self.request_stop(
                StopReason.INTERNAL,
                f"internal error ({type(exc).__name__}) while reading pending rows: stopping",
            )
        for _ in range(self._workers):
            self._queue.put_nowait(None)

    async def _stage_rows(self) -> None:
        pending = self._ledger.pending(batch=256)
        exhausted = False
        window, queue = self._window, self._queue
        while not self.stop_reason:
            while not exhausted and window.room > 0:
                chunk = next(pending, None)
                if chunk is None:
                    exhausted = True
                for row in chunk or ():
                    window.add(row)
            # At least INTENT_BATCH rows a refill, so that a small cap (a fast server) does
            # not cost a ledger transaction per row.
            target = max(self._resize(), INTENT_BATCH)
            if queue.qsize() <= target // 2 and (batch := window.take(target - queue.qsize())):
                self._ledger.mark_intent([row.row for row in batch])
                for row in batch:
                    queue.put_nowait(row)
                continue
            if exhausted and not window.waiting:
                break
            self._changed.clear()
            await self._changed.wait()

    def _resize(self) -> int:
        """Follow the rate and latency (at most every RESIZE_SECONDS); add workers up to
        the cap. Workers above it leave when they finish their row."""
        now = asyncio.get_running_loop().time()
        if now - self._resized_at >= RESIZE_SECONDS:
            self._resized_at = now
            self.cap.resize(self._throttle.current_rate)
            while self._workers < self.cap.value:
                self._workers += 1
                self._tasks.append(asyncio.create_task(self._work()))
        return self.cap.value

    async def _work(self) -> None:
        try:
            while (row := await self._queue.get()) is not None:
                if self.stop_reason:
                    self._unsent.append(row)
                    continue
                try:
                    outcome = await self._send(row)
                except Exception as exc:  # a bug, not a reply: stop rather than hang or guess
                    log.exception("row %d: internal error", row.row)
                    self.abort(
                        StopReason.INTERNAL,
                        f"internal error ({type(exc).__name__}): "
                        "stopping; the row in flight is left in doubt",
                    )
                    raise
                finally:
                    self._window.release(row)
                    self._changed.set()
                if outcome is not None:
                    self._finish(row, outcome)
                if self._workers > self.cap.value:
                    break  # the cap shrank
        finally:
            self._workers -= 1

    async def _send(self, row: PendingRow) -> Outcome | None:
        """Attempts for one row until it has an outcome, or None if the run stops first."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        doubt = DOUBT_FROM_EARLIER_RUN if row.in_doubt else None
        attempt = 0
        in_request = False
        try:
            while True:
                if self._throttle.must_wait() and not await self._wait(self._throttle.acquire()):
                    return self._leave_pending(row, doubt)
                attempt += 1
                self.stats.requests += 1
                if attempt > 1:
                    self.stats.retries += 1
                in_request = True
                sent_at = loop.time()
                try:
                    reply = await self._revoker.revoke_earned_badge(row)
                except SafetyStop as exc:
                    self.request_stop(StopReason.AUTH, str(exc))
                    return self._leave_pending(row, doubt)
                in_request = False
                if reply.http_status is not None:
                    self.cap.observe(loop.time() - sent_at)
                self._observe(reply)
                decision = decide(
                    reply,
                    attempt=attempt,
                    doubt=doubt,
                    elapsed=loop.time() - started,
                    policy=self._policy,
                    rng=self._rng,
                    completed_at=utc_now(),
                )
                if isinstance(decision, Outcome):
                    return decision
                if isinstance(decision, StopRun):
                    self.request_stop(decision.reason, stop_message(decision.reason, reply))
                    return self._leave_pending(row, doubt)
                doubt = doubt or doubt_after(reply, attempt)
                assert isinstance(decision, Retry)
                log.info(
                    "row %d: attempt %d got %s; retrying in %.2fs",
                    row.row,
                    attempt,
                    describe(reply),
                    decision.delay,
                )
                if self.stop_reason or not await self._wait(asyncio.sleep(decision.delay)):
                    return self._leave_pending(row, doubt)
        except asyncio.CancelledError:
            if not in_request:
                self._leave_pending(row, doubt)  # aborted while waiting: nothing left
            raise

    async def _wait(self, waiting: Coroutine[Any, Any, None]) -> bool:
        """Await a wait that a graceful stop may cut short; False if it was."""
        task = asyncio.current_task()
        assert task is not None
        if self.stop_reason:
            waiting.close()
            return False
        self._waiting.add(task)
        try:
            await waiting
            return True
        except asyncio.CancelledError:
            if self.stop_reason and not self._aborted:
                if hasattr(task, "uncancel"):
                    task.uncancel()
                return False
            raise
        finally:
            self._waiting.discard(task)

    def _observe(self, reply: Reply) -> None:
        if (reason := self._not_the_api.observe(reply)) is not None:
            self.request_stop(StopReason.NOT_API, reason)
        if reply.kind is ReplyKind.THROTTLED:
            self.stats.throttled += 1
            self._throttle.on_throttled(reply.retry_after, self._policy.retry_after_cap)
        elif reply.retry_after is not None:
            self._throttle.on_pause_hint(reply.retry_after, self._policy.retry_after_cap)
        elif reply.kind in (ReplyKind.SUCCESS, ReplyKind.NOT_ACTIVE):
            self._throttle.on_success()

    def _leave_pending(self, row: PendingRow, doubt: str | None) -> Outcome | None:
        """The row gets no outcome in this run; if nothing of it can have landed, its intent
        is withdrawn so that a resume sends it as a fresh row."""
        if not doubt:
            self._unsent.append(row)
        return None

    def _finish(self, row: PendingRow, outcome: Outcome) -> None:
        self._journal.append((row.row, outcome))
        if outcome.status in (Status.FAILED, Status.INVALID) and outcome.error_source is not None:
            log.warning(
                "row %d %s: %s %s",
                row.row,
                outcome.status.value,
                outcome.error_code,
                outcome.error_message or "",
            )
        if self._on_outcome is not None:
            self._on_outcome(outcome)
        if (reason := self._error_rate.record(outcome.status is Status.FAILED)) is not None:
            self.request_stop(StopReason.ERROR_RATE, reason)
        if len(self._journal) >= FLUSH_ROWS:
            self._flush()

    # --- the journal ----------------------------------------------------------------------
    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            self._flush()

    def _flush(self) -> bool:
        """Commit the journal; False if the write failed (the journal is kept for the next
        try, and the run stops)."""
        journal, self._journal = self._journal, []
        delta: dict[str, float] = {
            "requests": self.stats.requests - self._flushed.requests,
            "retries": self.stats.retries - self._flushed.retries,
            "throttled": self.stats.throttled - self._flushed.throttled,
        }
        if journal or any(delta.values()):
            try:
                self._ledger.record(journal, delta)
            except StorageError as exc:
                self._journal[:0] = journal
                first = self.storage_error is None
                self.storage_fault(exc)
                return first and self._flush()  # once more, in the room the reserve left
            self._flushed.requests = self.stats.requests
            self._flushed.retries = self.stats.retries
            self._flushed.throttled = self.stats.throttled
        return True

    def _release_unsent(self) -> None:
        while not self._queue.empty():
            row = self._queue.get_nowait()
            if row is not None:
                self._unsent.append(row)
        fresh = [r.row for r in self._unsent if not r.in_doubt]
        if fresh:
            try:
                self._ledger.clear_intent(fresh)
            except StorageError as exc:  # they stay in doubt: a resume sends them once more
                self.storage_fault(exc)
        self._unsent.clear()
