"""Streaming readers: CSV (.csv, .tsv, .csv.gz, stdin), Parquet, Excel and DataFrames.

Every reader yields batches of ``(badgeMetaId, customerId, earnedBadgeId,
identifierType)`` text tuples, in file order, without holding the file in memory,
and computes the input's SHA-256 as it goes. Values are always text: an id is never
turned into a float. File-level problems raise ``InputError`` with one line that
names the file.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import gzip
import hashlib
import io
import re
import shutil
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from .config import FIELDS
from .errors import InputError

Row = tuple[str | None, str | None, str | None, str | None]
REQUIRED = FIELDS[:3]
CSV_DELIMITERS = ",;\t|"
BLOCK_SIZE = 4 << 20
MAX_HEADER_BYTES = 1 << 20
MAX_COLUMNS = 10_000
BATCH_ROWS = 65_536


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
    suffixes = "".join(path.suffixes[-2:]).lower()
    kind = path.suffix.lower()
    if kind == ".parquet":
        return _open_parquet(path, columns)
    if kind in (".xlsx", ".xlsm"):
        return _open_excel(path, columns)
    if kind in (".csv", ".tsv", ".txt") or suffixes in (".csv.gz", ".tsv.gz", ".txt.gz"):
        default = "\t" if ".tsv" in suffixes else None
        return _open_csv(path, name, columns, delimiter or default, forced=delimiter is not None)
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
                f"({', '.join(repr(headers[i]) for i in found)}); map one with "
                f"--column {field_name}=HEADER")
        if not found and field_name in REQUIRED:
            raise InputError(_missing_column_message(name, field_name, wanted, headers))
        positions.append(found[0] if found else None)
    return positions


def _missing_column_message(name: str, field_name: str, wanted: str, headers: Sequence[str]) -> str:
    shown = ", ".join(repr(h) for h in headers[:12]) + (", …" if len(headers) > 12 else "")
    close = difflib.get_close_matches(
        normalize_header(wanted), [normalize_header(h) for h in headers], n=1, cutoff=0.6)
    hint = ""
    if close:
        original = next(h for h in headers if normalize_header(h) == close[0])
        hint = f"; did you mean {original!r}? (--column {field_name}={original})"
    return f"{name}: missing required column {field_name!r}; headers found: {shown}{hint}"


# --- CSV ----------------------------------------------------------------------------------

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
    with spool:
        shutil.copyfileobj(sys.stdin.buffer, spool, 1 << 20)
    source = _open_csv(Path(spool.name), "<stdin>", columns, delimiter, forced=delimiter is not None)
    inner = source.batches()

    def batches() -> Iterator[list[Row]]:
        try:
            yield from inner
        finally:
            Path(spool.name).unlink(missing_ok=True)

    source._batches = batches()
    return source


def _open_csv(
    path: Path, name: str, columns: dict[str, str], delimiter: str | None, *, forced: bool
) -> Source:
    raw = path.open("rb")
    hashing = _HashingReader(raw)
    compressed = _is_gzip(path)
    stream: BinaryIO = (
        gzip.GzipFile(fileobj=hashing, mode="rb") if compressed  # type: ignore[assignment]
        else io.BufferedReader(hashing, 1 << 20))
    try:
        header_bytes, rest = _read_header_line(stream, name)
        header_text = _decode(header_bytes, name, 0)
        chosen = delimiter if forced or delimiter else _detect_delimiter(header_text)
        headers = next(csv.reader([header_text], delimiter=chosen), [])
    except BaseException:
        raw.close()
        raise
    if not any(h.strip() for h in headers):
        raw.close()
        raise InputError(f"{name}: the file is empty (no header line)")
    if len(headers) > MAX_COLUMNS:
        raw.close()
        raise InputError(f"{name}: the header has {len(headers):,} columns (at most {MAX_COLUMNS:,})")
    positions = match_columns(name, headers, columns)
    source = Source(name=name, kind="csv", headers=headers)
    source._batches = _csv_batches(
        source, raw, hashing, _Prefixed(rest, stream), headers, positions, chosen, path)
    return source


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as probe:
        return probe.read(2) == b"\x1f\x8b"


def _read_header_line(stream: BinaryIO, name: str) -> tuple[bytes, bytes]:
    """The first non-blank line (BOM removed), and the bytes read past it."""
    buffer = b""
    while True:
        chunk = stream.read(64 << 10)
        buffer += chunk
        if buffer.startswith(b"\xef\xbb\xbf"):
            buffer = buffer[3:]
        stripped = buffer.lstrip(b"\r\n")
        newline = stripped.find(b"\n")
        if newline >= 0 or not chunk:
            if newline < 0:
                return stripped, b""
            return stripped[:newline].rstrip(b"\r"), stripped[newline + 1:]
        if len(buffer) > MAX_HEADER_BYTES:
            raise InputError(
                f"{name}: the header line is longer than {MAX_HEADER_BYTES >> 20} MiB; "
                "is this a CSV file?")


def _decode(data: bytes, name: str, offset: int) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{name}: not UTF-8 text (invalid byte 0x{data[exc.start]:02x} at byte offset "
            f"{offset + exc.start:,}); save the file as UTF-8") from None


def _detect_delimiter(header: str) -> str:
    """The candidate that splits the header into the most fields, outside quotes."""
    unquoted = re.sub(r'"[^"]*"', "", header)
    counts = {d: unquoted.count(d) for d in CSV_DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _csv_batches(
    source: Source,
    raw: BinaryIO,
    hashing: _HashingReader,
    rest: io.RawIOBase,
    headers: list[str],
    positions: list[int | None],
    delimiter: str,
    path: Path,
) -> Iterator[list[Row]]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    names = [f"c{i}" for i in range(len(headers))]
    wanted = sorted({p for p in positions if p is not None})
    problems: list[str] = []

    def on_invalid_row(row: Any) -> str:
        if not row.text.strip(delimiter + " \t\r\n"):
            return "skip"  # a blank (or only-delimiters) line is not a record
        problems.append(
            f"{source.name}: a record has {row.actual_columns} fields where the header has "
            f"{row.expected_columns}: {row.text[:60]!r}")
        return "error"

    try:
        reader = pacsv.open_csv(
            pa.PythonFile(io.BufferedReader(rest, 1 << 20), mode="r"),
            read_options=pacsv.ReadOptions(column_names=names, block_size=BLOCK_SIZE),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter, newlines_in_values=True, ignore_empty_lines=True,
                invalid_row_handler=on_invalid_row),
            convert_options=pacsv.ConvertOptions(
                column_types={names[i]: pa.string() for i in wanted},
                include_columns=[names[i] for i in wanted],
                strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
        index = {names[i]: n for n, i in enumerate(wanted)}
        take = [None if p is None else index[names[p]] for p in positions]
        for batch in reader:
            if batch.num_rows:
                yield _rows_from_columns([c.to_pylist() for c in batch.columns], take)
        hashing.drain()
        source.sha256 = hashing.digest.hexdigest()
    except pa.ArrowInvalid as exc:
        raise _csv_error(source.name, str(exc), problems, path) from None
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(f"{source.name}: cannot read ({exc})") from None
    finally:
        raw.close()


def _csv_error(name: str, message: str, problems: list[str], path: Path) -> InputError:
    if problems:
        return InputError(problems[0])
    if "UTF8" in message or "utf8" in message.lower():
        return InputError(_utf8_error_message(name, path))
    if "straddling" in message or "block" in message.lower():
        return InputError(
            f"{name}: a record is larger than {BLOCK_SIZE >> 20} MiB (an unclosed quote, "
            "or a field that is not an id)")
    return InputError(f"{name}: not a readable CSV file ({message.splitlines()[0][:200]})")


def _utf8_error_message(name: str, path: Path) -> str:
    """Find the first byte that is not UTF-8 (only on the error path: a second read)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    opener = gzip.open if _is_gzip(path) else open
    with opener(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                bad = chunk[exc.start] if exc.start < len(chunk) else 0
                return (f"{name}: not UTF-8 text (invalid byte 0x{bad:02x} at byte offset "
                        f"{offset + exc.start:,}); save the file as UTF-8")
            offset += len(chunk)
    return f"{name}: not UTF-8 text; save the file as UTF-8"


def _rows_from_columns(columns: list[list[Any]], take: list[int | None]) -> list[Row]:
    none: list[None] = [None] * (len(columns[0]) if columns else 0)
    picked = [columns[t] if t is not None else none for t in take]
    return list(zip(*picked))  # type: ignore[arg-type]


# --- Parquet, DataFrame -------------------------------------------------------------------

def _open_parquet(path: Path, columns: dict[str, str]) -> Source:
    import pyarrow as pa
    import pyarrow.parquet as pq

    name = str(path)
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{name}: not a readable Parquet file ({str(exc)[:200]})") from None
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
            selected = sorted({w for w in wanted if w is not None}, key=headers.index)
            for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=selected):
                yield _arrow_rows(batch, wanted)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"{name}: cannot read ({str(exc)[:200]})") from None

    source._batches = batches()
    return source


def _check_arrow_type(name: str, header: str, arrow_type: Any) -> None:
    import pyarrow as pa

    value_type = arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type
    if (pa.types.is_string(value_type) or pa.types.is_large_string(value_type)
            or pa.types.is_integer(value_type) or pa.types.is_floating(value_type)
            or pa.types.is_null(value_type)):
        return
    raise InputError(
        f"{name}: column {header!r} has type {arrow_type}; ids must be text or integers")


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
        return [None if v is None else repr(float(v)) for v in array.to_pylist()]
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
    selected = frame[[frame.columns[p] for p in positions if p is not None]].copy()
    selected.columns = [w for w in wanted if w is not None]
    for column in selected.columns:
        if selected[column].dtype == object:
            selected[column] = selected[column].map(cell_text)
    digest = hashlib.sha256(pd.util.hash_pandas_object(selected, index=False).values.tobytes())
    table = pa.Table.from_pandas(selected, preserve_index=False)
    for column in table.schema:
        _check_arrow_type(name, column.name, column.type)
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
        import openpyxl
    except ImportError:
        raise InputError(
            f"{name}: reading .xlsx needs the excel extra: pip install 'bulkrevoke[excel]'"
        ) from None
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a bad file
        raise InputError(f"{name}: not a readable .xlsx file ({exc.__class__.__name__})") from None
    sheet = book.worksheets[0]
    rows = sheet.iter_rows(values_only=True)
    headers: list[str] = []
    for values in rows:
        if any(v is not None and str(v).strip() for v in values):
            headers = ["" if v is None else str(v) for v in values]
            break
    if not headers:
        book.close()
        raise InputError(f"{name}: the first sheet is empty (no header row)")
    positions = match_columns(name, headers, columns)
    source = Source(name=name, kind="xlsx", headers=headers, sha256=file_sha256(path))

    def batches() -> Iterator[list[Row]]:
        batch: list[Row] = []
        try:
            for values in rows:
                if not any(v is not None and str(v).strip() for v in values):
                    continue
                cells = [cell_text(values[p]) if p is not None and p < len(values) else None
                         for p in positions]
                batch.append((cells[0], cells[1], cells[2], cells[3]))
                if len(batch) >= BATCH_ROWS:
                    yield batch
                    batch = []
            if batch:
                yield batch
        finally:
            book.close()

    source._batches = batches()
    return source
