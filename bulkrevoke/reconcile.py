"""The reconcile phase: one ordered pass over the ledger writes every report file.

Rows without a final outcome are rendered here, not stored: ``not_attempted`` (or
``would_revoke`` in a dry run), so a crashed run's report can be rebuilt at any time
and a resume simply finishes them. Each file is written to a temporary name and
renamed, so a crash mid-write leaves no half file behind; the same ledger always gives
byte-identical files.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._version import __version__
from .failpoints import failpoint
from .ledger import Ledger
from .outcome import CLEAN_STATUSES, RETRYABLE_STATUSES, Status
from .source import file_sha256

REPORT_COLUMNS = (
    "row", "badgeMetaId", "customerId", "identifierType", "earnedBadgeId", "status", "isActive",
    "errorCode", "errorSource", "errorMessage", "httpStatus", "attempts", "requestId",
    "duplicateOf", "completedAt",
)
FAILED_COLUMNS = ("badgeMetaId", "customerId", "earnedBadgeId", "identifierType")
MASKED_TYPES = frozenset({"email", "mobile", "cardNumber"})
REPORT_FILES = ("report.csv", "report.parquet", "failed.csv")
PARQUET_GROUP_ROWS = 32_768
_UNIQUE_COLUMNS = frozenset({"row", "customerId", "earnedBadgeId", "requestId", "completedAt"})


def report_schema() -> Any:
    import pyarrow as pa

    types = {"row": pa.int64(), "isActive": pa.bool_(), "httpStatus": pa.int64(),
             "attempts": pa.int64(), "duplicateOf": pa.int64()}
    return pa.schema([(name, types.get(name, pa.string())) for name in REPORT_COLUMNS])


class Masker:
    """Replaces email/mobile/cardNumber identifiers with a keyed hash (HMAC-SHA256)."""

    def __init__(self, key: bytes | None) -> None:
        self._key = key

    def __call__(self, identifier_type: str, customer_id: str) -> str:
        if self._key is None or identifier_type not in MASKED_TYPES or not customer_id:
            return customer_id
        digest = hmac.new(self._key, customer_id.encode("utf-8"), hashlib.sha256).hexdigest()
        return "hmac:" + digest[:24]


def write_reports(ledger: Ledger, run_dir: Path, *, pii_key: bytes | None = None) -> dict[str, Any]:
    """Write report.csv, report.parquet, failed.csv and summary.json; return the summary.

    SQLite renders the report rows and the csv module writes them, with no Python work
    per row; the Parquet file is then converted from report.csv by pyarrow's CSV reader
    with the report's schema, so the two files can't disagree."""
    meta = ledger.meta()
    ledger.prepare_report(dry_run=bool(meta.get("dry_run")),
                          stop_note=_STOP_NOTES.get(meta.get("stop_reason") or "", "run ended"),
                          mask=Masker(pii_key) if pii_key is not None else None)
    paths = {name: run_dir / name for name in REPORT_FILES}
    temps = {name: path.with_name(path.name + ".tmp") for name, path in paths.items()}
    # The csv module's default dialect is RFC 4180's: CRLF line breaks. It quotes a field
    # holding any line-break character; with "\n" alone it would leave a lone CR in a
    # field unquoted, and every CSV reader would split the record there.
    with _private(temps["report.csv"]) as out:
        writer = csv.writer(out)
        writer.writerow(REPORT_COLUMNS)
        writer.writerows(ledger.report_cursor())
    with _private(temps["failed.csv"]) as out:
        writer = csv.writer(out)
        writer.writerow(FAILED_COLUMNS)
        writer.writerows(ledger.report_retry_cursor(sorted(_RETRY_VALUES)))
    _csv_to_parquet(temps["report.csv"], temps["report.parquet"])
    failpoint("before-report-rename")
    for name in REPORT_FILES:
        os.replace(temps[name], paths[name])
    summary = build_summary(ledger, meta, {name: file_sha256(paths[name]) for name in REPORT_FILES})
    temp = run_dir / "summary.json.tmp"
    with _private(temp) as out:
        out.write(json.dumps(summary, indent=2) + "\n")
    os.replace(temp, run_dir / "summary.json")
    return summary


def _csv_to_parquet(source: Path, target: Path) -> None:
    """Stream report.csv into report.parquet with the report's column types."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    schema = report_schema()
    reader = pacsv.open_csv(
        source,
        # Small blocks: the reader's memory grows with them, its speed does not.
        read_options=pacsv.ReadOptions(block_size=256 << 10),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types=schema, strings_can_be_null=True, quoted_strings_can_be_null=True,
            true_values=["true"], false_values=["false"]),
    )
    with _private(target):
        pass  # created private first: Arrow truncates it and keeps the mode
    # Dictionary encoding only where values repeat: for a column of ids it costs a hash
    # table of every value in the row group, and saves nothing.
    repeating = [name for name in REPORT_COLUMNS if name not in _UNIQUE_COLUMNS]
    with pq.ParquetWriter(str(target), schema, compression="zstd",
                          use_dictionary=repeating) as writer:
        # Batches are gathered into row groups of at least PARQUET_GROUP_ROWS rows: the writer
        # keeps every row group's metadata until it closes (kilobytes each), so one row
        # group per small batch would make its memory grow with the report's length.
        group: list[Any] = []
        rows = 0
        for batch in reader:
            group.append(batch)
            rows += batch.num_rows
            if rows >= PARQUET_GROUP_ROWS:
                writer.write_table(pa.Table.from_batches(group, schema), row_group_size=rows)
                group, rows = [], 0
        if group:
            writer.write_table(pa.Table.from_batches(group, schema), row_group_size=rows)


_RETRY_VALUES = frozenset(s.value for s in RETRYABLE_STATUSES)
_STOP_NOTES = {
    "auth": "run stopped: authentication failed",
    "tls": "run stopped: the host's TLS certificate was not trusted",
    "error_rate": "run stopped: too many rows failed",
    "signal": "run interrupted",
}


def build_summary(ledger: Ledger, meta: dict[str, Any], files: dict[str, str]) -> dict[str, Any]:
    counters = ledger.counters()
    statuses = ledger.report_counts()
    error_codes = sorted(ledger.report_error_codes(), key=lambda c: (-c[1], c[0]))
    rows = sum(statuses.values())
    send_seconds = counters.get("send_seconds", 0.0)
    requests = int(counters.get("requests", 0))
    return {
        "runId": meta.get("run_id"),
        "version": __version__,
        "input": meta.get("input"),
        "inputSha256": meta.get("input_sha256"),
        "dryRun": bool(meta.get("dry_run")),
        "host": meta.get("host"),
        "rows": rows,
        "counts": {s.value: statuses.get(s.value, 0) for s in Status},
        "errorCodes": {code: count for code, count, _ in error_codes},
        "errorMessages": {code: message for code, _, message in sorted(error_codes) if message},
        "started": meta.get("started"),
        "finished": meta.get("finished"),
        "durationSeconds": round(float(meta.get("duration_seconds") or 0.0), 3),
        "sendSeconds": round(send_seconds, 3),
        "requestsSent": requests,
        "retries": int(counters.get("retries", 0)),
        "throttled": int(counters.get("throttled", 0)),
        "achievedRequestsPerSecond": round(requests / send_seconds, 2) if send_seconds else 0.0,
        "rate": meta.get("rate"),
        "stopReason": meta.get("stop_reason"),
        "resumes": ledger.resumes(),
        "exitCode": exit_code(statuses, dry_run=bool(meta.get("dry_run")),
                              stop_reason=meta.get("stop_reason")),
        "files": {name: {"sha256": digest} for name, digest in files.items()},
    }


def exit_code(statuses: Mapping[str, int], *, dry_run: bool,
              stop_reason: str | None) -> int:
    """Contract §5, from the report's counts and why the run stopped."""
    unfinished = statuses.get(Status.NOT_ATTEMPTED.value, 0)
    if unfinished and stop_reason == "signal":
        return 130
    if unfinished and stop_reason in ("auth", "tls", "error_rate"):
        return 3
    clean = {s.value for s in CLEAN_STATUSES}
    if dry_run:
        clean |= {Status.WOULD_REVOKE.value}
    return 0 if all(s in clean for s, n in statuses.items() if n) else 1


class _private:
    """Open a new text file (UTF-8, no newline translation) readable by its owner only."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def __enter__(self) -> Any:
        self._path.unlink(missing_ok=True)
        fd = os.open(self._path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        self._file = os.fdopen(fd, "w", encoding="utf-8", newline="")
        return self._file

    def __exit__(self, *exc: object) -> None:
        self._file.close()
