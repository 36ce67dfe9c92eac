"""Storage faults inside the process: the engine when its ledger can't be written, run.log
when it can't be written, and the line that names the fault."""

from __future__ import annotations

import errno
import logging
import sqlite3

import pytest

from bulkrevoke import storage
from bulkrevoke.errors import StorageError
from bulkrevoke.logs import run_logging
from bulkrevoke.model import StopReason

from .test_engine import FakeRevoker, _engine, _ledger, _statuses


class FullDisk:
    """Makes a ledger's writes fail as on a full disk, until its reserve is given back (or
    for good), counting the requests sent by the time of the first failure."""

    def __init__(self, ledger, revoker, *, after_records, recovers):
        self.ledger, self.revoker = ledger, revoker
        self.after_records, self.recovers = after_records, recovers
        self.full = False
        self.requests_when_full: int | None = None
        self._record, self._mark_intent = ledger.record, ledger.mark_intent
        self._release = ledger.release_reserve
        ledger.record, ledger.mark_intent = self.record, self.mark_intent
        ledger.release_reserve = self.release_reserve

    def _check(self):
        if self.full:
            if self.requests_when_full is None:
                self.requests_when_full = sum(self.revoker.calls.values())
            raise storage.fault("the ledger", self.ledger.path.parent, OSError(errno.ENOSPC, ""))

    def record(self, outcomes, counters):
        if outcomes:
            self.after_records -= 1
            self.full = self.full or self.after_records == -1  # fills once
        self._check()
        self._record(outcomes, counters)

    def mark_intent(self, rows):
        self._check()
        self._mark_intent(rows)

    def release_reserve(self):
        self.full = self.full and not self.recovers
        self._release()


async def _send_until_the_disk_fills(tmp_path, monkeypatch, *, recovers):
    """400 rows, 4 in flight, outcomes flushed 20 at a time; the fourth flush fills the disk."""
    monkeypatch.setattr("bulkrevoke.send.engine.FLUSH_ROWS", 20)
    ledger = _ledger(tmp_path, 400)
    revoker = FakeRevoker(delay=0.002)
    disk = FullDisk(ledger, revoker, after_records=3, recovers=recovers)
    engine = _engine(ledger, revoker, concurrency=4)
    await engine.run()  # ends: nothing waits on a write that keeps failing
    assert engine.stop_reason == StopReason.STORAGE
    return engine, ledger, revoker, disk


async def test_a_full_disk_stops_sending_at_once_and_the_reserve_records_every_answer(tmp_path, monkeypatch):
    engine, ledger, revoker, disk = await _send_until_the_disk_fills(tmp_path, monkeypatch, recovers=True)
    assert "No space left on device" in engine.stop_message
    # No request left after the failure was seen; every answer received is recorded.
    assert sum(revoker.calls.values()) == disk.requests_when_full < 400
    statuses = _statuses(ledger)
    assert sorted(r for r, s in statuses.items() if s == "revoked") == sorted(revoker.calls)
    assert ledger.in_doubt_count() == 0 and ledger.counters()["requests"] == len(revoker.calls)


async def test_a_disk_that_stays_full_leaves_in_doubt_only_what_was_held_in_memory(tmp_path, monkeypatch):
    _, ledger, revoker, disk = await _send_until_the_disk_fills(tmp_path, monkeypatch, recovers=False)
    recorded = [r for r, s in _statuses(ledger).items() if s]
    assert len(recorded) == 3 * 20
    # The rest of what was sent is in doubt: the journal (< FLUSH_ROWS) and the rows in
    # flight. Rows queued but never sent stay in doubt too, as their intents can't be
    # withdrawn on a disk that accepts nothing.
    assert sum(revoker.calls.values()) == disk.requests_when_full
    assert len(revoker.calls) - len(recorded) <= 20 + 4
    assert ledger.in_doubt_count() >= len(revoker.calls) - len(recorded)


def test_a_line_run_log_cannot_take_stops_the_run_without_a_traceback(tmp_path, capfd):
    faults = []
    with run_logging(tmp_path, "r1", log_format="text", verbosity=0) as run_log:
        run_log.on_fault = faults.append

        def full(*args):
            raise OSError(errno.ENOSPC, "No space left on device")

        run_log.stream.write = full
        logging.getLogger("bulkrevoke").info("one line too many")
        logging.getLogger("bulkrevoke").info("and another")
    assert [f.errno for f in faults] == [errno.ENOSPC, errno.ENOSPC]
    assert run_log.fault is faults[0]
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize(
    ("error", "cause", "remedy"),
    [
        (OSError(errno.ENOSPC, "x"), "No space left on device", "free space"),
        (OSError(errno.EDQUOT, "x"), "Disk quota exceeded", "raise the quota"),
        (OSError(errno.EROFS, "x"), "Read-only file system", "make the filesystem writable"),
        (
            sqlite3.OperationalError("attempt to write a readonly database"),
            "Read-only file system",
            "make the filesystem writable",
        ),
        (sqlite3.OperationalError("disk I/O error"), "Input/output error", "check the disk"),
        # Full says SQLite, with room on the disk: a quota, not the disk.
        (sqlite3.OperationalError("database or disk is full"), "database or disk is full", "raise the quota"),
    ],
)
def test_a_storage_fault_is_one_line_with_its_cause_and_what_to_do(tmp_path, error, cause, remedy):
    message = str(storage.fault("the ledger", tmp_path, error))
    assert message.startswith(f"cannot write the ledger in {tmp_path}: {cause}")
    assert remedy in message and message.endswith("then run again with --resume")
    assert "\n" not in message


def test_sql_that_is_wrong_is_a_bug_not_a_storage_fault(tmp_path):
    with pytest.raises(sqlite3.OperationalError), storage.writing("the ledger", tmp_path):
        sqlite3.connect(":memory:").execute("SELECT nonsense FROM nowhere")
    with pytest.raises(StorageError), storage.writing("the ledger", tmp_path):
        raise OSError(errno.EIO, "Input/output error")
