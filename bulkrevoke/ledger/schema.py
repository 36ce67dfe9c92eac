"""The ledger's file format: its tables, and the Arrow batches its rows are kept in."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 2
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS row_batches (
    first_row INTEGER PRIMARY KEY, last_row INTEGER NOT NULL, valid_rows INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS duplicates (row INTEGER PRIMARY KEY, first INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outcomes (
    row INTEGER PRIMARY KEY,
    status TEXT,
    in_doubt INTEGER NOT NULL DEFAULT 0,
    is_active INTEGER, error_code TEXT, error_source TEXT, error_message TEXT,
    http_status INTEGER, attempts INTEGER NOT NULL DEFAULT 0, request_id TEXT,
    completed_at TEXT
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value REAL NOT NULL);
CREATE TABLE IF NOT EXISTS verifications (row INTEGER PRIMARY KEY, verified TEXT NOT NULL,
                                          verified_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS resumes (at TEXT NOT NULL, rows_in_doubt INTEGER NOT NULL,
                                    rows_pending INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS timeline (
    at INTEGER PRIMARY KEY, finished INTEGER NOT NULL, failed INTEGER NOT NULL,
    requests INTEGER NOT NULL, throttled INTEGER NOT NULL
);
"""
TIMELINE_SECONDS = 10  #: the timeline's bucket (summary.html's charts)
#: A stored batch of input rows: the validated (trimmed) fields, and for an invalid row
#: its error code and message (both null on a valid row).
ROW_COLUMNS = (
    "row",
    "badge_meta_id",
    "customer_id",
    "identifier_type",
    "earned_badge_id",
    "error_code",
    "error_message",
)
#: The columns of ``outcomes`` a report row takes, in this order.
OUTCOME_COLUMNS = (
    "status",
    "in_doubt",
    "is_active",
    "error_code",
    "error_source",
    "error_message",
    "http_status",
    "attempts",
    "request_id",
    "completed_at",
)


def row_schema() -> Any:
    import pyarrow as pa

    return pa.schema([(name, pa.int64() if name == "row" else pa.string()) for name in ROW_COLUMNS])


def row_batch(records: Iterable[Sequence[Any]]) -> Any:
    """A row batch from tuples in ``ROW_COLUMNS`` order (for callers that have rows)."""
    import pyarrow as pa

    from bulkrevoke._arrays import int64s, strings

    columns = list(zip(*records, strict=True)) or [()] * len(ROW_COLUMNS)
    return pa.record_batch([int64s(columns[0]), *(strings(c) for c in columns[1:])], schema=row_schema())


def read_meta(path: Path) -> dict[str, Any]:
    """A ledger's meta, read without writing to it (a run may be holding it); raises
    sqlite3.Error or ValueError when *path* is not a readable ledger."""
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return {k: json.loads(v) for k, v in db.execute("SELECT key, value FROM meta")}
    finally:
        db.close()


def ipc_options() -> Any:
    import pyarrow as pa

    # LZ4: a third of the size for about a fifth of a microsecond a row.
    return pa.ipc.IpcWriteOptions(compression="lz4")
