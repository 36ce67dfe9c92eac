"""The streaming readers, in-process: what each kind of input turns into, and the one-line
errors of the inputs that can't be used."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import sys
import threading
import tracemalloc
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulkrevoke.errors import InputError
from bulkrevoke.ingest.reader import open_source
from bulkrevoke.ingest.source import BLANK
from bulkrevoke.ingest.validate import validate

META = "698dae82d30c4f6b3da9dc06"
HEADER = "badgeMetaId,customerId,earnedBadgeId"


def earned(n: int) -> str:
    return f"698daf848644c157e72d{n:04x}"


def rows_of(source: Any, **options: Any) -> list[tuple[str | None, ...]]:
    opened = open_source(source, **options)
    return [row for batch in opened.batches() for row in batch]


def write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def error_of(source: Any, **options: Any) -> str:
    with pytest.raises(InputError) as caught:
        rows_of(source, **options)
    message = str(caught.value)
    assert "\n" not in message
    return message


# --- CSV dialects -------------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_the_delimiter_is_detected_from_the_header_line(tmp_path: Path, delimiter: str) -> None:
    header = delimiter.join(["Badge Meta ID", "customer_id", "EARNED-BADGE-ID", "identifierType"])
    record = delimiter.join([META, "566135941", earned(1), "email"])
    # A comma inside the data must not sway the detection of ; \t |.
    note = delimiter.join([META, '"a,b,c"', earned(2), "externalId"])
    path = write(tmp_path, "in.csv", f"{header}\n{record}\n{note}\n")
    assert rows_of(path) == [
        (META, "566135941", earned(1), "email"),
        (META, "a,b,c", earned(2), "externalId"),
    ]


def test_a_forced_delimiter_wins_over_detection(tmp_path: Path) -> None:
    path = write(
        tmp_path, "in.csv", f"badgeMetaId;customerId;earnedBadgeId;a,b,c,d\n{META};1;{earned(1)};x,y\n"
    )
    assert "missing required column" in error_of(path)
    assert rows_of(path, delimiter=";") == [(META, "1", earned(1), None)]


def test_a_tsv_file_is_tab_separated_even_with_commas_in_the_header(tmp_path: Path) -> None:
    path = write(
        tmp_path, "in.tsv", f"badgeMetaId\tcustomerId\tearnedBadgeId\tnote,a,b,c\n{META}\t1\t{earned(1)}\tx\n"
    )
    assert rows_of(path) == [(META, "1", earned(1), None)]


def test_quoted_fields_hold_delimiters_quotes_and_line_breaks(tmp_path: Path) -> None:
    text = f'{HEADER},note\r\n"{META}","ext,""42""\r\nline",{earned(1)},"a\nb"\r\n{META},2,{earned(2)},""\r\n'
    path = write(tmp_path, "in.csv", text)
    assert rows_of(path) == [(META, 'ext,"42"\r\nline', earned(1), None), (META, "2", earned(2), None)]


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("bom", ["", "\ufeff"])
def test_line_endings_and_a_bom_are_tolerated(tmp_path: Path, newline: str, bom: str) -> None:
    text = bom + newline.join([HEADER, f"{META},1,{earned(1)}", f"{META},2,{earned(2)}"])
    path = write(tmp_path, "in.csv", text)
    assert [r[1] for r in rows_of(path)] == ["1", "2"]
    assert open_source(path).headers[0] == "badgeMetaId"


def test_blank_lines_are_not_records_but_a_row_with_only_a_note_is(tmp_path: Path) -> None:
    lines = [
        "",
        "  ",
        ",,,",
        f"{HEADER},note",
        "",
        f"{META},1,{earned(1)},",
        " \t ",
        ",,,",
        '"","","",""',
        ",",
        ",,,only a note",
        f"{META},2,{earned(2)},",
        "",
        "",
    ]
    path = write(tmp_path, "in.csv", "\n".join(lines))
    assert rows_of(path) == [(META, "1", earned(1), None), ("", "", "", None), (META, "2", earned(2), None)]


def test_a_quoted_header_may_hold_a_line_break(tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", f'"badge\nmeta id",customerId,earnedBadgeId\n{META},1,{earned(1)}\n')
    assert rows_of(path) == [(META, "1", earned(1), None)]


def test_a_header_only_file_has_no_records(tmp_path: Path) -> None:
    assert rows_of(write(tmp_path, "in.csv", HEADER)) == []
    assert rows_of(write(tmp_path, "in2.csv", HEADER + "\n\n,,\n")) == []


def test_values_stay_text(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "in.csv",
        f"{HEADER}\n{META},007,{earned(1)}\n"
        f"{META},9007199254740993,{earned(2)}\n"
        f"{META},5.66135941E+8,{earned(3)}\n",
    )
    assert [r[1] for r in rows_of(path)] == ["007", "9007199254740993", "5.66135941E+8"]


# --- gzip and stdin -----------------------------------------------------------------------


def test_gzip_is_read_and_hashed_as_the_file_on_disk(tmp_path: Path) -> None:
    data = gzip.compress(f"{HEADER}\n{META},1,{earned(1)}\n".encode())
    path = write(tmp_path, "in.csv.gz", data)
    source = open_source(path)
    assert [r for b in source.batches() for r in b] == [(META, "1", earned(1), None)]
    assert source.sha256 == hashlib.sha256(data).hexdigest()


def test_gzip_is_sniffed_not_trusted_to_the_name(tmp_path: Path) -> None:
    text = f"{HEADER}\n{META},1,{earned(1)}\n"
    assert rows_of(write(tmp_path, "zipped.csv", gzip.compress(text.encode()))) == rows_of(
        write(tmp_path, "unpacked.csv.gz", text)
    )


def test_a_truncated_gzip_is_a_file_level_error(tmp_path: Path) -> None:
    data = gzip.compress((f"{HEADER}\n" + f"{META},1,{earned(1)}\n" * 20_000).encode())
    path = write(tmp_path, "in.csv.gz", data[: len(data) // 2])
    assert error_of(path).startswith(f"{path}: cannot read")
    assert error_of(write(tmp_path, "junk.csv.gz", b"\x1f\x8b\x08junk")).startswith(
        f"{tmp_path / 'junk.csv.gz'}: cannot read"
    )


class _Stdin:
    def __init__(self, data: bytes) -> None:
        self.buffer = io.BytesIO(data)


def test_stdin_is_spooled_hashed_and_the_spool_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = f"badgeMetaId|customerId|earnedBadgeId\n{META}|1|{earned(1)}\n".encode()
    monkeypatch.setattr(sys, "stdin", _Stdin(data))
    source = open_source("-", spool_dir=tmp_path)
    assert source.name == "<stdin>"
    assert [r for b in source.batches() for r in b] == [(META, "1", earned(1), None)]
    assert source.sha256 == hashlib.sha256(data).hexdigest()
    assert list(tmp_path.iterdir()) == []


def test_stdin_that_is_refused_leaves_no_spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", _Stdin(b"nothing,useful\n"))
    with pytest.raises(InputError, match=r"^<stdin>: missing required column"):
        open_source("-", spool_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


# --- file-level CSV errors ----------------------------------------------------------------


def test_not_utf8_names_the_byte_offset(tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", f"{HEADER}\n{META},Jos\xe9,{earned(1)}\n".encode("latin-1"))
    offset = len(HEADER) + 1 + len(META) + 1 + len("Jos")
    assert error_of(path) == (
        f"{path}: not UTF-8 text (invalid byte 0xe9 at byte offset {offset}); save the file as UTF-8"
    )


def test_not_utf8_far_into_a_file_and_in_the_header(tmp_path: Path) -> None:
    body = f"{HEADER}\n" + f"{META},1,{earned(1)}\n" * 50_000
    path = write(tmp_path, "far.csv.gz", gzip.compress(body.encode() + b"\x80,1,2\n"))
    assert f"at byte offset {len(body):,} of the unpacked text" in error_of(path)
    header = write(tmp_path, "header.csv", b"badgeMetaId,customerId,earnedBadgeId,caf\xc3(\n")
    assert "invalid byte 0xc3 at byte offset 40" in error_of(header)


def test_not_utf8_across_a_read_boundary(tmp_path: Path) -> None:
    # A two-byte sequence cut by the 1 MiB read, whose second byte is wrong: the offset
    # is that of its first byte, read in the chunk before.
    line = f"{META},1,{earned(1)}\n".encode()
    body = f"{HEADER}\n".encode()
    body += line * (((1 << 20) - len(body)) // len(line) - 1)
    prefix = f"{META},".encode()
    filler = b"1" * ((1 << 20) - 1 - len(body) - len(prefix))
    path = write(tmp_path, "in.csv", body + prefix + filler + b"\xc3(," + earned(1).encode() + b"\n")
    assert f"invalid byte 0xc3 at byte offset {(1 << 20) - 1:,})" in error_of(path)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "the file is empty (no header line)"),
        (b"\xef\xbb\xbf\r\n \n;;\n", "the file is empty (no header line)"),
        ("badgeMetaId\n".encode("utf-16"), "is UTF-16 text"),
        ("badgeMetaId,customerId\n".encode("utf-16-le"), "holds NUL bytes"),
        (b"PK\x03\x04\x14\x00", "is a zip archive"),
        (b"PAR1\x00\x00", "is a Parquet file"),
        (b'"badgeMetaId,customerId,earnedBadgeId\n1,2,3\n', "unclosed double quote"),
    ],
)
def test_what_is_not_csv_text_is_refused_in_one_line(tmp_path: Path, data: bytes, fragment: str) -> None:
    path = write(tmp_path, "in.csv", data)
    message = error_of(path)
    assert message.startswith(f"{path}: ") and fragment in message


def test_a_record_with_the_wrong_number_of_fields_is_located(tmp_path: Path) -> None:
    lines = [
        HEADER,
        f"{META},1,{earned(1)}",
        "",
        f'{META},"2\n2",{earned(2)}',
        f"{META},jane@example.com,{earned(3)},extra",
    ]
    path = write(tmp_path, "in.csv", "\n".join(lines) + "\n")
    message = error_of(path)
    assert message == (
        f"{path}: record 3 (line 6) has 4 fields where the header has 3; "
        "quote fields that hold the delimiter ','"
    )
    assert "jane" not in message


def test_a_short_record_late_in_a_big_file(tmp_path: Path) -> None:
    body = f"{HEADER}\n" + f"{META},1,{earned(1)}\n" * 100_000 + f"{META},1\n"
    path = write(tmp_path, "in.csv", body)
    assert "record 100,001 (line 100,002) has 2 fields" in error_of(path)


def test_a_fifty_megabyte_field_is_refused_without_being_held_whole(tmp_path: Path) -> None:
    path = write(
        tmp_path, "in.csv", f"{HEADER}\n{META},1,{earned(1)}\n".encode() + b"9" * (50 << 20) + b",1,2\n"
    )
    tracemalloc.start()
    try:
        message = error_of(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20  # the field is never held whole, not even to say where it is
    assert "record 2 (line 3) is larger than 256 KiB" in message
    assert "999" not in message


def test_no_python_code_runs_on_the_readers_thread(tmp_path: Path, monkeypatch: Any) -> None:
    # pyarrow reads ahead on a thread of its own. Were that thread to call into Python (a
    # Python file object), a read still pending when an input error abandons the reader
    # could run while tracemalloc is being stopped or the interpreter is exiting, and
    # crash the process. So every byte is read by pyarrow from the file itself.
    from bulkrevoke.ingest import csv_header

    threads: set[int] = set()
    original = csv_header.HashingReader.readinto

    def readinto(self: Any, buffer: Any) -> int:
        threads.add(threading.get_ident())
        return original(self, buffer)

    monkeypatch.setattr(csv_header.HashingReader, "readinto", readinto)
    good = f"{META},1,{earned(1)}\n"
    for name, data in [
        ("in.csv", (f"{HEADER}\n" + good * 80_000).encode()),
        ("in.csv.gz", gzip.compress((f"{HEADER}\n" + good * 80_000).encode())),
    ]:
        assert len(rows_of(write(tmp_path, name, data))) == 80_000
        with pytest.raises(InputError):
            rows_of(write(tmp_path, name, data + b"9" * (3 << 20) + b",1,2\n" + good.encode()))
    assert threads == {threading.get_ident()}


def test_a_gzip_file_is_unpacked_privately_and_the_spool_removed(tmp_path: Path) -> None:
    good = f"{META},1,{earned(1)}\n"
    packed = gzip.compress((f"{HEADER}\n" + good * 1_000).encode())
    spool = tmp_path / "run"
    spool.mkdir()
    path = write(tmp_path, "in.csv.gz", packed)
    source = open_source(path, spool_dir=spool)
    batches = source.batches()
    assert len(next(batches)) == 1_000
    assert [oct(f.stat().st_mode & 0o777) for f in spool.iterdir()] == ["0o600"]
    assert list(batches) == []
    assert source.sha256 == hashlib.sha256(packed).hexdigest()  # of the file, not the text
    assert list(spool.iterdir()) == []
    with pytest.raises(InputError):
        rows_of(write(tmp_path, "bad.csv.gz", packed[:-100]), spool_dir=spool)
    assert list(spool.iterdir()) == []


def test_an_unclosed_quote_fails_fast_and_is_located(tmp_path: Path) -> None:
    good = f"{META},1,{earned(1)}\n"
    path = write(tmp_path, "in.csv", f'{HEADER}\n{good}{META},"2,{earned(2)}\n' + good * 50_000)
    assert "record 2 (line 3) is larger than 256 KiB" in error_of(path)


def test_huge_headers_are_refused(tmp_path: Path) -> None:
    wide = write(tmp_path, "wide.csv", ",".join(f"c{i}" for i in range(20_000)) + "\n")
    assert "the header has 20,000 columns (at most 10,000)" in error_of(wide)
    endless = write(tmp_path, "endless.csv", b"x" * (8 << 20))
    assert "the header line is longer than 1 MiB" in error_of(endless)


def test_unknown_kinds_missing_files_and_directories(tmp_path: Path) -> None:
    assert "unknown input kind '.json'" in error_of(write(tmp_path, "a.json", "{}"))
    assert "unknown input kind '(no extension)'" in error_of(write(tmp_path, "a", HEADER))
    assert error_of(tmp_path / "nope.csv") == f"{tmp_path / 'nope.csv'}: no such file"
    assert "is a directory" in error_of(tmp_path)


# --- header matching ----------------------------------------------------------------------


def test_column_maps_a_field_to_the_operators_header(tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", f"meta,cust,earned,kind\n{META},1,{earned(1)},email\n")
    mapping = {
        "badgeMetaId": "meta",
        "customerId": "cust",
        "earnedBadgeId": "earned",
        "identifierType": "kind",
    }
    assert rows_of(path, columns=mapping) == [(META, "1", earned(1), "email")]


def test_a_missing_column_lists_the_headers_and_the_closest_one(tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", "badgeMetaId,customerId,earned_badge_idd\n")
    assert error_of(path) == (
        f"{path}: missing required column 'earnedBadgeId'; headers found: 'badgeMetaId', "
        "'customerId', 'earned_badge_idd'; did you mean 'earned_badge_idd'? "
        "(--column earnedBadgeId=earned_badge_idd)"
    )


def test_a_missing_mapped_column_says_which_flag_named_it(tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", "meta,customerId,earnedBadgeId\n")
    message = error_of(path, columns={"badgeMetaId": "meta_id"})
    assert "missing column 'meta_id' (given by --column badgeMetaId=meta_id)" in message
    assert "did you mean 'meta'?" in message


def test_a_wrong_delimiter_is_pointed_at(tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", "badgeMetaId\tcustomerId\tearnedBadgeId\n")
    assert error_of(path, delimiter=";").endswith("is the delimiter right? (--delimiter tab)")


def test_a_file_without_headers_is_named_without_quoting_its_data(tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", f"{META},jane@example.com,{earned(1)}\n")
    message = error_of(path)
    assert "the first line holds ids, not headers" in message
    assert "jane" not in message


def test_two_headers_for_one_field_are_ambiguous(tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", "badgeMetaId,Customer ID,customer-id,earnedBadgeId\n")
    assert "column customerId matches 2 headers ('Customer ID', 'customer-id')" in error_of(path)


# --- Parquet ------------------------------------------------------------------------------


def _parquet(
    tmp_path: Path, customer: pa.Array, *, row_group_size: int | None = None, **extra: pa.Array
) -> Path:
    n = len(customer)
    table = pa.table(
        {
            "badgeMetaId": pa.array([META] * n),
            "customerId": customer,
            "earnedBadgeId": pa.array([earned(i) for i in range(n)]),
            **extra,
        }
    )
    path = tmp_path / "in.parquet"
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


@pytest.mark.parametrize(
    "customer",
    [
        pa.array(["566135941", "9007199254740993"]),
        pa.array(["566135941", "9007199254740993"], pa.large_string()),
        pa.array(["566135941", "9007199254740993"]).dictionary_encode(),
        pa.array([566135941, 9007199254740993], pa.int64()),
        pa.array([566135941, 9007199254740993], pa.uint64()),
        pa.array([566135941, 9007199254740993], pa.decimal128(20, 0)),
    ],
    ids=["string", "large_string", "dictionary", "int64", "uint64", "decimal"],
)
def test_parquet_ids_become_exact_text(tmp_path: Path, customer: pa.Array) -> None:
    rows = rows_of(_parquet(tmp_path, customer))
    assert [r[1] for r in rows] == ["566135941", "9007199254740993"]


def test_parquet_int32_and_row_groups_keep_order(tmp_path: Path) -> None:
    ids = list(range(100, 110))
    path = _parquet(
        tmp_path, pa.array(ids, pa.int32()), row_group_size=3, identifierType=pa.array(["id", None] * 5)
    )
    assert pq.ParquetFile(path).num_row_groups == 4
    rows = rows_of(path)
    assert [r[1] for r in rows] == [str(i) for i in ids]
    assert [r[3] for r in rows] == ["id", None] * 5


def test_parquet_floats_keep_a_form_validation_flags(tmp_path: Path) -> None:
    path = _parquet(tmp_path, pa.array([566135941.0, 5.66135941e17, None, float("nan")]))
    customers = [r[1] for r in rows_of(path)]
    assert customers == ["566135941.0", "5.66135941e+17", None, None]
    codes = [validate(META, c, earned(1), None, "id").error_code for c in customers]
    assert codes == ["spreadsheet_number", "spreadsheet_number", "missing_customer_id", "missing_customer_id"]


@pytest.mark.parametrize(
    ("customer", "shown"),
    [
        (pa.array([b"566135941"]), "binary"),
        (pa.array([True]), "bool"),
        (pa.array([0], pa.timestamp("ms")), "timestamp[ms]"),
        (pa.array([[1]]), "list<element: int64>"),
        (pa.array([{"id": 1}]), "struct<id: int64>"),
    ],
)
def test_parquet_types_that_cant_hold_an_id(tmp_path: Path, customer: pa.Array, shown: str) -> None:
    path = _parquet(tmp_path, customer)
    assert error_of(path) == (
        f"{path}: column 'customerId' has type {shown}; ids must be "
        "text (or integers): write the column as strings"
    )


def test_parquet_that_is_not_parquet(tmp_path: Path) -> None:
    path = write(tmp_path, "in.parquet", HEADER)
    assert error_of(path).startswith(f"{path}: not a readable Parquet file (")


def test_parquet_is_hashed_as_the_file(tmp_path: Path) -> None:
    path = _parquet(tmp_path, pa.array(["1"]))
    assert open_source(path).sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


# --- Excel and DataFrames -----------------------------------------------------------------


def test_xlsx_reads_cells_as_text_and_flags_float_ids(tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    sheet = book.active
    for values in (
        [],
        ["Badge Meta ID", "customer_id", "earnedBadgeId", "note"],
        [META, 566135941, earned(1)],
        [None, None, None, None],
        [META, 5.66135941e17, earned(2)],
        [META, " 42 ", earned(3), "x"],
        [None, None, None, "only a note"],
    ):
        sheet.append(values)
    path = tmp_path / "in.xlsx"
    book.save(path)
    assert rows_of(path) == [
        (META, "566135941", earned(1), None),
        (META, "5.66135941e+17", earned(2), None),
        (META, " 42 ", earned(3), None),
        (None, None, None, None),
    ]


def test_xlsx_without_openpyxl_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openpyxl", None)
    path = write(tmp_path, "in.xlsx", b"PK")
    assert error_of(path) == (f"{path}: reading .xlsx needs the excel extra: pip install 'bulkrevoke[excel]'")


def test_a_broken_xlsx_is_a_file_level_error(tmp_path: Path) -> None:
    pytest.importorskip("openpyxl")
    path = write(tmp_path, "in.xlsx", b"not a zip")
    assert error_of(path) == f"{path}: not a readable .xlsx file (BadZipFile)"


def test_dataframes_are_read_as_text(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "badge_meta_id": [META, META, META],
            "CustomerId": [566135941, 2, 3],
            "earnedBadgeId": [earned(1), None, earned(3)],
            "identifierType": ["id", None, "mobile"],
        }
    )
    assert rows_of(frame) == [
        (META, "566135941", earned(1), "id"),
        (META, "2", None, None),
        (META, "3", earned(3), "mobile"),
    ]
    floats = frame.assign(CustomerId=[566135941.0, None, 1.5])
    assert [r[1] for r in rows_of(floats)] == ["566135941.0", None, "1.5"]
    assert "has type bool" in error_of(frame.assign(CustomerId=[True, False, True]))


# --- the property: every record exactly once, or a clean InputError ------------------------

_SPELLINGS = {
    "badgeMetaId": ["badgeMetaId", "badge_meta_id", "Badge Meta ID", "BADGE-META-ID"],
    "customerId": ["customerId", "customer_id", " Customer Id ", "CUSTOMERID"],
    "earnedBadgeId": ["earnedBadgeId", "earned_badge_id", "Earned Badge ID"],
    "identifierType": ["identifierType", "identifier_type", "Identifier Type"],
}
_CELL = st.text(st.sampled_from([*'ab19 ,;\t|"\r\n', "é", "\u200b", "☃", "\U0001f600"]), max_size=12)


@st.composite
def csv_texts(draw: st.DrawFn) -> tuple[str, str, list[str], bool]:
    """(text, delimiter, header fields in file order, delimiter forced?) for a CSV whose
    header names the three required fields, maybe identifierType, maybe extra columns."""
    fields = ["badgeMetaId", "customerId", "earnedBadgeId"]
    fields += draw(st.sampled_from([[], ["identifierType"]]))
    fields += draw(st.sampled_from([[], ["note"], ["note", "x y"]]))
    fields = draw(st.permutations(fields))
    names = [draw(st.sampled_from(_SPELLINGS.get(f, [f]))) for f in fields]
    delimiter = draw(st.sampled_from(",;\t|"))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=newline, quoting=quoting)
    writer.writerow(names)
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.booleans()):  # a record, maybe of the wrong width
            width = len(names) + draw(st.sampled_from([0, 0, 0, 0, -1, 1]))
            writer.writerow(draw(st.lists(_CELL, min_size=width, max_size=width)))
        else:  # noise: blank lines, delimiter-only lines, a raw fragment
            out.write(draw(st.sampled_from(["", "  ", delimiter * 3, '""'])) + newline)
    leading = draw(st.sampled_from(["", "\n", f" \n{delimiter * 2}\n", "\r\n\r\n"]))
    bom = draw(st.sampled_from(["", "\ufeff"]))
    tail = draw(st.sampled_from(["", newline, "\n\n"]))
    return bom + leading + out.getvalue() + tail, delimiter, fields, draw(st.booleans())


def _oracle(text: str, delimiter: str) -> list[list[str]]:
    """Python's csv module's records, blank ones (every field blank) left out."""
    records = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""), delimiter=delimiter)
    return [r for r in records if any(f.strip(BLANK) for f in r)]


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(csv_texts())
def test_every_record_exactly_once_or_an_input_error(
    tmp_path_factory: pytest.TempPathFactory, generated: tuple[str, str, list[str], bool]
) -> None:
    text, delimiter, fields, forced = generated
    path = tmp_path_factory.mktemp("prop") / "in.csv"
    path.write_bytes(text.encode("utf-8"))
    header, *records = _oracle(text, delimiter)
    assert len(header) == len(fields)
    try:
        got = rows_of(path, delimiter=delimiter if forced else None)
    except InputError as exc:
        assert any(len(r) != len(header) for r in records), exc
        assert str(exc).startswith(f"{path}: record ")
        return
    assert all(len(r) == len(header) for r in records)
    expected = [
        tuple(
            r[fields.index(f)] if f in fields else None
            for f in ("badgeMetaId", "customerId", "earnedBadgeId", "identifierType")
        )
        for r in records
    ]
    assert got == expected
    for row in got:
        verdict = validate(*row, "id")
        assert verdict.badge_meta_id == (row[0] or "").strip()
        assert verdict.customer_id == (row[1] or "").strip()
