"""The reconcile phase: one ordered pass over the ledger writes every report file.

Rows without a final outcome are rendered here, not stored: ``not_attempted`` (or
``would_revoke`` in a dry run), so a crashed run's report can be rebuilt at any time
and a resume simply finishes them. Each file is written to a temporary name and
renamed, so a crash mid-write leaves no half file behind; the same ledger always gives
byte-identical files.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._version import __version__
from .failpoints import failpoint
from .ledger import Ledger
from .outcome import CLEAN_STATUSES, RETRYABLE_STATUSES, Status

REPORT_COLUMNS = (
    "row", "badgeMetaId", "customerId", "identifierType", "earnedBadgeId", "status", "isActive",
    "errorCode", "errorSource", "errorMessage", "httpStatus", "attempts", "requestId",
    "duplicateOf", "completedAt",
)
FAILED_COLUMNS = ("badgeMetaId", "customerId", "earnedBadgeId", "identifierType")
MASKED_TYPES = frozenset({"email", "mobile", "cardNumber"})
REPORT_FILES = ("report.csv", "report.parquet", "failed.csv")


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
    """Write report.csv, report.parquet, failed.csv and summary.json; return the summary."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    meta = ledger.meta()
    dry_run = bool(meta.get("dry_run"))
    stop_reason = meta.get("stop_reason")
    schema = report_schema()
    failed_schema = pa.schema([(name, pa.string()) for name in FAILED_COLUMNS])
    statuses: Counter[str] = Counter()
    codes: Counter[str] = Counter()
    messages: dict[str, str] = {}
    mask = Masker(pii_key)
    paths = {name: run_dir / name for name in REPORT_FILES}
    temps = {name: path.with_name(path.name + ".tmp") for name, path in paths.items()}
    csv_options = pacsv.WriteOptions(quoting_style="needed")
    with _private(temps["report.csv"]) as csv_out, _private(temps["failed.csv"]) as failed_out, \
            _private(temps["report.parquet"]) as parquet_out:
        report_csv = pacsv.CSVWriter(csv_out, schema, write_options=csv_options)
        failed_csv = pacsv.CSVWriter(failed_out, failed_schema, write_options=csv_options)
        parquet = pq.ParquetWriter(parquet_out, schema, compression="zstd")
        for rows in _rendered(ledger, dry_run=dry_run, stop_reason=stop_reason):
            columns = list(zip(*rows, strict=True))
            for status, code, message in zip(columns[5], columns[7], columns[9], strict=True):
                statuses[status] += 1
                if code:
                    codes[code] += 1
                    if code not in messages and message:
                        messages[code] = message
            retry = [r for r in rows if r[5] in _RETRY_VALUES]
            if retry:
                failed_csv.write_batch(pa.record_batch(
                    [pa.array([r[i] for r in retry], pa.string()) for i in (1, 2, 4, 3)],
                    schema=failed_schema))
            columns[2] = tuple(mask(t, c) for t, c in zip(columns[3], columns[2], strict=True))
            batch = pa.record_batch(
                [pa.array(col, type=schema.field(i).type) for i, col in enumerate(columns)],
                schema=schema)
            report_csv.write_batch(batch)
            parquet.write_batch(batch)
        report_csv.close()
        failed_csv.close()
        parquet.close()
    failpoint("before-report-rename")
    for name in REPORT_FILES:
        os.replace(temps[name], paths[name])
    summary = build_summary(ledger, meta, statuses, codes, messages,
                            {name: _sha256(paths[name]) for name in REPORT_FILES})
    temp = run_dir / "summary.json.tmp"
    with _private(temp) as out:
        out.write((json.dumps(summary, indent=2) + "\n").encode("utf-8"))
    os.replace(temp, run_dir / "summary.json")
    return summary


_RETRY_VALUES = frozenset(s.value for s in RETRYABLE_STATUSES)


def _rendered(ledger: Ledger, *, dry_run: bool, stop_reason: str | None
              ) -> Iterator[list[tuple[Any, ...]]]:
    """Ledger rows as report rows: pending rows get their report-time status."""
    pending_status = Status.WOULD_REVOKE.value if dry_run else Status.NOT_ATTEMPTED.value
    why = {
        "auth": "run stopped: authentication failed",
        "tls": "run stopped: the host's TLS certificate was not trusted",
        "error_rate": "run stopped: too many rows failed",
        "signal": "run interrupted",
    }.get(stop_reason or "", "run ended")
    for rows in ledger.report_rows():
        out = []
        for r in rows:
            status, is_active, in_doubt = r[5], r[6], r[15]
            if status is None:
                if dry_run:
                    out.append((*r[:5], pending_status, None, None, None, None, None, 0,
                                None, None, None))
                    continue
                code, message = (
                    ("in_doubt", f"{why} after a request whose answer was lost; "
                                 "--resume will settle it") if in_doubt
                    else (None, f"{why} before this row was sent"))
                out.append((*r[:5], pending_status, None, code, "run", message, r[10], r[11],
                            r[12], None, None))
                continue
            out.append((*r[:6], None if is_active is None else bool(is_active), *r[7:15]))
        yield out


def build_summary(ledger: Ledger, meta: dict[str, Any], statuses: Counter[str],
                  codes: Counter[str], messages: dict[str, str],
                  files: dict[str, str]) -> dict[str, Any]:
    counters = ledger.counters()
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
        "errorCodes": dict(sorted(codes.items(), key=lambda kv: (-kv[1], kv[0]))),
        "errorMessages": {code: messages[code] for code in sorted(messages)},
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


def exit_code(statuses: Counter[str] | dict[str, int], *, dry_run: bool,
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
    """Open a new file for binary writing, readable by its owner only."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def __enter__(self) -> Any:
        self._path.unlink(missing_ok=True)
        fd = os.open(self._path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        self._file = os.fdopen(fd, "wb")
        return self._file

    def __exit__(self, *exc: object) -> None:
        self._file.close()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
