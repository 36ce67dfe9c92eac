"""A spreadsheet or a page shows a hostile value; it never runs it.

One run over a list of values that attack the files people open (formula prefixes,
markup, ANSI escapes, a bidi override, NUL, a very long value), with a hostile input
file name, run directory name, ticket and operator; each test holds one output against
them: report.csv byte-exact, report.xlsx text cells equal to it (and, where LibreOffice
is installed, what a spreadsheet shows), summary.html with no markup from data (in
Chromium where installed), every log line one line.
"""

from __future__ import annotations

import csv
import html
import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import openpyxl
import pytest

from bulkrevoke.logs import printable
from bulkrevoke.report.workbook import CELL_MAX, ooxml_unescape
from bulkrevoke.sandbox import SandboxThread

from .browser import PAGE_ATTRIBUTES, PAGE_TAGS, DomShape, needs_chromium, render
from .conftest import CREDENTIALS, HEADER, Badge, run_cli, sandbox_settings

META = "698dae82d30c4f6b3da9dc06"
FORMULAS = [
    '=HYPERLINK("http://evil.example/x";"click")',
    "+918800000000",
    "-2+3",
    "@SUM(1+1)*cmd",
    "=cmd|' /C calc'!A0",
    "#N/A",
]
MARKUP = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '"><a href="http://evil.example/">x</a>',
    "&lt;b&gt;",
]
CONTROLS = [
    "\x1b[31mred\x1b[0m",
    "\x1b]0;owned\x07",
    "abc\u202egpj.exe",
    "a\x00b",
    "line\r\nX-Injected: 1",
    "_x0041_",
]
LONG = "L" * 40_000
VALUES = [*FORMULAS, *MARKUP, *CONTROLS, LONG]
FILE_NAME = "in\x1b[31m<img src=x onerror=alert(3)>\r\nFAKE LINE.csv"
RUN_NAME = "run\x1b[2J%s\nFAKE"
TICKET = "<script>alert(2)</script>"
OPERATOR = "<b>op</b>\x1b[31m"
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f\u202e]")  # what no text output may carry raw
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR) ")


def _input_rows() -> list[list[str]]:
    """A record per value as a customerId, as a badgeMetaId (its message quotes it; markup
    first, so it is the message the summary keeps) and an email that starts with =."""
    rows = [[value, "1", f"{i:024x}", ""] for i, value in enumerate([*MARKUP, *FORMULAS], 1)]
    rows += [[META, value, f"{0xA00 + i:024x}", "externalId"] for i, value in enumerate(VALUES)]
    rows.append([META, "=1+1@x.com", "f" * 24, "email"])
    return rows


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """The run, against the sandbox: (run directory, the CLI's result, the input rows)."""
    base = tmp_path_factory.mktemp("hostile")
    rows = _input_rows()
    source = base / FILE_NAME
    with source.open("w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows([HEADER, *rows])
    badges = [Badge(m, c, e, t or "id") for m, c, e, t in rows if m == META]
    with SandboxThread(sandbox_settings(badges)) as sandbox:
        result = run_cli(
            "run",
            str(source),
            "--host",
            sandbox.url,
            "--rate",
            "unlimited",
            "--out",
            str(base / RUN_NAME),
            "--ticket",
            TICKET,
            env={**CREDENTIALS, "LOGNAME": OPERATOR},
        )
    assert result.returncode == 1, result.stderr
    return base / RUN_NAME, result, rows


def _report(run_dir: Path) -> list[list[str]]:
    with (run_dir / "report.csv").open(newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_report_csv_holds_every_value_byte_for_byte(hostile):
    run_dir, _, rows = hostile
    report = _report(run_dir)[1:]
    assert [[r[1], r[2], r[4]] for r in report] == [[m, c, e] for m, c, e, _ in rows]
    data = (run_dir / "report.csv").read_bytes()
    for value in VALUES:
        assert ('"' + value.replace('"', '""') + '"').encode("utf-8") in data
    statuses = {r[2]: r[5] for r in report if r[1] == META}
    assert statuses["=1+1@x.com"] == "revoked" and statuses[MARKUP[0]] == "revoked"
    assert statuses["a\x00b"] == "invalid"


def test_the_workbook_shows_each_value_as_text_on_every_sheet(hostile):
    run_dir, _, _ = hostile
    expected = _report(run_dir)
    book = openpyxl.load_workbook(run_dir / "report.xlsx")
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type in ("s", "n"), (sheet.title, cell.coordinate, cell.value)
                if cell.data_type == "s" and cell.value.startswith(("=", "+", "-", "@")):
                    assert cell.quotePrefix, cell.value
    shown = [
        ["" if c.value is None else ooxml_unescape(str(c.value)) for c in row]
        for row in book["Report"].iter_rows()
    ]
    assert len(shown) == len(expected)
    for got, want in zip(shown, expected, strict=True):
        for cell, field in zip(got, want, strict=True):
            if len(field) > CELL_MAX:
                assert cell.startswith(field[:30_000]) and "report.csv holds the whole" in cell
            else:
                assert cell == field
    summary = {r[0].value: r[1].value for r in book["Summary"].iter_rows()}
    assert ooxml_unescape(summary["Ticket"]) == TICKET
    assert ooxml_unescape(summary["Operator"]) == OPERATOR
    with zipfile.ZipFile(run_dir / "report.xlsx") as parts:
        assert not any(b"<f>" in parts.read(n) for n in parts.namelist())  # no formula at all


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("soffice") is None, reason="no LibreOffice (soffice) on this machine to open report.xlsx"
)
def test_a_spreadsheet_shows_exactly_what_report_csv_holds(hostile, tmp_path):
    run_dir, _, _ = hostile
    converted = subprocess.run(
        [
            "soffice",
            "--headless",
            f"-env:UserInstallation={(tmp_path / 'profile').as_uri()}",
            "--convert-to",
            "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1",
            str(run_dir / "report.xlsx"),
            "--outdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert converted.returncode == 0, converted.stderr
    with (tmp_path / "report-Report.csv").open(newline="", encoding="utf-8") as f:
        shown = list(csv.reader(f))
    expected = _report(run_dir)
    assert len(shown) == len(expected)
    for got, want in zip(shown, expected, strict=True):
        if not any(len(field) > CELL_MAX for field in want):
            # LibreOffice keeps a line break inside a cell as LF: a CRLF comes back as LF
            # (a lone CR as CR).
            assert got == [field.replace("\r\n", "\n") for field in want]


def test_the_page_source_holds_data_only_escaped(hostile):
    run_dir, _, _ = hostile
    page = (run_dir / "summary.html").read_text(encoding="utf-8")
    for raw in ("<script>alert", "<img src=x", "<b>op</b>", "<a href", "\x1b", "\u202e", "\r"):
        assert raw not in page
    for value in (TICKET, OPERATOR, str(run_dir.parent / FILE_NAME)):
        assert html.escape(printable(value), quote=True) in page
    assert "badgeMetaId &#x27;&lt;script&gt;alert(1)&lt;/script&gt;&#x27;" in page


@pytest.mark.slow
@needs_chromium
def test_chromium_finds_no_element_attribute_or_link_from_data(hostile, tmp_path):
    run_dir, _, _ = hostile
    page = render(run_dir / "summary.html", tmp_path / "profile")
    assert page.console == [] and page.page_requests == []
    shape = DomShape(page.dom)
    assert shape.tags <= PAGE_TAGS and shape.attributes <= PAGE_ATTRIBUTES
    assert not any("alert" in value or "evil" in value for value in shape.attribute_values)
    text = "".join(shape.text)
    assert TICKET in text and "<b>op</b>\\x1b[31m" in text
    render(run_dir / "summary.html", tmp_path / "profile", screenshot=tmp_path / "page.png")
    assert (tmp_path / "page.png").stat().st_size > 10_000


def test_no_text_log_line_or_terminal_line_can_be_forged_or_recoloured(hostile):
    run_dir, result, _ = hostile
    log = (run_dir / "run.log").read_text(encoding="utf-8")
    assert not UNSAFE.search(log) and not UNSAFE.search(result.stderr)
    lines = log.split("\n")
    assert lines[-1] == "" and all(LOG_LINE.match(line) for line in lines[:-1])
    ingested = next(line for line in lines if " ingested " in line)
    assert "in\\x1b[31m<img src=x onerror=alert(3)>\\r\\nFAKE LINE.csv" in ingested
    assert " run\\x1b[2J%s\\nFAKE ingested" in ingested  # the run id, escaped, "%" intact
    assert "ticket <script>alert(2)</script>" in result.stderr
    assert "operator <b>op</b>\\x1b[31m" in result.stderr
    history = run_cli("history", str(run_dir.parent))
    assert history.returncode == 0 and not UNSAFE.search(history.stdout)
    assert "<script>alert(2)</script>" in history.stdout


def test_json_log_lines_each_parse_and_keep_the_value(hostile, tmp_path):
    _, _, rows = hostile
    source = tmp_path / FILE_NAME
    with source.open("w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows([HEADER, *rows])
    out_dir = tmp_path / RUN_NAME
    result = run_cli(
        "run",
        str(source),
        "--dry-run",
        "--out",
        str(out_dir),
        "--log-format",
        "json",
        "-v",
        env={"LOGNAME": OPERATOR},
    )
    assert result.returncode == 1, result.stderr
    log = (out_dir / "run.log").read_text(encoding="utf-8")
    assert not UNSAFE.search(log)
    events = [json.loads(line) for line in log.splitlines()]
    assert all(e["run_id"] == RUN_NAME for e in events)
    assert any(str(source) in e["event"] for e in events)  # escaped on the line, whole in JSON
    logged = [line for line in result.stderr.splitlines() if line.startswith("{")]
    assert logged and all(json.loads(line)["run_id"] == RUN_NAME for line in logged)
