"""The input corpus: bad and awkward files that operators really hand in.

Each ``Case`` is one input, written by ``write(case, directory)``, with what
``bulkrevoke run INPUT --dry-run`` must make of it:

- a file-level problem: exit 2 and one stderr line holding ``error`` (and never ``secret``,
  a customer identifier that must not leak into a message);
- otherwise: exit 0 or 1 and, in ``report.csv``, one ``(status, errorCode)`` per record, in
  input order (``would_revoke`` for valid rows: it is a dry run).

Nothing is committed as a binary: the files are generated at test time. To look at them:

    python tests/corpus/make_corpus.py DIR    # writes the corpus into DIR and lists it
"""

from __future__ import annotations

import codecs
import gzip
import io
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

META = "698dae82d30c4f6b3da9dc06"
OK = ("would_revoke", "")
DUPLICATE = ("duplicate", "")


def earned(n: int) -> str:
    """A distinct, well-formed earnedBadgeId."""
    return f"698daf848644c157e72d{n:04x}"


@dataclass(frozen=True)
class Case:
    name: str  # file name, and the test id
    data: bytes | Callable[[], bytes] | None  # a callable for big files; None: no file
    exit_code: int
    error: str = ""  # exit 2: a fragment of the stderr line
    rows: tuple[tuple[str, str], ...] = ()  # exit 0/1: (status, errorCode) per row
    args: tuple[str, ...] = ()  # extra flags for `bulkrevoke run`
    stdin: bool = False  # fed on standard input, INPUT is "-"
    secret: str = ""  # must not appear on stderr (PII)
    timeout: float = 60.0  # a hang is a failure too


def _csv(lines: list[str], *, newline: str = "\n") -> bytes:
    return (newline.join(lines) + newline).encode("utf-8")


# --- row-level: the report tells each record's fate ------------------------------------------


def _awkward() -> Case:
    """Semicolons, BOM, CRLF, padded headers and values, blank and delimiter-only lines,
    quoted delimiters and line breaks, and every row-level code the README lists."""
    e = earned
    lines = [
        "\ufeff Badge Meta ID ; customer_id ;EARNED-BADGE-ID; identifier type ;note",
        "",
        f" {META} ; 566135941 ; {e(1)} ;;",  # 1 padded, default id
        f";566135941;{e(2)};;",  # 2 715
        f"{META};566135941;;;",  # 3 813
        ";;;;",  #   blank (delimiters)
        f"{META};;{e(3)};;",  # 4 missing customerId
        f"{META}g;566135941;{e(4)};;",  # 5 malformed_id
        f"{META};5.66135941E+8;{e(5)};;",  # 6 spreadsheet_number
        f"{META};566135941.0;{e(6)};id;",  # 7 spreadsheet_number
        "   ",  #   blank (spaces)
        f"{META};566135941;{e(7)};phone;",  # 8 bad_identifier_type
        f"{META};jane.example.com;{e(8)};Email;",  # 9 email without @
        f"{META};98765-43210;{e(9)};MOBILE;",  # 10 mobile non-digit
        f'{META};"5661\r\n35941";{e(10)};;',  # 11 CR LF inside
        f'{META};"jane@example.com\u200b";{e(11)};email;',  # 12 zero-width space
        f'{META};"ext;42";{e(12)};external_id;"a note; with\nbreaks"',  # 13 quoted ; and \n
        f"{META};+919876543210;{e(13)};mobile;",  # 14 mobile with +
        '"";"";"";"";""',  #   blank (quoted)
        f"{META};566135941;{e(1)};;",  # 15 = row 1, trimmed
        ';;;;"only a note"',  # 16 a record: 715
        f"{META};12345678901234567890;{e(14)};;",  # 17 beyond 64 bits
        f"{META};jane@example.com;{e(15)};email;",  # 18 fine
    ]
    rows = (
        OK,
        ("invalid", "715"),
        ("invalid", "813"),
        ("invalid", "missing_customer_id"),
        ("invalid", "malformed_id"),
        ("invalid", "spreadsheet_number"),
        ("invalid", "spreadsheet_number"),
        ("invalid", "bad_identifier_type"),
        ("invalid", "bad_customer_id"),
        ("invalid", "bad_customer_id"),
        ("invalid", "bad_customer_id"),
        ("invalid", "bad_customer_id"),
        OK,
        OK,
        DUPLICATE,
        ("invalid", "715"),
        ("invalid", "bad_customer_id"),
        OK,
    )
    return Case("awkward.csv", _csv(lines, newline="\r\n"), 1, rows=rows)


def _row_level_cases() -> list[Case]:
    e = earned
    three = "badgeMetaId,customerId,earnedBadgeId"
    return [
        _awkward(),
        # Tabs, and the line breaks of old Macs (CR alone), no newline at the end.
        Case(
            "old-mac.tsv",
            "\r".join(
                [
                    "badge_meta_id\tcustomer_id\tearned_badge_id\tidentifier_type",
                    f"{META}\t4111111111111111\t{e(1)}\tcardNumber",
                    f"{META}\t 566135941 \t{e(2)}\t",
                ]
            ).encode(),
            0,
            rows=(OK, OK),
        ),
        Case(
            "pipes.csv.gz",
            gzip.compress(
                _csv(
                    [
                        "badgeMetaId|customerId|earnedBadgeId",
                        f"{META}|566135941|{e(1)}",
                        f"{META}|566135942|{e(2)}",
                    ],
                    newline="\r\n",
                )
            ),
            0,
            rows=(OK, OK),
        ),
        Case("header-only.csv", f"\ufeff{three}".encode(), 0, rows=()),
        Case(
            "stdin.csv",
            _csv(
                [
                    "badgeMetaId;customerId;earnedBadgeId",
                    f"{META};566135941;{e(1)}",
                    f"{META};566135941;{e(1)}",
                    f"{META};566135941x;{e(2)}",
                ]
            ),
            1,
            rows=(OK, DUPLICATE, ("invalid", "bad_customer_id")),
            stdin=True,
        ),
        # Headers of the operator's own, mapped with --column; more commas than semicolons
        # in the header, so the delimiter has to be forced.
        Case(
            "mapped.csv",
            _csv(
                [
                    "meta;cust;earned;note, with, a, few, commas",
                    f"{META};566135941;{e(1)};x, y",
                ]
            ),
            0,
            rows=(OK,),
            args=(
                "--delimiter",
                ";",
                "--column",
                "badgeMetaId=meta",
                "--column",
                "customerId=cust",
                "--column",
                "earnedBadgeId=earned",
            ),
        ),
        Case(
            "row-groups.parquet",
            _parquet_row_groups(),
            1,
            rows=(OK, OK, ("invalid", "813"), OK, ("invalid", "bad_identifier_type"), OK, OK),
        ),
        Case(
            "floats.parquet",
            _parquet_floats(),
            1,
            rows=(
                ("invalid", "spreadsheet_number"),
                ("invalid", "spreadsheet_number"),
                ("invalid", "missing_customer_id"),
                ("invalid", "spreadsheet_number"),
            ),
        ),
        Case(
            "sheet.xlsx",
            _xlsx(),
            1,
            rows=(OK, ("invalid", "spreadsheet_number"), OK, ("invalid", "malformed_id")),
        ),
    ]


def _parquet_row_groups() -> bytes:
    """Three row groups; dictionary, int64, large_string and string columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    ids = [566135941, 9007199254740993, 3, 4, 5, 6, 7]  # 2**53 + 1: a float would lose it
    table = pa.table(
        {
            "BadgeMetaId": pa.array([META] * 7).dictionary_encode(),
            "customerId": pa.array(ids, pa.int64()),
            "earnedBadgeId": pa.array([earned(i) if i != 2 else None for i in range(7)], pa.large_string()),
            "identifierType": pa.array(["id", None, None, "ID", "bogus", None, "id"]),
        }
    )
    out = io.BytesIO()
    pq.write_table(table, out, row_group_size=3)
    return out.getvalue()


def _parquet_floats() -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "badgeMetaId": [META] * 4,
            "customerId": pa.array([566135941.0, 5.66135941e17, None, 12.5], pa.float64()),
            "earnedBadgeId": [earned(i) for i in range(4)],
        }
    )
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


def _xlsx() -> bytes:
    """A blank first row, a numeric id cell, a float id cell, padded text, a numeric earned id."""
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append([])
    sheet.append(["Badge Meta ID", "Customer Id", "earned badge id"])
    sheet.append([META, 566135941, earned(1)])
    sheet.append([META, 5.66135941e17, earned(2)])
    sheet.append([None, None, None])
    sheet.append([f" {META} ", " 566135943 ", earned(3)])
    sheet.append([META, 566135944, 123456789012345678901234.0])  # Excel's digits
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# --- file-level: exit 2, one line naming the file and the problem -----------------------------


def _file_level_cases() -> list[Case]:
    e = earned
    three = "badgeMetaId,customerId,earnedBadgeId"
    good = f"{META},566135941,{e(1)}"
    return [
        Case("empty.csv", b"", 2, error="the file is empty"),
        Case("bom-and-blank-lines.csv", codecs.BOM_UTF8 + b"\r\n\n  \n,,\n", 2, error="the file is empty"),
        Case(
            "latin1.csv",
            f"{three}\n{good}\n{META},Jos\xe9,{e(2)}\n".encode("latin-1"),
            2,
            error="invalid byte 0xe9 at byte offset 125",
        ),
        Case("utf16.csv", f"{three}\n{good}\n".encode("utf-16"), 2, error="UTF-16"),
        Case("utf16-no-bom.csv", f"{three}\n{good}\n".encode("utf-16-le"), 2, error="NUL bytes"),
        Case(
            "typo.csv",
            _csv(["badgeMetaId,customerId,earned_badge_idd", good]),
            2,
            error="did you mean 'earned_badge_idd'?",
        ),
        Case(
            "ambiguous.csv",
            _csv(["badgeMetaId,Customer ID,customer_id,earnedBadgeId"]),
            2,
            error="column customerId matches 2 headers",
        ),
        Case(
            "no-header.csv",
            _csv([f"{META},jane@example.com,{e(1)}"]),
            2,
            error="the first line holds ids, not headers",
            secret="jane@example.com",
        ),
        Case(
            "unquoted-comma.csv",
            _csv([three, good, f"{META},jane@example.com,x,{e(2)}"]),
            2,
            error="record 2 (line 3) has 4 fields where the header has 3",
            secret="jane@example.com",
        ),
        Case(
            "short-record.csv",
            _csv([three, good, "", f"{META},566135941"]),
            2,
            error="record 2 (line 4) has 2 fields",
        ),
        Case(
            "unclosed-quote.csv",
            _csv([three, good, f'{META},"566135941,{e(2)}'] + [good] * 40_000),
            2,
            error="record 2 (line 3) is larger than 256 KiB",
        ),
        Case(
            "fifty-mb-field.csv",
            lambda: _csv([three, good]) + b"7" * (50 << 20) + b",1,2\n",
            2,
            error="record 2 (line 3) is larger than 256 KiB",
            timeout=30,
        ),
        Case(
            "fifty-thousand-columns.csv",
            _csv([",".join(f"c{i}" for i in range(50_000))]),
            2,
            error="the header has 50,000 columns",
            timeout=30,
        ),
        Case(
            "huge-header-line.csv",
            lambda: b"x" * (50 << 20),
            2,
            error="the header line is longer than 1 MiB",
            timeout=30,
        ),
        Case(
            "wrong-delimiter.csv",
            _csv(["badgeMetaId;customerId;earnedBadgeId"]),
            2,
            error="is the delimiter right? (--delimiter ;)",
            args=("--delimiter", ","),
        ),
        Case("workbook-named.csv", _xlsx(), 2, error="is a zip archive"),
        Case(
            "truncated.csv.gz", gzip.compress(_csv([three] + [good] * 50_000))[:-200], 2, error="cannot read"
        ),
        Case("notes.json", b'{"rows": []}', 2, error="unknown input kind '.json'"),
        Case("not-there.csv", None, 2, error="no such file"),
        Case("broken.xlsx", b"not a zip at all", 2, error="not a readable .xlsx file"),
        Case(
            "bools.parquet", _parquet_with("customerId", "bool"), 2, error="column 'customerId' has type bool"
        ),
        Case(
            "nested.parquet",
            _parquet_with("earnedBadgeId", "struct"),
            2,
            error="column 'earnedBadgeId' has type struct",
        ),
        Case("csv-named.parquet", _csv([three, good]), 2, error="not a readable Parquet file"),
    ]


def _parquet_with(column: str, kind: str) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    values = {"bool": pa.array([True]), "struct": pa.array([{"id": earned(1)}])}[kind]
    columns = {
        "badgeMetaId": pa.array([META]),
        "customerId": pa.array(["566135941"]),
        "earnedBadgeId": pa.array([earned(1)]),
    }
    columns[column] = values
    out = io.BytesIO()
    pq.write_table(pa.table(columns), out)
    return out.getvalue()


def cases() -> list[Case]:
    return _row_level_cases() + _file_level_cases()


def write(case: Case, directory: Path) -> Path:
    """Write *case*'s file into *directory* (unless it is meant to be missing)."""
    path = directory / case.name
    if case.data is not None:
        path.write_bytes(case.data() if callable(case.data) else case.data)
    return path


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "corpus")
    target.mkdir(parents=True, exist_ok=True)
    for case in cases():
        path = write(case, target)
        expected = case.error if case.exit_code == 2 else f"{len(case.rows)} rows"
        print(f"{path.name:32} exit {case.exit_code}  {expected}")
