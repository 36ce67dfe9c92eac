"""CSV input: .csv, .tsv, .txt, gzip and standard input, streamed by pyarrow.

The header line is read first (``csv_header``: BOM, delimiter detection, quoting), the
records here, by pyarrow's streaming reader with every column typed as text; the input is
hashed as it is read. On the error path only, the file is read again to say where a bad
record is.

pyarrow reads the records from the file itself, never through a Python file object: its
reader reads ahead on a thread of its own, and a read still pending when an input error
abandons the reader must not call into Python (with the interpreter stopping, or
tracemalloc being switched off, that crashes the process). A gzip file is therefore
unpacked to a private spool file first, hashed as it is unpacked.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import itertools
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from bulkrevoke.errors import InputError
from bulkrevoke.ingest.csv_header import (
    READ_ERRORS,
    HashingReader,
    csv_stream,
    is_gzip,
    open_binary,
    parse_header,
    read_header_line,
    utf8_error_message,
)
from bulkrevoke.ingest.source import BLANK, BLOCK_SIZE, Columns, Source, match_columns


def open_stdin(columns: dict[str, str], delimiter: str | None, spool_dir: Path | None) -> Source:
    """Standard input is spooled to a private file first, so it is hashed and read once."""
    import tempfile

    spool = tempfile.NamedTemporaryFile(  # noqa: SIM115 - deleted when the reader is done
        prefix="stdin-", suffix=".csv", dir=spool_dir, delete=False
    )
    spool_path = Path(spool.name)
    try:
        with spool:
            shutil.copyfileobj(sys.stdin.buffer, spool, 1 << 20)
        source = open_csv(spool_path, "<stdin>", columns, delimiter, spool_dir)
    except BaseException:
        spool_path.unlink(missing_ok=True)
        raise
    inner = source.columns()

    def records() -> Iterator[Columns]:
        try:
            yield from inner
        finally:
            spool_path.unlink(missing_ok=True)

    source._columns = records()
    return source


def open_csv(
    path: Path,
    name: str,
    columns: dict[str, str],
    delimiter: str | None,
    spool_dir: Path | None = None,
) -> Source:
    """Read the header now (file-level errors come before anything else), the records
    later: the file is opened again then, so a source never read holds nothing open."""
    with csv_stream(path, name) as (stream, _):
        header_bytes, records_start = read_header_line(stream, name)
    chosen, headers = parse_header(header_bytes, name, path, delimiter)
    positions = match_columns(name, headers, columns)
    source = Source(name=name, kind="csv", headers=headers)
    source._columns = _csv_columns(source, path, spool_dir, records_start, len(headers), positions, chosen)
    return source


# --- CSV: the records ---------------------------------------------------------------------


def _csv_columns(
    source: Source,
    path: Path,
    spool_dir: Path | None,
    records_start: int,
    width: int,
    positions: list[int | None],
    delimiter: str,
) -> Iterator[Columns]:
    import pyarrow as pa

    failed = False

    def on_invalid_row(row: Any) -> str:
        nonlocal failed
        if _is_blank_text(row.text, delimiter):
            return "skip"  # a blank (or only-delimiters) line is not a record
        failed = True
        return "error"

    wanted = sorted({p for p in positions if p is not None})
    with _plain_text(path, source.name, spool_dir) as (text_path, hashing):
        try:
            for batch in _arrow_csv_reader(text_path, records_start, width, delimiter, on_invalid_row):
                hashing.step()
                batch = _without_blank_records(batch, wanted)
                if batch.num_rows:
                    a, b, c, d = (None if p is None else batch.column(p) for p in positions)
                    yield a, b, c, d
        except pa.ArrowInvalid as exc:
            raise _csv_error(source.name, str(exc), failed, path, delimiter, width) from None
        hashing.drain()
        source.sha256 = hashing.digest.hexdigest()


@contextlib.contextmanager
def _plain_text(path: Path, name: str, spool_dir: Path | None) -> Iterator[tuple[Path, HashingReader]]:
    """The file as plain text on disk, and the hash of the file's bytes.

    A plain file is itself, hashed a block per batch as the records are read. A gzip file
    is unpacked to a private spool file (removed afterwards) and hashed as it is unpacked."""
    if not is_gzip(path):
        with open_binary(path, name) as raw:
            yield path, HashingReader(raw)
        return
    import tempfile

    spool = tempfile.NamedTemporaryFile(  # noqa: SIM115 - removed in the finally below
        prefix="unpacked-", suffix=".csv", dir=spool_dir, delete=False
    )
    spool_path = Path(spool.name)
    try:
        with spool, csv_stream(path, name) as (text, hashing):
            shutil.copyfileobj(text, spool, 1 << 20)
            hashing.drain()
        yield spool_path, hashing
    finally:
        spool_path.unlink(missing_ok=True)


def _arrow_csv_reader(
    text_path: Path, records_start: int, width: int, delimiter: str, on_invalid_row: Any
) -> Iterator[Any]:
    """pyarrow's streaming reader over the records after the header, every column text."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    # Opened by pyarrow and never closed from here: a read still pending on pyarrow's
    # thread holds the file until it is done, and the file is closed when the last holder
    # lets go.
    stream = pa.OSFile(str(text_path))
    stream.seek(records_start)
    names = [f"c{i}" for i in range(width)]
    try:
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(column_names=names, block_size=BLOCK_SIZE, use_threads=False),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter,
                newlines_in_values=True,
                ignore_empty_lines=True,
                invalid_row_handler=on_invalid_row,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        if "Empty CSV file" in str(exc):
            return  # nothing after the header: a file with no records
        raise
    finally:
        del stream
    try:
        yield from reader
    finally:
        # Released now, on an error too, not when the traceback holding this frame is.
        reader.close()
        del reader


_BLANK_FIELD = "^[ \t\r\n]*$"


def _without_blank_records(batch: Any, wanted: list[int]) -> Any:
    """The batch without the records whose every field is blank.

    Every column counts (a row holding only a note is a record), but the others are
    looked at only while some rows are blank in all columns so far: usually none are
    after the first."""
    import pyarrow.compute as pc

    blank = None
    others = (i for i in range(batch.num_columns) if i not in wanted)
    for index in itertools.chain(wanted, others):
        column_blank = pc.match_substring_regex(batch.column(index), _BLANK_FIELD)
        blank = column_blank if blank is None else pc.and_(blank, column_blank)
        if not pc.any(blank).as_py():
            return batch
    return batch.filter(pc.invert(blank))


def _is_blank_text(text: str, delimiter: str) -> bool:
    """Does this raw record text hold only blank fields? (Quotes are parsed, not guessed.)"""
    try:
        fields = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), [])
    except csv.Error:
        return False
    return all(not f.strip(BLANK) for f in fields)


def _csv_error(
    name: str, message: str, bad_record: bool, path: Path, delimiter: str, width: int
) -> InputError:
    if not bad_record and "utf8" in message.lower():
        return InputError(utf8_error_message(name, path))
    where = _first_bad_record(path, delimiter, width)
    if where is not None:
        record, line, problem = where
        return InputError(f"{name}: record {record:,} (line {line:,}) {problem}")
    if "straddl" in message:
        return InputError(
            f"{name}: a record is larger than {BLOCK_SIZE >> 10} KiB "
            "(an unclosed quote, or a field that is not an id)"
        )
    return InputError(f"{name}: not a readable CSV file ({message.splitlines()[0][:200]})")


def _first_bad_record(path: Path, delimiter: str, width: int) -> tuple[int, int, str] | None:
    """Record number, first line and problem of the first record with the wrong number of
    fields or too large to read, found by reading the file again with Python's csv module.

    Only on the error path: pyarrow says *that* a record is bad, not *where*, and an
    operator needs a line number to open in an editor. Python's csv splits records the
    way pyarrow does (same quoting rules), and counts lines as it goes."""
    record, line = 0, 1
    # Neither a field nor a line may outgrow pyarrow's limit here either, or a 50 MB line
    # would be read whole. The field size limit is process-wide: set for this read only.
    old_limit = csv.field_size_limit(BLOCK_SIZE)
    try:
        with _reopen_text(path) as text:
            reader = csv.reader(_bounded_lines(text), delimiter=delimiter)
            header_seen = False
            for fields in reader:
                if all(not f.strip(BLANK) for f in fields):
                    line = reader.line_num + 1
                    continue
                if header_seen:
                    record += 1
                    if len(fields) != width:
                        return (
                            record,
                            line,
                            f"has {len(fields)} fields where the header has "
                            f"{width}; quote fields that hold the delimiter {delimiter!r}",
                        )
                header_seen = True
                line = reader.line_num + 1
    except csv.Error:
        return (
            record + 1,
            line,
            f"is larger than {BLOCK_SIZE >> 10} KiB or unreadable "
            "(an unclosed quote, or a field that is not an id)",
        )
    except READ_ERRORS:
        return None
    finally:
        csv.field_size_limit(old_limit)
    return None


def _bounded_lines(text: IO[str]) -> Iterator[str]:
    while line := text.readline(BLOCK_SIZE + 1):
        if len(line) > BLOCK_SIZE:
            raise csv.Error("a line longer than a block")
        yield line


def _reopen_text(path: Path) -> IO[str]:
    # Closed by the caller's with block (closing the wrapper closes the file).
    binary: Any = gzip.open(path, "rb") if is_gzip(path) else path.open("rb")  # noqa: SIM115
    return io.TextIOWrapper(binary, encoding="utf-8-sig", errors="replace", newline="")
