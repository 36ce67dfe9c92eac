"""report.xlsx: the report as a workbook finance can open, every value shown as written.

openpyxl's write-only (streaming) mode: rows are spooled to disk as they come (about
180 MB of temporary files per million rows, in the system's temp folder, until the
workbook is saved), so memory stays flat. A sheet holds at most 1,048,575 data rows
under its header (Excel's limit), so a longer report goes on over "Report 2",
"Report 3"… A last sheet, "Summary", holds the run's summary and control totals.

What a spreadsheet shows is exactly the text of report.csv:
- every string is a text cell (data_type "s"), never a formula or an error value, on
  every sheet: openpyxl would otherwise store "=…" as a formula and "#N/A" as an error;
  a string that a spreadsheet would read as a formula if it were typed in (it starts
  with = + - @, a tab or a CR) also gets the quote-prefix style, so editing the cell
  keeps it text;
- characters XML can't hold (NUL, other C0 controls, U+FFFE/U+FFFF), a CR (XML would
  read it back as LF) and a literal ``_xHHHH_`` are written as Office Open XML's
  ``_xHHHH_`` escapes, which spreadsheets show as the character itself;
- a value longer than a cell holds (32,767 characters) is cut, with a note saying so:
  report.csv holds it whole.

The same ledger gives the same bytes: the zip entries carry a fixed time and the document
properties the run's start.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zipfile import ZIP_DEFLATED, ZipFile, ZipInfo

SHEET_ROWS = 1_048_575
CELL_MAX = 32_767
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_ESCAPED = re.compile("[\x00-\x08\x0b\x0c\x0d\x0e-\x1f\ufffe\uffff]|_(?=x[0-9A-Fa-f]{4}_)")
_ERROR_VALUES = frozenset({"#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A"})
_WIDTHS = {"row": 8, "status": 20, "errorMessage": 60, "completedAt": 26}
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def ooxml_escape(text: str) -> str:
    """*text* with what an XML cell can't hold written as ``_xHHHH_``."""
    return _ESCAPED.sub(lambda m: f"_x{ord(m.group()):04X}_", text)


def ooxml_unescape(text: str) -> str:
    """The inverse of ``ooxml_escape``: what a spreadsheet shows for a stored string."""
    return re.sub("_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m.group(1), 16)), text)


def openpyxl_available() -> bool:
    try:
        import openpyxl  # noqa: F401
    except ImportError:
        return False
    return True


class ReportWorkbook:
    """Streams report batches into report.xlsx; ``close`` adds the summary and saves."""

    def __init__(self, path: Path, columns: Sequence[str], *, created: datetime) -> None:
        from openpyxl import Workbook

        self._path, self._columns = path, tuple(columns)
        self._book = Workbook(write_only=True)
        self._book.properties.created = self._book.properties.modified = created
        self._book.properties.creator = "bulkrevoke"
        self._sheet: Any = None
        self._sheets = 0
        self._rows = 0

    def add(self, batch: Any) -> None:
        """A pyarrow record batch whose columns are ``columns``, in order."""
        if self._sheet is None:
            self._next_sheet()
        columns = [self._column(array) for array in batch.columns]
        for values in zip(*columns, strict=True):
            if self._rows == SHEET_ROWS:
                self._next_sheet()
            self._sheet.append(values)
            self._rows += 1

    def close(self, summary_rows: Sequence[tuple[str, Any]]) -> None:
        """Add the Summary sheet of (label, value) rows and save the workbook."""
        from openpyxl.writer.excel import ExcelWriter

        if self._sheet is None:
            self._next_sheet()
        self._end_sheet()
        self._sheet = sheet = self._book.create_sheet("Summary")
        sheet.column_dimensions["A"].width = 34
        sheet.column_dimensions["B"].width = 80
        for label, value in summary_rows:
            sheet.append([self._text(label), self._value(value)])
        self._path.unlink(missing_ok=True)
        fd = os.open(self._path, os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w+b") as file, _FixedTimeZip(file, "w", ZIP_DEFLATED, allowZip64=True) as archive:
            # openpyxl's own writer, handed our archive (save_workbook() stamps the time).
            ExcelWriter(self._book, archive).save()

    def _next_sheet(self) -> None:
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.styles import Font
        from openpyxl.utils import get_column_letter

        if self._sheet is not None:
            self._end_sheet()
        self._sheets += 1
        sheet = self._book.create_sheet("Report" if self._sheets == 1 else f"Report {self._sheets}")
        for index, name in enumerate(self._columns, 1):
            sheet.column_dimensions[get_column_letter(index)].width = _WIDTHS.get(name, 26)
        sheet.freeze_panes = "A2"
        bold = Font(bold=True)
        header = []
        for name in self._columns:
            cell = WriteOnlyCell(sheet, value=name)
            cell.font = bold
            header.append(cell)
        sheet.append(header)
        self._sheet, self._rows = sheet, 0

    def _end_sheet(self) -> None:
        from openpyxl.utils import get_column_letter

        self._sheet.auto_filter.ref = f"A1:{get_column_letter(len(self._columns))}{self._rows + 1}"

    def _column(self, array: Any) -> list[Any]:
        import pyarrow as pa

        values: list[Any] = array.to_pylist()
        if pa.types.is_string(array.type):
            return [self._text(v) for v in values]
        if pa.types.is_boolean(array.type):  # as report.csv writes it
            return [None if v is None else ("true" if v else "false") for v in values]
        return values

    def _value(self, value: Any) -> Any:
        if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
            return value
        return self._text(str(value).lower() if isinstance(value, bool) else str(value))

    def _text(self, value: str | None) -> Any:
        """A string as a cell that shows it as text; most strings pass as they are."""
        if not value:
            return None
        risky = value[0] in "=+-@\t\r" or value in _ERROR_VALUES
        if not risky and len(value) <= CELL_MAX and not _ESCAPED.search(value):
            return value
        from openpyxl.cell import WriteOnlyCell

        cell = WriteOnlyCell(self._sheet, value=_fit(ooxml_escape(value), len(value)))
        cell.data_type = "s"
        if value.startswith(FORMULA_STARTS):
            cell.quotePrefix = True
        return cell


def _fit(text: str, original: int) -> str:
    if len(text) <= CELL_MAX:
        return text
    note = f" … [cut: {original:,} characters; report.csv holds the whole value]"
    return text[: CELL_MAX - len(note)] + note


class _FixedTimeZip(ZipFile):
    """A zip whose entries all carry one fixed time, so that equal content gives equal
    bytes. Files are copied in a stream (openpyxl spools each sheet to a file)."""

    def writestr(
        self, zinfo_or_arcname: Any, data: Any, compress_type: Any = None, compresslevel: Any = None
    ) -> None:
        if not isinstance(zinfo_or_arcname, ZipInfo):
            zinfo_or_arcname = _entry(zinfo_or_arcname)
        super().writestr(zinfo_or_arcname, data, compress_type, compresslevel)

    def write(
        self, filename: Any, arcname: Any = None, compress_type: Any = None, compresslevel: Any = None
    ) -> None:
        entry = _entry(arcname or os.path.basename(filename))
        entry.file_size = os.path.getsize(filename)  # decides whether ZIP64 is needed
        with open(filename, "rb") as source, self.open(entry, "w") as target:
            shutil.copyfileobj(source, target, 1 << 20)


def _entry(name: str) -> ZipInfo:
    entry = ZipInfo(name, date_time=_ZIP_TIME)
    entry.compress_type = ZIP_DEFLATED
    entry.external_attr = 0o600 << 16
    return entry


def summary_rows(summary: dict[str, Any]) -> list[tuple[str, Any]]:
    """The Summary sheet: who/what/why, counts, control totals, error codes, verification
    and the other files' SHA-256s, as (label, value) rows."""
    from bulkrevoke.report.summary import identity_rows

    rows: list[tuple[str, Any]] = [
        ("bulkrevoke run summary", None),
        *identity_rows(summary),
        ("", None),
        ("Rows", summary.get("rows")),
    ]
    rows += [(f"  {status}", count) for status, count in (summary.get("counts") or {}).items()]
    rows.append(("", None))
    for name, control in (summary.get("controls") or {}).items():
        figures = ", ".join(f"{k} {v:,}" for k, v in control["figures"].items())
        rows.append(
            (
                f"Control total: {name}",
                f"{'holds' if control['holds'] else 'DOES NOT HOLD'}: {control['rule']} ({figures})",
            )
        )
    messages = summary.get("errorMessages") or {}
    for code, count in (summary.get("errorCodes") or {}).items():
        rows.append((f"Error code {code}", f"{count:,} rows: {messages.get(code) or ''}"))
    verification = summary.get("verification")
    rows.append(
        (
            "Verification",
            "not verified" if not verification else ", ".join(f"{k} {v}" for k, v in verification.items()),
        )
    )
    rows.append(("", None))
    rows += [(f"SHA-256 {name}", entry.get("sha256")) for name, entry in (summary.get("files") or {}).items()]
    return rows
