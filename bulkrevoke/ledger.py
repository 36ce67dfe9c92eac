"""The crash-safe journal of a run: one SQLite row per input record.

A row's life: ingested (with its validation result) → intent written before it is
sent (``in_doubt = 1``) → outcome written (``status`` set, ``in_doubt = 0``). After a
crash at any instant every row is final, in doubt, or untouched; ``--resume`` and
``bulkrevoke report`` read nothing else. Outcomes are committed in batches; the WAL
journal with ``synchronous=NORMAL`` survives the death of the process.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .outcome import Outcome

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rows (
    row INTEGER PRIMARY KEY,
    badge_meta_id TEXT, customer_id TEXT, identifier_type TEXT, earned_badge_id TEXT,
    valid INTEGER NOT NULL,
    status TEXT,
    in_doubt INTEGER NOT NULL DEFAULT 0,
    is_active INTEGER, error_code TEXT, error_source TEXT, error_message TEXT,
    http_status INTEGER, attempts INTEGER NOT NULL DEFAULT 0, request_id TEXT,
    duplicate_of INTEGER, completed_at TEXT
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value REAL NOT NULL);
CREATE TABLE IF NOT EXISTS resumes (at TEXT NOT NULL, rows_in_doubt INTEGER NOT NULL,
                                    rows_pending INTEGER NOT NULL);
"""
# The report, rendered by SQLite: a row without a final outcome gets its report-time
# status here (``would_revoke`` in a dry run, ``not_attempted`` otherwise), so the
# report is always derived from the ledger and never stored twice.
_REPORT_VIEW = """
CREATE TEMP VIEW report AS
SELECT row, badge_meta_id, {customer} AS customer_id, identifier_type, earned_badge_id,
       COALESCE(status, {pending_status}) AS status,
       CASE is_active WHEN 1 THEN 'true' WHEN 0 THEN 'false' END AS is_active,
       CASE WHEN status IS NULL AND NOT {dry_run} AND in_doubt = 1 THEN 'in_doubt'
            ELSE error_code END AS error_code,
       CASE WHEN status IS NULL AND NOT {dry_run} THEN 'run' ELSE error_source END
           AS error_source,
       CASE WHEN status IS NULL AND NOT {dry_run} THEN
                CASE in_doubt WHEN 1 THEN {doubt_message} ELSE {unsent_message} END
            ELSE error_message END AS error_message,
       http_status, attempts, request_id, duplicate_of, completed_at
FROM rows
"""


@dataclass(frozen=True, slots=True)
class PendingRow:
    """A valid row without a final outcome, as handed to the engine."""

    row: int
    badge_meta_id: str
    customer_id: str
    identifier_type: str
    earned_badge_id: str
    in_doubt: bool


#: (row, badgeMetaId, customerId, identifierType, earnedBadgeId, valid, status, errorCode,
#:  errorSource, errorMessage)
IngestRecord = tuple[int, str, str, str, str, int, str | None, str | None, str | None, str | None]


class Ledger:
    """One run's ledger file. Not shared between threads; one process holds it (see lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.exists():
            # Created private before SQLite touches it: it holds customer identifiers,
            # and SQLite gives its -wal and -shm files the same mode.
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA temp_store=FILE")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

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
                [(k, json.dumps(v)) for k, v in values.items()])

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
            self._db.execute("DELETE FROM rows")

    def ingest(self, records: Iterable[IngestRecord]) -> None:
        """Insert validated records (see ``IngestRecord``)."""
        with self._transaction():
            self._db.executemany(
                "INSERT INTO rows(row, badge_meta_id, customer_id, identifier_type, "
                "earned_badge_id, valid, status, error_code, error_source, error_message) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                records)

    def mark_duplicates(self) -> int:
        """A valid row equal to an earlier valid row becomes ``duplicate`` of the first.

        Found through an on-disk index, so memory stays flat whatever the input's size."""
        with self._transaction():
            self._db.execute(
                "CREATE INDEX IF NOT EXISTS rows_identity ON rows(earned_badge_id, badge_meta_id, "
                "customer_id, identifier_type, row) WHERE valid = 1")
            cursor = self._db.execute(
                """
                UPDATE rows SET status = 'duplicate', duplicate_of = firsts.first
                FROM (
                    SELECT earned_badge_id e, badge_meta_id b, customer_id c, identifier_type t,
                           MIN(row) AS first
                    FROM rows WHERE valid = 1
                    GROUP BY earned_badge_id, badge_meta_id, customer_id, identifier_type
                    HAVING COUNT(*) > 1
                ) AS firsts
                WHERE rows.valid = 1 AND rows.earned_badge_id = firsts.e
                  AND rows.badge_meta_id = firsts.b AND rows.customer_id = firsts.c
                  AND rows.identifier_type = firsts.t AND rows.row > firsts.first
                """)
            return cursor.rowcount

    # --- send -----------------------------------------------------------------------------
    def pending(self, batch: int = 512) -> Iterator[list[PendingRow]]:
        """Rows without a final outcome, in row order, a batch at a time (keyset paging)."""
        last = 0
        while True:
            rows = self._db.execute(
                "SELECT row, badge_meta_id, customer_id, identifier_type, earned_badge_id, "
                "in_doubt FROM rows WHERE row > ? AND status IS NULL AND valid = 1 "
                "ORDER BY row LIMIT ?", (last, batch)).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield [PendingRow(r[0], r[1], r[2], r[3], r[4], bool(r[5])) for r in rows]

    def mark_intent(self, first: int, last: int) -> None:
        """Durably note that the pending rows from *first* to *last* (one batch of
        ``pending()``) are about to be sent: they are in doubt until their outcome is
        written. One range statement, not one per row."""
        with self._transaction():
            self._db.execute(
                "UPDATE rows SET in_doubt = 1 "
                "WHERE row BETWEEN ? AND ? AND status IS NULL AND valid = 1", (first, last))

    def clear_intent(self, rows: Sequence[int]) -> None:
        """These rows were never sent after all (the run stopped first)."""
        with self._transaction():
            self._db.executemany("UPDATE rows SET in_doubt = 0 WHERE row = ?", [(r,) for r in rows])

    def record(self, outcomes: Sequence[tuple[int, Outcome]], counters: dict[str, float]) -> None:
        """Write final outcomes and add to the run's counters, in one transaction."""
        with self._transaction():
            self._db.executemany(
                "UPDATE rows SET status = ?, is_active = ?, error_code = ?, error_source = ?, "
                "error_message = ?, http_status = ?, attempts = ?, request_id = ?, "
                "completed_at = ?, in_doubt = 0 WHERE row = ?",
                [(o.status.value, None if o.is_active is None else int(o.is_active), o.error_code,
                  None if o.error_source is None else o.error_source.value, o.error_message,
                  o.http_status, o.attempts, o.request_id, o.completed_at, row)
                 for row, o in outcomes])
            self._db.executemany(
                "INSERT INTO counters(name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                [(k, v) for k, v in counters.items() if v])

    # --- reconcile ------------------------------------------------------------------------
    def prepare_report(self, *, dry_run: bool, stop_note: str,
                       mask: Callable[[str, str], str] | None = None) -> None:
        """Define the ``report`` view this connection reads the report from."""
        pending = "would_revoke" if dry_run else "not_attempted"
        customer = "customer_id"
        if mask is not None:
            self._db.create_function("mask_pii", 2, mask, deterministic=True)
            customer = "mask_pii(identifier_type, customer_id)"
        self._db.execute("DROP VIEW IF EXISTS temp.report")
        self._db.execute(_REPORT_VIEW.format(
            customer=customer, pending_status=_sql_text(pending), dry_run=int(dry_run),
            doubt_message=_sql_text(
                f"{stop_note} after a request whose answer was lost; --resume will settle it"),
            unsent_message=_sql_text(f"{stop_note} before this row was sent")))

    def report_cursor(self) -> sqlite3.Cursor:
        """Report rows in input order, ready for a csv writer."""
        return self._db.execute("SELECT * FROM temp.report ORDER BY row")

    def report_retry_cursor(self, statuses: Sequence[str]) -> sqlite3.Cursor:
        """failed.csv's rows: the input's four columns of report rows with these statuses
        (read from the ``report`` view, so a dry run's pending rows are ``would_revoke``)."""
        marks = ",".join("?" * len(statuses))
        return self._db.execute(
            "SELECT r.badge_meta_id, r.customer_id, r.earned_badge_id, r.identifier_type "
            "FROM rows AS r JOIN temp.report AS report ON report.row = r.row "
            f"WHERE report.status IN ({marks}) ORDER BY r.row", tuple(statuses))

    def report_counts(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT status, COUNT(*) FROM temp.report GROUP BY status"))

    def report_error_codes(self) -> list[tuple[str, int, str | None]]:
        """(code, rows, the first row's message) for every error code in the report."""
        # SQLite takes a bare column's value from the row that MIN() picked: the first row.
        return [(code, count, message) for code, count, message, _ in self._db.execute(
            "SELECT error_code, COUNT(*), error_message, MIN(row) FROM temp.report "
            "WHERE error_code IS NOT NULL AND error_code != '' GROUP BY error_code")]

    def in_doubt_count(self) -> int:
        return int(self._db.execute(
            "SELECT COUNT(*) FROM rows WHERE in_doubt = 1 AND status IS NULL").fetchone()[0])

    def pending_count(self) -> int:
        return int(self._db.execute(
            "SELECT COUNT(*) FROM rows WHERE status IS NULL AND valid = 1").fetchone()[0])

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


def _sql_text(value: str) -> str:
    """A SQL string literal of one of our own constant messages."""
    return "'" + value.replace("'", "''") + "'"


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK if the block raised."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")
