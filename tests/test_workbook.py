"""report.xlsx: the report as a workbook, every id and code exactly as report.csv has it."""

from __future__ import annotations

import csv
import hashlib
import logging
import sys

import openpyxl
import pytest

from bulkrevoke.ledger import Ledger, row_batch
from bulkrevoke.report import workbook as report_xlsx
from bulkrevoke.report.reconcile import write_reports
from bulkrevoke.report.render import REPORT_COLUMNS
from bulkrevoke.report.workbook import CELL_MAX, ReportWorkbook, ooxml_unescape

from .conftest import CREDENTIALS, Badge, make_badges, read_summary, run_cli, write_input

META = "698dae82d30c4f6b3da9dc06"
TEXT_COLUMNS = [
    i for i, name in enumerate(REPORT_COLUMNS) if name not in ("row", "httpStatus", "attempts", "duplicateOf")
]


def _csv_rows(path):
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def _sheet_rows(sheet):
    return [list(row) for row in sheet.iter_rows()]


def _shown(cell) -> str:
    """What a spreadsheet shows for a cell, as report.csv writes it."""
    if cell.value is None:
        return ""
    return ooxml_unescape(cell.value) if cell.data_type == "s" else str(cell.value)


def test_the_workbook_gives_back_every_id_exactly_and_as_text(tmp_path, sandbox_for):
    badges = [
        *make_badges(40, seed=9),
        Badge(META, "919876543210", "a" * 24, "mobile"),  # Excel's 9.19877E+11
        Badge(META, "00012345", "b" * 24, "cardNumber"),  # leading zeros
        Badge(META, "566135941", "c" * 24),  # a numeric id
        Badge(META, "1e5", "d" * 24, "externalId"),
    ]  # a number to a spreadsheet
    sandbox = sandbox_for(badges)
    source = write_input(tmp_path / "in.csv", badges, extra_rows=[[META, "5.66135941E+8", "e" * 24, ""]])
    out = tmp_path / "run"
    result = run_cli(
        "run", str(source), "--host", sandbox.url, "--rate", "unlimited", "--out", str(out), env=CREDENTIALS
    )
    assert result.returncode == 1, result.stderr
    assert "open report.xlsx in a spreadsheet (never report.csv)" in result.stderr
    summary = read_summary(out)
    assert (
        summary["files"]["report.xlsx"]["sha256"]
        == hashlib.sha256((out / "report.xlsx").read_bytes()).hexdigest()
    )
    book = openpyxl.load_workbook(out / "report.xlsx")
    assert book.sheetnames == ["Report", "Summary"]
    sheet = book["Report"]
    last = openpyxl.utils.get_column_letter(len(REPORT_COLUMNS))  # Q: 17 columns
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == f"A1:{last}{len(badges) + 2}"
    expected = _csv_rows(out / "report.csv")
    cells = _sheet_rows(sheet)
    assert [[_shown(c) for c in row] for row in cells] == expected
    for row in cells[1:]:
        assert all(row[i].data_type == "s" for i in TEXT_COLUMNS if row[i].value is not None)
        assert isinstance(row[0].value, int)
    ids = {row[2].value for row in cells[1:]}
    assert {"919876543210", "00012345", "566135941", "1e5", "5.66135941E+8"} <= ids
    labels = {row[0]: row[1] for row in _sheet_rows_values(book["Summary"])}
    assert labels["Control total: rows"].startswith("holds: rows = invalid + duplicate")
    assert labels["SHA-256 report.csv"] == summary["files"]["report.csv"]["sha256"]
    assert labels["Rows"] == len(badges) + 1 and labels["Verification"] == "not verified"


def _sheet_rows_values(sheet):
    return [[c.value for c in row] for row in sheet.iter_rows()]


def test_a_report_longer_than_a_sheet_goes_on_over_further_sheets(tmp_path, monkeypatch):
    monkeypatch.setattr(report_xlsx, "SHEET_ROWS", 4)
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        ledger.ingest([row_batch([(i, META, str(i), "id", f"{i:024x}", None, None) for i in range(1, 11)])])
        ledger.set_meta(dry_run=True, started="2026-11-28T10:15:00Z")
        write_reports(ledger, tmp_path)
    book = openpyxl.load_workbook(tmp_path / "report.xlsx")
    assert book.sheetnames == ["Report", "Report 2", "Report 3", "Summary"]
    rows = []
    for name, count in (("Report", 4), ("Report 2", 4), ("Report 3", 2)):
        sheet = book[name]
        values = _sheet_rows_values(sheet)
        assert values[0] == list(REPORT_COLUMNS) and len(values) == count + 1
        last = openpyxl.utils.get_column_letter(len(REPORT_COLUMNS))
        assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == f"A1:{last}{count + 1}"
        rows += values[1:]
    assert [r[0] for r in rows] == list(range(1, 11))
    assert [r[2] for r in rows] == [str(i) for i in range(1, 11)]


def test_the_same_ledger_gives_the_same_workbook_bytes(tmp_path):
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        ledger.ingest([row_batch([(1, META, "7", "id", "f" * 24, None, None)])])
        ledger.set_meta(dry_run=True, started="2026-11-28T10:15:00Z")
        write_reports(ledger, tmp_path)
        first = (tmp_path / "report.xlsx").read_bytes()
        write_reports(ledger, tmp_path)
    assert (tmp_path / "report.xlsx").read_bytes() == first
    assert openpyxl.load_workbook(tmp_path / "report.xlsx").properties.created.year == 2026


def test_without_openpyxl_the_workbook_is_left_out_with_a_note(tmp_path, monkeypatch, caplog):
    (tmp_path / "report.xlsx").write_bytes(b"stale")
    monkeypatch.setitem(sys.modules, "openpyxl", None)  # import openpyxl now fails
    with Ledger(tmp_path / "ledger.sqlite") as ledger, caplog.at_level(logging.WARNING):
        ledger.ingest([row_batch([(1, META, "7", "id", "f" * 24, None, None)])])
        ledger.set_meta(dry_run=True)
        summary = write_reports(ledger, tmp_path)
    assert not (tmp_path / "report.xlsx").exists()
    assert "report.xlsx" not in summary["files"] and "summary.html" in summary["files"]
    assert "report.xlsx not written: openpyxl is missing" in caplog.text


@pytest.mark.parametrize(
    "value",
    [
        "=1+1",
        '=HYPERLINK("http://evil.example";"x")',
        "+1",
        "-1",
        "@SUM(A1)",
        "\t=1",
        "\r=1",
        "#N/A",
        "#DIV/0!",
        "a\x00b",
        "\x1b[31m",
        "x\ry",
        "_x0041_",
        "\ufffe",
        "=",
        "-",
    ],
)
def test_a_cell_shows_exactly_the_value_never_a_formula_or_an_error(tmp_path, value):
    path = tmp_path / "x.xlsx"
    book = ReportWorkbook(path, ["v"], created=_created())
    book.add(_batch([value]))
    book.close([("label", value)])
    loaded = openpyxl.load_workbook(path)
    for cell in (loaded["Report"]["A2"], loaded["Summary"]["B1"]):
        assert cell.data_type == "s"
        assert ooxml_unescape(cell.value) == value
        assert cell.quotePrefix == value.startswith(("=", "+", "-", "@", "\t", "\r"))


def test_a_value_longer_than_a_cell_is_cut_with_a_note(tmp_path):
    path = tmp_path / "x.xlsx"
    book = ReportWorkbook(path, ["v"], created=_created())
    value = "x" * 40_000
    book.add(_batch([value]))
    book.close([])
    shown = openpyxl.load_workbook(path)["Report"]["A2"].value
    assert len(shown) <= CELL_MAX and shown.startswith("x" * 30_000)
    assert shown.endswith("[cut: 40,000 characters; report.csv holds the whole value]")


def _batch(values):
    import pyarrow as pa

    return pa.record_batch([pa.array(values, pa.string())], names=["v"])


def _created():
    from datetime import datetime

    return datetime(2026, 11, 28, 10, 15)
