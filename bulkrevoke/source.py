"""Streaming readers: CSV (.csv, .tsv, .txt, gzip, stdin), Parquet, Excel and DataFrames.

Every reader yields batches of ``(badgeMetaId, customerId, earnedBadgeId,
identifierType)`` text tuples, in file order, without holding the file in memory,
and computes the input's SHA-256 as it goes. The rules all readers share (CONTRACT §3):

- headers match case-insensitively, ignoring ``_``, ``-`` and spaces; ``--column`` maps
  a field to a header of the operator's choosing;
- every value is text: an id is never turned into a float (a float column or cell keeps a
  form that validation flags as ``spreadsheet_number``);
- a record whose every field is blank (spaces, tabs, line breaks) is a blank line, not a
  record, so ``row`` counts data records only;
- a file-level problem raises ``InputError`` with one line that names the file and never
  quotes a data value (a customerId may be an email or a mobile number).
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import difflib
import gzip
import hashlib
import io
import itertools
import re
import shutil
import sys
import warnings
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO

from .config import FIELDS
from .errors import InputError
from .validate import HEX24, quote_short

Row = tuple[str | None, str | None, str | None, str | None]
REQUIRED = FIELDS[:3]
CSV_DELIMITERS = ",;\t|"
# pyarrow parses CSV a block at a time, so a block is also the largest record accepted.
# Ids are short: 1 MiB is plenty, keeps pyarrow's buffers (and the process's RSS) small,
# and makes a runaway field (an unclosed quote, a pasted blob) fail fast.
BLOCK_SIZE = 1 << 20
MAX_HEADER_BYTES = 1 << 20
MAX_COLUMNS = 10_000
BATCH_ROWS = 65_536
BLANK = " \t\r\n"
_CSV_KINDS = (".csv", ".tsv", ".txt")


@dataclass
class Source:
    """An opened input: its display name, kind, and (once read) its SHA-256."""

    name: str
    kind: str
    headers: list[str] = field(default_factory=list)
    sha256: str = ""
    _batches: Iterator[list[Row]] | None = None

    def batches(self) -> Iterator[list[Row]]:
        assert self._batches is not None, "a source is read once"
        batches, self._batches = self._batches, None
        return batches


def open_source(
    source: Any,
    *,
    columns: Mapping[str, str] | None = None,
    delimiter: str | None = None,
    spool_dir: Path | None = None,
) -> Source:
    """Open *source* (a path, ``"-"`` for stdin, or a pandas DataFrame) for streaming."""
    columns = dict(columns or {})
    if _is_dataframe(source):
        return _open_dataframe(source, columns)
    if str(source) == "-":
        return _open_stdin(columns, delimiter, spool_dir)
    path = Path(source)
    name = str(path)
    if not path.exists():
        raise InputError(f"{name}: no such file")
    if path.is_dir():
        raise InputError(f"{name}: is a directory, not an input file")
    suffixes = [s.lower() for s in path.suffixes[-2:]]
    kind = suffixes[-1] if suffixes else ""
    if kind == ".parquet":
        return _open_parquet(path, columns)
    if kind in (".xlsx", ".xlsm"):
        return _open_excel(path, columns)
    if kind in _CSV_KINDS or (kind == ".gz" and suffixes[0] in _CSV_KINDS):
        default = "\t" if ".tsv" in suffixes else None
        return _open_csv(path, name, columns, delimiter or default)
    raise InputError(
        f"{name}: unknown input kind {path.suffix or '(no extension)'!r}; "
        "use .csv, .csv.gz, .tsv, .parquet or .xlsx")


# --- header matching ----------------------------------------------------------------------

def normalize_header(header: str) -> str:
    return re.sub(r"[\s_-]", "", header.lstrip("\ufeff")).lower()


def match_columns(name: str, headers: Sequence[str], mapping: Mapping[str, str]) -> list[int | None]:
    """Position of each contract field among *headers* (identifierType may be absent)."""
    by_norm: dict[str, list[int]] = {}
    for index, header in enumerate(headers):
        by_norm.setdefault(normalize_header(header), []).append(index)
    positions: list[int | None] = []
    for field_name in FIELDS:
        wanted = mapping.get(field_name, field_name)
        exact = [i for i, h in enumerate(headers) if h.strip() == wanted]
        found = exact or by_norm.get(normalize_header(wanted), [])
        if len(found) > 1:
            raise InputError(
                f"{name}: column {field_name} matches {len(found)} headers "
                f"({', '.join(quote_short(headers[i]) for i in found)}); map one with "
                f"--column {field_name}=HEADER")
        if not found and field_name in REQUIRED:
            raise InputError(_missing_column_message(name, field_name, mapping, headers))
        positions.append(found[0] if found else None)
    return positions


def _missing_column_message(
    name: str, field_name: str, mapping: Mapping[str, str], headers: Sequence[str]
) -> str:
    # A first line of data instead of headers would put customer ids (PII) into the
    # list of headers below: say what happened without quoting it.
    if any(HEX24.fullmatch(h.strip()) for h in headers):
        return (f"{name}: the first line holds ids, not headers; add a header line "
                f"({','.join(REQUIRED)}[,identifierType])")
    wanted = mapping.get(field_name, field_name)
    what = (f"column {wanted!r} (given by --column {field_name}={wanted})"
            if field_name in mapping else f"required column {field_name!r}")
    shown = ", ".join(quote_short(h) for h in headers[:12]) + (", …" if len(headers) > 12 else "")
    message = f"{name}: missing {what}; headers found: {shown}"
    delimiter = _better_delimiter(normalize_header(wanted), headers)
    if delimiter:
        return f"{message}; is the delimiter right? (--delimiter {delimiter})"
    # Only headers that no contract field claims are worth suggesting.
    claimed = {normalize_header(mapping.get(f, f)) for f in FIELDS}
    spare = [h for h in headers if normalize_header(h) not in claimed]
    close = difflib.get_close_matches(
        normalize_header(wanted), [normalize_header(h) for h in spare], n=1, cutoff=0.6)
    if close:
        original = next(h for h in spare if normalize_header(h) == close[0])
        return f"{message}; did you mean {original!r}? (--column {field_name}={original})"
    return message


def _better_delimiter(wanted: str, headers: Sequence[str]) -> str | None:
    """A delimiter that would have split the wanted header out of a header cell."""
    for candidate in CSV_DELIMITERS:
        parts = (part for h in headers if candidate in h for part in h.split(candidate))
        if any(normalize_header(part) == wanted for part in parts):
            return "tab" if candidate == "\t" else candidate
    return None


# --- CSV: opening and the header line -------------------------------------------------------

class _HashingReader(io.RawIOBase):
    """Reads a binary file and hashes every byte it hands out."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        self.digest.update(data)
        buffer[: len(data)] = data
        return len(data)

    def drain(self) -> None:
        while chunk := self._raw.read(1 << 20):
            self.digest.update(chunk)


class _Prefixed(io.RawIOBase):
    """A stream that first returns *prefix*, then the rest of *stream*."""

    def __init__(self, prefix: bytes, stream: BinaryIO) -> None:
        self._prefix = prefix
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _open_stdin(columns: dict[str, str], delimiter: str | None, spool_dir: Path | None) -> Source:
    """Standard input is spooled to a private file first, so it is hashed and read once."""
    import tempfile

    spool = tempfile.NamedTemporaryFile(  # noqa: SIM115 - deleted when the reader is done
        prefix="stdin-", suffix=".csv", dir=spool_dir, delete=False)
    spool_path = Path(spool.name)
    try:
        with spool:
            shutil.copyfileobj(sys.stdin.buffer, spool, 1 << 20)
        source = _open_csv(spool_path, "<stdin>", columns, delimiter)
    except BaseException:
        spool_path.unlink(missing_ok=True)
        raise
    inner = source.batches()

    def batches() -> Iterator[list[Row]]:
        try:
            yield from inner
        finally:
            spool_path.unlink(missing_ok=True)

    source._batches = batches()
    return source


_READ_ERRORS = (OSError, EOFError, zlib.error)  # gzip.BadGzipFile is an OSError


def _open_csv(path: Path, name: str, columns: dict[str, str], delimiter: str | None) -> Source:
    """Read the header now (file-level errors come before anything else), the records
    later: the file is opened again then, so a source never read holds nothing open."""
    with _csv_stream(path, name) as (stream, _):
        header_bytes, _ = _read_header_line(stream, name)
    chosen, headers = _parse_header(header_bytes, name, path, delimiter)
    positions = match_columns(name, headers, columns)
    source = Source(name=name, kind="csv", headers=headers)
    source._batches = _csv_batches(source, path, len(headers), positions, chosen)
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
        raise InputError(f"{name}: cannot read ({_reason(exc)})") from None
    finally:
        raw.close()


def _open_binary(path: Path, name: str) -> BinaryIO:
    try:
        return path.open("rb")
    except OSError as exc:
        raise InputError(f"{name}: cannot read ({_reason(exc)})") from None


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


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


def _read_header_line(stream: BinaryIO, name: str) -> tuple[bytes, bytes]:
    """The first line that is not blank (BOM removed), and the bytes read past it.

    The line ends at the first line break outside double quotes, so a quoted header
    holding a line break stays one header."""
    buffer = _read_start(stream, name)
    eof = False
    while True:
        match = _BLANK_LINES.match(buffer)
        buffer = buffer[match.end():] if match else buffer
        end = _line_end(buffer)
        if end >= 0:
            after = end + (2 if buffer[end:end + 2] == b"\r\n" else 1)
            return buffer[:end], buffer[after:]
        if eof:
            if buffer.count(b'"') % 2:
                raise InputError(f"{name}: the header line has an unclosed double quote")
            return (buffer if buffer.strip(b" \t\r\n,;|") else b""), b""
        if len(buffer) > MAX_HEADER_BYTES:
            raise InputError(
                f"{name}: the header line is longer than {MAX_HEADER_BYTES >> 20} MiB; "
                "is this a CSV file?")
        chunk = stream.read(64 << 10)
        eof = not chunk
        buffer += chunk


def _read_start(stream: BinaryIO, name: str) -> bytes:
    """The first bytes of the text, without a UTF-8 BOM; refuses what is clearly not CSV."""
    start = stream.read(64 << 10)
    while len(start) < 4 and (more := stream.read(64 << 10)):
        start += more
    for magic, problem in _NOT_CSV.items():
        if start.startswith(magic):
            raise InputError(f"{name}: {problem}")
    return start[3:] if start.startswith(codecs.BOM_UTF8) else start


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

def _csv_batches(
    source: Source, path: Path, width: int, positions: list[int | None], delimiter: str
) -> Iterator[list[Row]]:
    import pyarrow as pa

    wanted = sorted({p for p in positions if p is not None})
    take = [None if p is None else wanted.index(p) for p in positions]
    failed = False

    def on_invalid_row(row: Any) -> str:
        nonlocal failed
        if _is_blank_text(row.text, delimiter):
            return "skip"  # a blank (or only-delimiters) line is not a record
        failed = True
        return "error"

    with _csv_stream(path, source.name) as (stream, hashing):
        _, rest = _read_header_line(stream, source.name)
        try:
            for batch in _arrow_csv_reader(_Prefixed(rest, stream), width, delimiter,
                                           on_invalid_row):
                columns = _without_blank_records(batch, wanted)
                if columns[0]:
                    yield _rows_from_columns(columns, take)
        except pa.ArrowInvalid as exc:
            raise _csv_error(source.name, str(exc), failed, path, delimiter, width) from None
        hashing.drain()
        source.sha256 = hashing.digest.hexdigest()


def _arrow_csv_reader(
    rest: io.RawIOBase, width: int, delimiter: str, on_invalid_row: Any
) -> Iterator[Any]:
    """pyarrow's streaming reader over the records after the header, every column text."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    names = [f"c{i}" for i in range(width)]
    try:
        reader = pacsv.open_csv(
            pa.PythonFile(io.BufferedReader(rest, 1 << 20), mode="r"),
            read_options=pacsv.ReadOptions(column_names=names, block_size=BLOCK_SIZE),
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
    yield from reader


def _without_blank_records(batch: Any, wanted: list[int]) -> list[list[str]]:
    """The wanted columns as lists, without the records whose every field is blank.

    Every column counts (a row holding only a note is a record), but the others are
    looked at only for rows already blank in the wanted ones: usually there are none.
    (Plain Python on purpose: pyarrow.compute's first call imports pandas, 0.4 s.)"""
    columns = [batch.column(i).to_pylist() for i in wanted]
    blank = [i for i, value in enumerate(columns[0]) if not value.strip(BLANK)]
    others = (batch.column(i).to_pylist() for i in range(batch.num_columns) if i not in wanted)
    for values in itertools.chain(columns[1:], others):
        if not blank:
            return columns
        blank = [i for i in blank if not values[i].strip(BLANK)]
    if not blank:
        return columns
    drop = set(blank)
    return [[v for i, v in enumerate(column) if i not in drop] for column in columns]


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
        return InputError(f"{name}: a record is larger than {BLOCK_SIZE >> 20} MiB "
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
        return (record + 1, line, f"is larger than {BLOCK_SIZE >> 20} MiB or unreadable "
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
        return f"{name}: cannot read ({_reason(exc)})"
    return f"{name}: not UTF-8 text; save the file as UTF-8"


def _rows_from_columns(columns: list[list[Any]], take: list[int | None]) -> list[Row]:
    none: list[None] = [None] * (len(columns[0]) if columns else 0)
    picked = [columns[t] if t is not None else none for t in take]
    return list(zip(*picked, strict=True))


# --- Parquet, DataFrame -------------------------------------------------------------------

def _open_parquet(path: Path, columns: dict[str, str]) -> Source:
    import pyarrow as pa
    import pyarrow.parquet as pq

    name = str(path)
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{name}: not a readable Parquet file ({_reason(exc)})") from None
    schema = parquet.schema_arrow
    headers = list(schema.names)
    positions = match_columns(name, headers, columns)
    for position in positions:
        if position is not None:
            _check_arrow_type(name, headers[position], schema.field(position).type)
    source = Source(name=name, kind="parquet", headers=headers, sha256=file_sha256(path))
    wanted = [headers[p] if p is not None else None for p in positions]

    def batches() -> Iterator[list[Row]]:
        try:
            selected = [h for h in headers if h in wanted]
            for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=selected):
                yield _arrow_rows(batch, wanted)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{name}: cannot read ({_reason(exc)})") from None

    source._batches = batches()
    return source


def _check_arrow_type(name: str, header: str, arrow_type: Any) -> None:
    """Text, integers and decimals become exact text; floats are read so that validation
    can flag each value (``spreadsheet_number``); anything else can't hold an id."""
    import pyarrow as pa

    types = pa.types
    value_type = arrow_type.value_type if types.is_dictionary(arrow_type) else arrow_type
    is_string_view = getattr(types, "is_string_view", lambda _: False)  # pyarrow >= 16
    if (types.is_string(value_type) or types.is_large_string(value_type)
            or is_string_view(value_type) or types.is_integer(value_type)
            or types.is_decimal(value_type) or types.is_floating(value_type)
            or types.is_null(value_type)):
        return
    raise InputError(
        f"{name}: column {header!r} has type {arrow_type}; ids must be text (or integers): "
        "write the column as strings")


def _arrow_rows(batch: Any, wanted: list[str | None]) -> list[Row]:
    columns = [_arrow_texts(batch.column(column)) for column in wanted if column is not None]
    order = {column: i for i, column in enumerate(w for w in wanted if w is not None)}
    return _rows_from_columns(columns, [None if w is None else order[w] for w in wanted])


def _arrow_texts(array: Any) -> list[str | None]:
    """Exact text of each value: integers in decimal, floats in a form validation flags."""
    import pyarrow as pa

    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if pa.types.is_floating(array.type):
        return [cell_text(v) for v in array.to_pylist()]
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        array = array.cast(pa.string())
    texts: list[str | None] = array.to_pylist()
    return texts


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _is_dataframe(value: Any) -> bool:
    module = type(value).__module__
    return module.startswith("pandas") and type(value).__name__ == "DataFrame"


def _open_dataframe(frame: Any, columns: dict[str, str]) -> Source:
    import pandas as pd
    import pyarrow as pa

    name = "<DataFrame>"
    headers = [str(c) for c in frame.columns]
    positions = match_columns(name, headers, columns)
    wanted = [headers[p] if p is not None else None for p in positions]
    # By position, not label: a frame may repeat a column label.
    selected = frame.iloc[:, [p for p in positions if p is not None]].copy()
    selected.columns = [w for w in wanted if w is not None]
    for column in selected.columns:
        if selected[column].dtype == object:
            selected[column] = selected[column].map(cell_text)
    try:
        table = pa.Table.from_pandas(selected, preserve_index=False)
    except pa.ArrowException as exc:
        raise InputError(f"{name}: cannot convert the frame ({_reason(exc)})") from None
    for column in table.schema:
        _check_arrow_type(name, column.name, column.type)
    digest = hashlib.sha256(pd.util.hash_pandas_object(selected, index=False).to_numpy().tobytes())
    source = Source(name=name, kind="dataframe", headers=headers, sha256=digest.hexdigest())
    source._batches = (_arrow_rows(b, wanted) for b in table.to_batches(BATCH_ROWS))
    return source


def cell_text(value: Any) -> str | None:
    """A spreadsheet or object cell as text; floats keep a form that validation flags."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


# --- Excel --------------------------------------------------------------------------------

def _open_excel(path: Path, columns: dict[str, str]) -> Source:
    name = str(path)
    try:
        import openpyxl  # noqa: F401 - only to say what to install when it is missing
    except ImportError:
        raise InputError(
            f"{name}: reading .xlsx needs the excel extra: pip install 'bulkrevoke[excel]'"
        ) from None
    with _sheet_rows(path, name) as rows:
        headers = next((_cells(v) for v in rows if not _blank_cells(v)), [])
    if not headers:
        raise InputError(f"{name}: the first sheet is empty (no header row)")
    positions = match_columns(name, headers, columns)
    source = Source(name=name, kind="xlsx", headers=headers, sha256=file_sha256(path))
    source._batches = _excel_batches(path, name, positions)
    return source


@contextlib.contextmanager
def _sheet_rows(path: Path, name: str) -> Iterator[Iterator[tuple[Any, ...]]]:
    """The first sheet's rows, read-only, with openpyxl's errors turned into InputError and
    its warnings silenced (they would break the CLI's one-line stderr)."""
    import openpyxl

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a bad file
        raise InputError(f"{name}: not a readable .xlsx file ({type(exc).__name__})") from None
    try:
        yield _quiet_rows(book.worksheets[0].iter_rows(values_only=True), name)
    finally:
        book.close()


def _quiet_rows(rows: Iterator[tuple[Any, ...]], name: str) -> Iterator[tuple[Any, ...]]:
    while True:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                values = next(rows, None)
        except Exception as exc:
            raise InputError(f"{name}: cannot read ({type(exc).__name__})") from None
        if values is None:
            return
        yield values


def _excel_batches(path: Path, name: str, positions: list[int | None]) -> Iterator[list[Row]]:
    with _sheet_rows(path, name) as rows:
        records = (v for v in rows if not _blank_cells(v))
        next(records, None)  # the header row, read when the source was opened
        batch: list[Row] = []
        for values in records:
            cells = [cell_text(values[p]) if p is not None and p < len(values) else None
                     for p in positions]
            batch.append((cells[0], cells[1], cells[2], cells[3]))
            if len(batch) >= BATCH_ROWS:
                yield batch
                batch = []
        if batch:
            yield batch


def _cells(values: tuple[Any, ...]) -> list[str]:
    return ["" if v is None else str(v) for v in values]


def _blank_cells(values: tuple[Any, ...]) -> bool:
    return all(v is None or not str(v).strip(BLANK) for v in values)
