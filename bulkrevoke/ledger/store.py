"""The crash-safe journal of a run, in one SQLite file.

The input's records are stored as they were validated, a batch of rows per BLOB (Arrow
IPC, LZ4): ingest, the send phase and the report each read them in row order, a batch
at a time, so ten million rows cost a few hundred inserts rather than ten million.
What happens to a row after ingest lives in small tables keyed by row number:
``duplicates`` (row → the earlier row it repeats) and ``outcomes``; ``timeline`` keeps what
was finished, sent and throttled in each 10-second bucket, one upsert per flush.

A row's life: ingested (with its validation result) → intent written before it is
sent (an ``outcomes`` row with ``in_doubt = 1``) → outcome written (``status`` set,
``in_doubt = 0``). After a crash at any instant every row is final, in doubt, or
untouched; ``--resume`` and ``bulkrevoke report`` read nothing else. Outcomes are
committed in batches. ``synchronous=FULL``: every commit is on disk before the next
request goes out, so a power cut or an OS crash can't undo an intent (a row that was
sent and then read as untouched would make a later 814 ``already_inactive`` instead of
``revoked_unconfirmed``). It costs an fsync per batch, a few a second.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from bulkrevoke.errors import RunDirError
from bulkrevoke.failpoints import failpoint
from bulkrevoke.ledger.schema import (
    OUTCOME_COLUMNS,
    SCHEMA,
    SCHEMA_VERSION,
    TIMELINE_SECONDS,
    ipc_options,
)
from bulkrevoke.model import Outcome, PendingRow, Status
from bulkrevoke.storage import Reserve, writing

#: Disk space set aside beside the ledger while a run holds it (see storage.Reserve).
RESERVE = "ledger.reserve"


class Ledger:
    """One run's ledger file. Not shared between threads; one process holds it (see lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._reserve = Reserve(path.with_name(RESERVE))
        with writing("the ledger", path.parent):
            self._db = self._open(path)

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        if not path.exists():
            # Created private before SQLite touches it: it holds customer identifiers,
            # and SQLite gives its -wal and -shm files the same mode.
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA temp_store=FILE")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        fresh = not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone()
        if not fresh and version != SCHEMA_VERSION:
            db.close()
            # (Schema 1 predates the version stamp: it reads as 0.)
            raise RunDirError(
                f"{path}: written by another version of bulkrevoke (ledger "
                f"schema {version or 1}, this version reads {SCHEMA_VERSION})"
            )
        # One transaction: a ledger has its tables and its version stamp, or neither.
        db.executescript(f"BEGIN;{SCHEMA}PRAGMA user_version = {SCHEMA_VERSION};COMMIT;")
        return db

    def close(self) -> None:
        self._reserve.release()
        self._db.close()

    def hold_reserve(self, size: int) -> None:
        """Set *size* bytes of disk aside for this ledger (``storage.Reserve``)."""
        with writing("the ledger", self.path.parent):
            self._reserve.hold(size)

    def release_reserve(self) -> None:
        """The disk is full: give the reserve back, so what is held in memory can be written."""
        self._reserve.release()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- meta and counters ----------------------------------------------------------------
    def set_meta(self, **values: Any) -> None:
        with self._transaction():
            self._db.executemany(
                "INSERT INTO meta(key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [(k, json.dumps(v)) for k, v in values.items()],
            )

    def meta(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self._db.execute("SELECT key, value FROM meta")}

    def counters(self) -> dict[str, float]:
        return dict(self._db.execute("SELECT name, value FROM counters"))

    def add_resume(self, at: str, rows_in_doubt: int, rows_pending: int) -> None:
        with self._transaction():
            self._db.execute("INSERT INTO resumes VALUES (?, ?, ?)", (at, rows_in_doubt, rows_pending))

    def resumes(self) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT at, rows_in_doubt, rows_pending FROM resumes ORDER BY rowid")
        return [{"at": a, "rowsInDoubt": d, "rowsPending": p} for a, d, p in rows]

    # --- ingest ---------------------------------------------------------------------------
    def reset_rows(self) -> None:
        """Forget a partial ingest (a run that died while reading its input)."""
        with self._transaction():
            for table in ("row_batches", "duplicates", "outcomes"):
                self._db.execute(f"DELETE FROM {table}")

    def ingest(self, batches: Sequence[Any]) -> None:
        """Store batches of validated rows (``row_schema()``, consecutive row numbers) as
        one BLOB."""
        import pyarrow as pa

        batches = [b for b in batches if b.num_rows]
        if not batches:
            return
        valid = sum(b.column(5).null_count for b in batches)  # error_code is null if valid
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, batches[0].schema, options=ipc_options()) as writer:
            for batch in batches:
                writer.write_batch(batch)
        with self._transaction():
            self._db.execute(
                "INSERT INTO row_batches(first_row, last_row, valid_rows, data) VALUES (?, ?, ?, ?)",
                (
                    batches[0].column(0)[0].as_py(),
                    batches[-1].column(0)[-1].as_py(),
                    valid,
                    memoryview(sink.getvalue()),
                ),
            )

    def row_batches(self) -> Iterator[Any]:
        """The stored rows in row order, a batch at a time (keyset paging: one BLOB in memory)."""
        import pyarrow as pa

        last = 0
        while True:
            found = self._db.execute(
                "SELECT last_row, data FROM row_batches WHERE first_row > ? ORDER BY first_row LIMIT 1",
                (last,),
            ).fetchone()
            if found is None:
                return
            last = found[0]
            yield from pa.ipc.open_stream(found[1])

    def add_duplicates(self, pairs: Iterable[tuple[int, int]]) -> None:
        """(row, first): *row* repeats the valid row *first*, which is sent in its stead."""
        with self._transaction():
            self._db.executemany("INSERT INTO duplicates(row, first) VALUES (?, ?)", pairs)

    def duplicates_between(self, first: int, last: int) -> list[tuple[int, int]]:
        return self._db.execute(
            "SELECT row, first FROM duplicates WHERE row BETWEEN ? AND ? ORDER BY row", (first, last)
        ).fetchall()

    # --- send -----------------------------------------------------------------------------
    def pending(self, batch: int = 512) -> Iterator[list[PendingRow]]:
        """Valid rows that are not duplicates and have no final outcome, in row order,
        *batch* at a time."""
        import pyarrow.compute as pc

        for stored in self.row_batches():
            rows = stored.column(0)
            first, last = rows[0].as_py(), rows[-1].as_py()
            done = {
                r
                for (r,) in self._db.execute(
                    "SELECT row FROM outcomes WHERE row BETWEEN ? AND ? AND status IS NOT NULL "
                    "UNION ALL SELECT row FROM duplicates WHERE row BETWEEN ? AND ?",
                    (first, last, first, last),
                )
            }
            doubt = {
                r
                for (r,) in self._db.execute(
                    "SELECT row FROM outcomes WHERE row BETWEEN ? AND ? AND in_doubt = 1 AND status IS NULL",
                    (first, last),
                )
            }
            valid = stored.filter(pc.is_null(stored.column(5)))
            chunk: list[PendingRow] = []
            for row, meta, customer, id_type, earned in zip(
                *(valid.column(i).to_pylist() for i in range(5)), strict=True
            ):
                if row in done:
                    continue
                chunk.append(PendingRow(row, meta, customer, id_type, earned, row in doubt))
                if len(chunk) >= batch:
                    yield chunk
                    chunk = []
            if chunk:
                yield chunk

    def mark_intent(self, rows: Sequence[int]) -> None:
        """Durably note that these rows are about to be sent: they are in doubt until
        their outcome is written."""
        with self._transaction():
            self._db.executemany(
                "INSERT INTO outcomes(row, in_doubt) VALUES (?, 1) "
                "ON CONFLICT(row) DO UPDATE SET in_doubt = 1",
                [(r,) for r in rows],
            )

    def clear_intent(self, rows: Sequence[int]) -> None:
        """These rows were never sent after all (the run stopped first)."""
        with self._transaction():
            self._db.executemany(
                "DELETE FROM outcomes WHERE row = ? AND status IS NULL", [(r,) for r in rows]
            )

    def record(self, outcomes: Sequence[tuple[int, Outcome]], counters: dict[str, float]) -> None:
        """Write final outcomes and add to the run's counters, in one transaction."""
        failpoint("ledger-record")
        with self._transaction():
            self._db.executemany(
                "INSERT INTO outcomes(row, status, in_doubt, is_active, error_code, "
                "error_source, error_message, http_status, attempts, request_id, completed_at) "
                "VALUES (?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(row) DO UPDATE SET "
                "status = excluded.status, in_doubt = 0, is_active = excluded.is_active, "
                "error_code = excluded.error_code, error_source = excluded.error_source, "
                "error_message = excluded.error_message, http_status = excluded.http_status, "
                "attempts = excluded.attempts, request_id = excluded.request_id, "
                "completed_at = excluded.completed_at",
                [
                    (
                        row,
                        o.status.value,
                        None if o.is_active is None else int(o.is_active),
                        o.error_code,
                        None if o.error_source is None else o.error_source.value,
                        o.error_message,
                        o.http_status,
                        o.attempts,
                        o.request_id,
                        o.completed_at,
                    )
                    for row, o in outcomes
                ],
            )
            self._db.executemany(
                "INSERT INTO counters(name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                [(k, v) for k, v in counters.items() if v],
            )
            self._add_to_timeline(outcomes, counters)

    def _add_to_timeline(self, outcomes: Sequence[tuple[int, Outcome]], counters: dict[str, float]) -> None:
        """A flush's outcomes and counters go to the bucket of the moment they are written."""
        requests, throttled = int(counters.get("requests", 0)), int(counters.get("throttled", 0))
        if not (outcomes or requests or throttled):
            return
        failed = sum(1 for _, o in outcomes if o.status is Status.FAILED)
        at = int(time.time()) // TIMELINE_SECONDS * TIMELINE_SECONDS
        self._db.execute(
            "INSERT INTO timeline VALUES (?, ?, ?, ?, ?) ON CONFLICT(at) DO UPDATE SET "
            "finished = finished + excluded.finished, failed = failed + excluded.failed, "
            "requests = requests + excluded.requests, throttled = throttled + excluded.throttled",
            (at, len(outcomes), failed, requests, throttled),
        )

    # --- reconcile ------------------------------------------------------------------------
    def outcomes_between(self, first: int, last: int) -> list[tuple[Any, ...]]:
        """(row, *OUTCOME_COLUMNS) of the rows from *first* to *last* that have one."""
        return self._db.execute(
            f"SELECT row, {', '.join(OUTCOME_COLUMNS)} FROM outcomes WHERE row BETWEEN ? AND ? ORDER BY row",
            (first, last),
        ).fetchall()

    def timeline(self) -> list[tuple[int, int, int, int, int]]:
        """(bucket start in epoch seconds, finished, failed, requests, throttled), in order."""
        return self._db.execute(
            "SELECT at, finished, failed, requests, throttled FROM timeline ORDER BY at"
        ).fetchall()

    def row_count(self) -> int:
        """Input records stored at ingest."""
        (count,) = self._db.execute(
            "SELECT COALESCE(SUM(last_row - first_row + 1), 0) FROM row_batches"
        ).fetchone()
        return int(count)

    def final_counts(self) -> dict[str, int]:
        """Rows with a final outcome, by status."""
        return dict(
            self._db.execute("SELECT status, COUNT(*) FROM outcomes WHERE status IS NOT NULL GROUP BY status")
        )

    def in_doubt_count(self) -> int:
        return int(
            self._db.execute(
                "SELECT COUNT(*) FROM outcomes WHERE in_doubt = 1 AND status IS NULL"
            ).fetchone()[0]
        )

    def pending_count(self) -> int:
        (valid,) = self._db.execute("SELECT COALESCE(SUM(valid_rows), 0) FROM row_batches").fetchone()
        (settled,) = self._db.execute(
            "SELECT (SELECT COUNT(*) FROM duplicates) "
            "+ (SELECT COUNT(*) FROM outcomes WHERE status IS NOT NULL)"
        ).fetchone()
        return int(valid - settled)

    # --- verification ---------------------------------------------------------------------
    def row_statuses(self) -> Iterator[tuple[int, str, str, str, str, str]]:
        """(row, badge meta id, customer id, identifier type, earned badge id, status) of
        every valid row that is not a duplicate, in row order; a row without a final
        outcome is ``not_attempted``."""
        import pyarrow.compute as pc

        for stored in self.row_batches():
            rows = stored.column(0)
            first, last = rows[0].as_py(), rows[-1].as_py()
            statuses = dict(
                self._db.execute(
                    "SELECT row, status FROM outcomes WHERE row BETWEEN ? AND ? AND status IS NOT NULL",
                    (first, last),
                )
            )
            repeats = {row for row, _ in self.duplicates_between(first, last)}
            valid = stored.filter(pc.is_null(stored.column(5)))
            for row, meta, customer, id_type, earned in zip(
                *(valid.column(i).to_pylist() for i in range(5)), strict=True
            ):
                if row not in repeats:
                    yield row, meta, customer, id_type, earned, statuses.get(row, "not_attempted")

    def rows_with_status(self, status: str) -> list[int]:
        return [
            row
            for (row,) in self._db.execute(
                "SELECT row FROM outcomes WHERE status = ? ORDER BY row", (status,)
            )
        ]

    def verified_rows(self) -> set[int]:
        return {row for (row,) in self._db.execute("SELECT row FROM verifications")}

    def record_verifications(self, verdicts: Sequence[tuple[int, str, str]]) -> None:
        """(row, verdict, verified at) for checked rows; a later check replaces an earlier."""
        with self._transaction():
            self._db.executemany(
                "INSERT INTO verifications(row, verified, verified_at) VALUES (?, ?, ?) "
                "ON CONFLICT(row) DO UPDATE SET verified = excluded.verified, "
                "verified_at = excluded.verified_at",
                verdicts,
            )

    def verifications_between(self, first: int, last: int) -> list[tuple[int, str, str]]:
        return self._db.execute(
            "SELECT row, verified, verified_at FROM verifications WHERE row BETWEEN ? AND ? ORDER BY row",
            (first, last),
        ).fetchall()

    def verification_counts(self) -> dict[str, int]:
        """Verdicts by kind, and ``revoked_active``: rows reported revoked that the server
        still shows active (an alarm)."""
        counts = dict(
            self._db.execute("SELECT verified, COUNT(*) FROM verifications GROUP BY verified").fetchall()
        )
        counts["revoked_active"] = self._db.execute(
            "SELECT COUNT(*) FROM verifications v JOIN outcomes o ON o.row = v.row "
            "WHERE v.verified = 'active' AND o.status = 'revoked'"
        ).fetchone()[0]
        return counts

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE … COMMIT, or ROLLBACK if the block or the commit failed; a
        failed write (disk full, read-only, I/O error) raises ``StorageError``."""
        with writing("the ledger", self.path.parent):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:  # SQLite rolls back by itself on a full disk
                    self._db.execute("ROLLBACK")
                raise
