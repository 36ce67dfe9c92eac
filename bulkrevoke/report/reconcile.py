"""The reconcile phase: one ordered pass over the ledger writes every report file.

Rows without a final outcome are rendered here, not stored: ``not_attempted`` (or
``would_revoke`` in a dry run), so a crashed run's report can be rebuilt at any time
and a resume simply finishes them. Each stored batch of rows becomes a batch of report
rows in pyarrow (its outcomes and duplicates merged in by row number), written to
report.csv, report.parquet and report.xlsx from the same columns, so they can't
disagree; summary.html and summary.json come last: they hold the other files' SHA-256s.
Every file is written to a temporary name and renamed once all are whole, so a crash or a
full disk mid-write leaves no half file behind and no mix of old and new; the same ledger
always gives byte-identical files.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from bulkrevoke.failpoints import failpoint
from bulkrevoke.ledger import Ledger
from bulkrevoke.model import RETRYABLE_STATUSES
from bulkrevoke.report.render import REPORT_COLUMNS, Masker, Renderer, report_schema, stop_note
from bulkrevoke.report.summary import build_summary
from bulkrevoke.storage import PrivateFile, temp_name, writing

log = logging.getLogger("bulkrevoke")

FAILED_COLUMNS = ("badgeMetaId", "customerId", "earnedBadgeId", "identifierType")
REPORT_FILES = ("report.csv", "report.parquet", "failed.csv")
WORKBOOK = "report.xlsx"
PAGE = "summary.html"
SUMMARY_FILE = "summary.json"
PARQUET_GROUP_ROWS = 32_768
_UNIQUE_COLUMNS = frozenset({"row", "customerId", "earnedBadgeId", "requestId", "completedAt", "verifiedAt"})


def write_reports(ledger: Ledger, run_dir: Path, *, pii_key: bytes | None = None) -> dict[str, Any]:
    """Write report.csv, report.parquet, failed.csv, report.xlsx, summary.html and
    summary.json; return the summary.

    All are written under temporary names and renamed once every one is whole: a write
    that fails (a full disk: ``StorageError``) leaves the previous set as it was and gives
    the temporary files' space back."""
    meta = ledger.meta()
    names = (*REPORT_FILES, WORKBOOK, PAGE, SUMMARY_FILE)
    temps = {name: temp_name(run_dir / name) for name in names}
    try:
        with writing("the report", run_dir):
            files, tally, workbook = _write_report_files(ledger, meta, run_dir, temps, pii_key)
            summary = build_summary(ledger, meta, tally.statuses, tally.error_codes(), files)
            if workbook is not None:
                files[WORKBOOK] = _save_workbook(workbook, temps[WORKBOOK], summary)
            summary["files"] = {name: {"sha256": digest} for name, digest in files.items()}
            from bulkrevoke.report.page import render_page

            page = render_page(summary, ledger.timeline())
            summary["files"][PAGE] = {"sha256": _write_new(temps[PAGE], page.encode("utf-8"))}
            _write_new(temps[SUMMARY_FILE], (json.dumps(summary, indent=2) + "\n").encode("utf-8"))
    except BaseException:
        for temp in temps.values():
            temp.unlink(missing_ok=True)
        raise
    failpoint("before-report-rename")
    with writing("the report", run_dir):
        for name in names:
            if name != WORKBOOK or workbook is not None:
                os.replace(temps[name], run_dir / name)
    return summary


def _write_new(path: Path, data: bytes) -> str:
    """Write *data* to a new private file; return its SHA-256."""
    with PrivateFile(path) as out:
        out.write(data)
        return out.digest.hexdigest()


def _write_report_files(
    ledger: Ledger, meta: dict[str, Any], run_dir: Path, temps: dict[str, Path], pii_key: bytes | None
) -> tuple[dict[str, str], _Tally, Any]:
    """The report files under their temporary names (the workbook still open); their
    SHA-256s, the tally and the workbook."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from bulkrevoke._arrays import strings

    render = Renderer(
        dry_run=bool(meta.get("dry_run")),
        stop_note=stop_note(meta.get("stop_reason")),
        mask=Masker(pii_key) if pii_key is not None else None,
    )
    workbook = _open_workbook(run_dir, temps[WORKBOOK], meta)
    retry = strings(sorted(_RETRY_VALUES))
    tally = _Tally()
    # Every text value is quoted (pyarrow's "needed" style), so a line break inside a
    # value is never mistaken for the end of a record; numbers, booleans and empty cells
    # are bare. Lines end in LF. The header is written plain.
    options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
    repeating = [name for name in REPORT_COLUMNS if name not in _UNIQUE_COLUMNS]
    with (
        PrivateFile(temps["report.csv"]) as report_out,
        PrivateFile(temps["failed.csv"]) as failed_out,
        PrivateFile(temps["report.parquet"]) as parquet_out,
    ):
        written = {"report.csv": report_out, "failed.csv": failed_out, "report.parquet": parquet_out}
        report_out.write(_header(REPORT_COLUMNS))
        failed_out.write(_header(FAILED_COLUMNS))
        schema = report_schema()
        report_csv = pacsv.CSVWriter(report_out, schema, write_options=options)
        failed_schema = _failed_schema()
        failed_csv = pacsv.CSVWriter(failed_out, failed_schema, write_options=options)
        # Dictionary encoding only where values repeat: for a column of ids it costs a
        # hash table of every value in the row group, and saves nothing.
        parquet = pq.ParquetWriter(parquet_out, schema, compression="zstd", use_dictionary=repeating)
        try:
            groups = _RowGroups(parquet, schema)
            for stored in ledger.row_batches():
                rows = stored.column(0)
                first, last = rows[0].as_py(), rows[-1].as_py()
                report = render(
                    stored,
                    ledger.outcomes_between(first, last),
                    ledger.duplicates_between(first, last),
                    ledger.verifications_between(first, last),
                )
                report_csv.write_batch(report)
                groups.add(report)
                tally.add(report)
                if workbook is not None:
                    workbook.add(report)
                failed = stored.filter(pc.is_in(report.column("status"), value_set=retry))
                if failed.num_rows:
                    failed_csv.write_batch(
                        pa.record_batch(
                            [
                                failed.column(name)
                                for name in (
                                    "badge_meta_id",
                                    "customer_id",
                                    "earned_badge_id",
                                    "identifier_type",
                                )
                            ],
                            schema=failed_schema,
                        )
                    )
            groups.close()
            parquet.close()
        except BaseException:
            with contextlib.suppress(Exception):
                parquet.close()
            parquet.is_open = False  # else its finalizer tries once more, and says so on stderr
            raise
        report_csv.close()
        failed_csv.close()
    return {name: written[name].digest.hexdigest() for name in REPORT_FILES}, tally, workbook


def _open_workbook(run_dir: Path, temp: Path, meta: dict[str, Any]) -> Any:
    """report.xlsx's writer, or None (and no stale workbook left) without openpyxl."""
    from bulkrevoke.report.workbook import ReportWorkbook, openpyxl_available

    if not openpyxl_available():
        (run_dir / WORKBOOK).unlink(missing_ok=True)
        log.warning(
            "report.xlsx not written: openpyxl is missing "
            "(pip install 'bulkrevoke[excel]', then: bulkrevoke report %s)",
            run_dir,
        )
        return None
    started = meta.get("started")
    created = datetime.strptime(started, "%Y-%m-%dT%H:%M:%SZ") if started else datetime(2000, 1, 1)
    return ReportWorkbook(temp, REPORT_COLUMNS, created=created)


def _save_workbook(workbook: Any, temp: Path, summary: dict[str, Any]) -> str:
    from bulkrevoke.report.workbook import summary_rows
    from bulkrevoke.storage import file_sha256

    workbook.close(summary_rows(summary))
    return file_sha256(temp)


def _header(columns: Sequence[str]) -> bytes:
    return (",".join(columns) + "\n").encode("ascii")


def _failed_schema() -> Any:
    import pyarrow as pa

    return pa.schema([(name, pa.string()) for name in FAILED_COLUMNS])


class _RowGroups:
    """Report batches gathered into Parquet row groups of at least PARQUET_GROUP_ROWS rows:
    the writer keeps every row group's metadata until it closes (kilobytes each), so one
    row group per small batch would make its memory grow with the report's length."""

    def __init__(self, writer: Any, schema: Any) -> None:
        self._writer, self._schema = writer, schema
        self._held: list[Any] = []
        self._rows = 0

    def add(self, batch: Any) -> None:
        self._held.append(batch)
        self._rows += batch.num_rows
        if self._rows >= PARQUET_GROUP_ROWS:
            self.close()

    def close(self) -> None:
        import pyarrow as pa

        if self._held:
            self._writer.write_table(
                pa.Table.from_batches(self._held, self._schema), row_group_size=self._rows
            )
        self._held, self._rows = [], 0


class _Tally:
    """The report's counts by status and by error code, and each code's first message."""

    def __init__(self) -> None:
        self.statuses: Counter[str] = Counter()
        self.codes: Counter[str] = Counter()
        self.messages: dict[str, str | None] = {}

    def add(self, report: Any) -> None:
        import pyarrow.compute as pc

        from bulkrevoke._arrays import scalar

        for name, counter in (("status", self.statuses), ("errorCode", self.codes)):
            counts = pc.value_counts(report.column(name))
            for value, count in zip(counts.field(0).to_pylist(), counts.field(1).to_pylist(), strict=True):
                if value:
                    counter[value] += count
        codes = report.column("errorCode")
        for code in self.codes.keys() - self.messages.keys():
            at = pc.index(codes, scalar(code)).as_py()
            self.messages[code] = report.column("errorMessage")[at].as_py()

    def error_codes(self) -> list[tuple[str, int, str | None]]:
        return [(code, count, self.messages.get(code)) for code, count in self.codes.items()]


_RETRY_VALUES = frozenset(s.value for s in RETRYABLE_STATUSES)
