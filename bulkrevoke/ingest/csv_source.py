"""CSV input: .csv, .tsv, .txt, gzip and standard input, streamed by pyarrow.

The header line is read here (BOM, delimiter detection, quoting), the records by
pyarrow's streaming reader with every column typed as text; the input is hashed as it
is read. On the error path only, the file is read again to say where a bad record is.

pyarrow reads the records from the file itself, never through a Python file object: its
reader reads ahead on a thread of its own, and a read still pending when an input error
abandons the reader must not call into Python (with the interpreter stopping, or
tracemalloc being switched off, that crashes the process). A gzip file is therefore
unpacked to a private spool file first, hashed as it is unpacked.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import gzip
import hashlib
import io
import itertools
import re
import shutil
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO

from bulkrevoke.errors import InputError
from bulkrevoke.ingest.source import (
    BLANK,
    BLOCK_SIZE,
    CSV_DELIMITERS,
    MAX_COLUMNS,
    MAX_HEADER_BYTES,
    Columns,
    Source,
    error_reason,
    match_columns,
)

# --- CSV: opening and the header line -------------------------------------------------------

class _HashingReader(io.RawIOBase):
    """Reads a binary file and hashes every byte it hands out."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.digest = hashlib.sha256()
        self._drained = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        self.digest.update(data)
        buffer[: len(data)] = data
        return len(data)

    def step(self) -> None:
        """Hash the next block of the file (to keep pace with a reader of the text)."""
        if not self._drained:
            self.digest.update(self._raw.read(BLOCK_SIZE))

    def drain(self) -> None:
        if not self._drained:
            while chunk := self._raw.read(1 << 20):
                self.digest.update(chunk)
            self._drained = True


def open_stdin(columns: dict[str, str], delimiter: str | None, spool_dir: Path | None) -> Source:
    """Standard input is spooled to a private file first, so it is hashed and read once."""
    import tempfile

    spool = tempfile.NamedTemporaryFile(  # noqa: SIM115 - deleted when the reader is done
        prefix="stdin-", suffix=".csv", dir=spool_dir, delete=False)
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


_READ_ERRORS = (OSError, EOFError, zlib.error)  # gzip.BadGzipFile is an OSError


def open_csv(
    path: Path, name: str, columns: dict[str, str], delimiter: str | None,
    spool_dir: Path | None = None,
) -> Source:
    """Read the header now (file-level errors come before anything else), the records
    later: the file is opened again then, so a source never read holds nothing open."""
    with _csv_stream(path, name) as (stream, _):
        header_bytes, records_start = _read_header_line(stream, name)
    chosen, headers = _parse_header(header_bytes, name, path, delimiter)
    positions = match_columns(name, headers, columns)
    source = Source(name=name, kind="csv", headers=headers)
    source._columns = _csv_columns(source, path, spool_dir, records_start, len(headers),
                                   positions, chosen)
    return source


@contextlib.contextmanager
def _csv_stream(path: Path, name: str) -> Iterator[tuple[BinaryIO, _HashingReader]]:
    """The file's text (unpacked if gzip), and the hash of the bytes on disk read so far."""
    raw = _open_binary(path, name)
    try:
        hashing = _HashingReader(raw)
        stream: Any = (gzip.GzipFile(fileobj=hashing, mode="rb") if _is_gzip(path)
                       else io.BufferedReader(hashing, 1 << 20))
        yield stream, hashing
    except _READ_ERRORS as exc:
        raise InputError(f"{name}: cannot read ({error_reason(exc)})") from None
    finally:
        raw.close()


def _open_binary(path: Path, name: str) -> BinaryIO:
    try:
        return path.open("rb")
    except OSError as exc:
        raise InputError(f"{name}: cannot read ({error_reason(exc)})") from None


def _is_gzip(path: Path) -> bool:
    # Sniffed, not trusted to the name: a .csv that is really gzip is read as gzip, and a
    # .csv.gz that was already unpacked is read as text.
    with path.open("rb") as probe:
        return probe.read(2) == b"\x1f\x8b"


# Whole lines of nothing but spaces, tabs and delimiters before the header are skipped.
_BLANK_LINES = re.compile(rb"(?:[ \t,;|]*(?:\r\n|\r|\n))*")
_LINE_BREAK = re.compile(rb"[\r\n]")
_UTF16 = "is UTF-16 text (byte order mark at byte offset 0), not UTF-8; save it as CSV UTF-8"
_NOT_CSV = {
    b"PK\x03\x04": "is a zip archive (an Excel workbook?), not CSV text; name a workbook .xlsx",
    b"PAR1": "is a Parquet file, not CSV text; name it .parquet",
    codecs.BOM_UTF16_LE: _UTF16,
    codecs.BOM_UTF16_BE: _UTF16,
}


def _read_header_line(stream: BinaryIO, name: str) -> tuple[bytes, int]:
    """The first line that is not blank (BOM removed), and the offset in the text where
    the records start, just past its line break.

    The line ends at the first line break outside double quotes, so a quoted header
    holding a line break stays one header."""
    buffer, skipped = _read_start(stream, name)
    eof = False
    while True:
        blank = _BLANK_LINES.match(buffer)
        if blank and blank.end():
            buffer = buffer[blank.end():]
            skipped += blank.end()
        end = _line_end(buffer)
        if end >= 0:
            after = end + (2 if buffer[end:end + 2] == b"\r\n" else 1)
            return buffer[:end], skipped + after
        if eof:
            if buffer.count(b'"') % 2:
                raise InputError(f"{name}: the header line has an unclosed double quote")
            return (buffer if buffer.strip(b" \t\r\n,;|") else b""), skipped + len(buffer)
        if len(buffer) > MAX_HEADER_BYTES:
            raise InputError(
                f"{name}: the header line is longer than {MAX_HEADER_BYTES >> 20} MiB; "
                "is this a CSV file?")
        chunk = stream.read(64 << 10)
        eof = not chunk
        buffer += chunk


def _read_start(stream: BinaryIO, name: str) -> tuple[bytes, int]:
    """The first bytes of the text without a UTF-8 BOM, and the BOM's length; refuses
    what is clearly not CSV."""
    start = stream.read(64 << 10)
    while len(start) < 4 and (more := stream.read(64 << 10)):
        start += more
    for magic, problem in _NOT_CSV.items():
        if start.startswith(magic):
            raise InputError(f"{name}: {problem}")
    bom = len(codecs.BOM_UTF8) if start.startswith(codecs.BOM_UTF8) else 0
    return start[bom:], bom


def _line_end(data: bytes) -> int:
    """Where the first line ends: its first line break outside double quotes, or -1."""
    quotes, searched = 0, 0
    for match in _LINE_BREAK.finditer(data):
        quotes += data.count(b'"', searched, match.start())
        searched = match.start()
        if quotes % 2 == 0:
            return match.start()
    return -1


def _parse_header(
    header_bytes: bytes, name: str, path: Path, delimiter: str | None
) -> tuple[str, list[str]]:
    """The delimiter (forced, or detected from the header line) and the headers."""
    if b"\x00" in header_bytes:
        raise InputError(f"{name}: the header line holds NUL bytes; is this UTF-16 or a binary "
                         "file? save it as CSV UTF-8")
    try:
        text = header_bytes.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(_utf8_error_message(name, path)) from None
    chosen = delimiter or _detect_delimiter(text)
    try:
        headers = next(csv.reader(io.StringIO(text, newline=""), delimiter=chosen), [])
    except csv.Error as exc:
        raise InputError(f"{name}: cannot read the header line ({exc})") from None
    if not any(h.strip() for h in headers):
        raise InputError(f"{name}: the file is empty (no header line)")
    if len(headers) > MAX_COLUMNS:
        raise InputError(
            f"{name}: the header has {len(headers):,} columns (at most {MAX_COLUMNS:,}); "
            "is this the right file?")
    return chosen, headers


def _detect_delimiter(header: str) -> str:
    """The candidate that splits the header into the most fields, outside quotes."""
    unquoted = re.sub(r'"[^"]*"', "", header)
    counts = {d: unquoted.count(d) for d in CSV_DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


# --- CSV: the records ---------------------------------------------------------------------

def _csv_columns(
    source: Source, path: Path, spool_dir: Path | None, records_start: int, width: int,
    positions: list[int | None], delimiter: str,
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
            for batch in _arrow_csv_reader(text_path, records_start, width, delimiter,
                                           on_invalid_row):
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
def _plain_text(
    path: Path, name: str, spool_dir: Path | None
) -> Iterator[tuple[Path, _HashingReader]]:
    """The file as plain text on disk, and the hash of the file's bytes.

    A plain file is itself, hashed a block per batch as the records are read. A gzip file
    is unpacked to a private spool file (removed afterwards) and hashed as it is unpacked."""
    if not _is_gzip(path):
        with _open_binary(path, name) as raw:
            yield path, _HashingReader(raw)
        return
    import tempfile

    spool = tempfile.NamedTemporaryFile(  # noqa: SIM115 - removed in the finally below
        prefix="unpacked-", suffix=".csv", dir=spool_dir, delete=False)
    spool_path = Path(spool.name)
    try:
        with spool, _csv_stream(path, name) as (text, hashing):
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
            read_options=pacsv.ReadOptions(column_names=names, block_size=BLOCK_SIZE,
                                           use_threads=False),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter, newlines_in_values=True, ignore_empty_lines=True,
                invalid_row_handler=on_invalid_row),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=False, quoted_strings_can_be_null=False),
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
        return InputError(_utf8_error_message(name, path))
    where = _first_bad_record(path, delimiter, width)
    if where is not None:
        record, line, problem = where
        return InputError(f"{name}: record {record:,} (line {line:,}) {problem}")
    if "straddl" in message:
        return InputError(f"{name}: a record is larger than {BLOCK_SIZE >> 10} KiB "
                          "(an unclosed quote, or a field that is not an id)")
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
                        return (record, line, f"has {len(fields)} fields where the header has "
                                f"{width}; quote fields that hold the delimiter {delimiter!r}")
                header_seen = True
                line = reader.line_num + 1
    except csv.Error:
        return (record + 1, line, f"is larger than {BLOCK_SIZE >> 10} KiB or unreadable "
                "(an unclosed quote, or a field that is not an id)")
    except _READ_ERRORS:
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
    binary: Any = gzip.open(path, "rb") if _is_gzip(path) else path.open("rb")  # noqa: SIM115
    return io.TextIOWrapper(binary, encoding="utf-8-sig", errors="replace", newline="")


def _utf8_error_message(name: str, path: Path) -> str:
    """Find the first byte that is not UTF-8 (only on the error path: a second read)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0  # of the chunk about to be read
    gzipped = _is_gzip(path)
    opener: Any = gzip.open if gzipped else open
    try:
        with opener(path, "rb") as stream:
            while True:
                chunk = stream.read(1 << 20)
                # The decoder holds back the start of a sequence cut by the chunk's end;
                # an error's position counts from those bytes.
                held = decoder.getstate()[0]
                try:
                    decoder.decode(chunk, final=not chunk)
                except UnicodeDecodeError as exc:
                    data = held + chunk
                    return (f"{name}: not UTF-8 text (invalid byte 0x{data[exc.start]:02x} at "
                            f"byte offset {offset - len(held) + exc.start:,}"
                            f"{' of the unpacked text' if gzipped else ''}); save the file as "
                            "UTF-8")
                if not chunk:
                    break
                offset += len(chunk)
    except _READ_ERRORS as exc:
        return f"{name}: cannot read ({error_reason(exc)})"
    return f"{name}: not UTF-8 text; save the file as UTF-8"
